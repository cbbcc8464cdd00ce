"""The latent initial state z0 ~ N(mean, std^2) of the encoder and its prior N(0, 1)."""

from __future__ import annotations

import torch

__all__ = ["kl_standard_normal"]


def kl_standard_normal(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(0, 1)), summed over latent cells, averaged over the batch."""
    var = std**2
    kl = 0.5 * (var + mean**2 - 1 - torch.log(var))
    return kl.flatten(1).sum(1).mean()
