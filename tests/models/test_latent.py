"""The KL term of z0 against its N(0, 1) prior."""

import math

import torch

from climode.models.latent import kl_standard_normal


def test_kl_is_zero_at_the_prior_and_sums_cells_per_sample():
    assert float(kl_standard_normal(torch.zeros(3, 2, 4, 4), torch.ones(3, 2, 4, 4))) == 0.0
    mean, std = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 2.0)
    per_cell = 0.5 * (4.0 + 1.0 - 1.0 - math.log(4.0))  # KL(N(1, 4) || N(0, 1))
    torch.testing.assert_close(kl_standard_normal(mean, std), torch.tensor(4 * per_cell))
