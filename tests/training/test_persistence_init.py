"""train.init: persistence starts Vid-ODE's composition at the previous frame (zero flow, mask ~1)."""

import numpy as np
import pytest
import torch

from climode.errors import ConfigError
from climode.models.registry import get_model
from climode.training.trainer import PERSISTENCE_MASK_LOGIT, init_at_persistence


def test_initialised_model_predicts_the_last_frame():
    torch.manual_seed(0)
    model = get_model("vidode", {"init_dim": 4, "n_downs": 1, "ode_hidden": 4, "in_channels": 3}).eval()
    frames = torch.rand(2, 3, 3, 16, 16)
    before = model(frames, [0.0, 1.0, 2.0], [3.0, 4.0]).frames
    init_at_persistence(model)
    after = model(frames, [0.0, 1.0, 2.0], [3.0, 4.0]).frames
    m = float(torch.sigmoid(torch.tensor(PERSISTENCE_MASK_LOGIT)))
    torch.testing.assert_close(after[:, 0], m * frames[:, -1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after[:, 1], m * m * frames[:, -1], atol=1e-4, rtol=1e-4)
    assert (before[:, 0] - frames[:, -1]).abs().mean() > 10 * (after[:, 0] - frames[:, -1]).abs().mean()


def test_needs_the_composition():
    model = get_model("vidode_b", {"init_dim": 4, "n_downs": 1, "ode_hidden": 4})
    with pytest.raises(ConfigError, match="composition"):
        init_at_persistence(model)
