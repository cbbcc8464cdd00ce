"""Losses of Vid-ODE (paper Eqs. 3-7): L_recon, L_diff, LSGAN L_adv^img and L_adv^seq (and an optional
intensity-aware term, :func:`extreme_l1`, not in the paper).

Targets may hold NaN (missing truth): such cells, and padded targets with mask 0,
never enter a loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from climode.errors import ConfigError
from climode.models.timeline import TIME_EPS


@dataclass
class LossWeights:
    """lambda_diff, lambda_img, lambda_seq of Eq. 7 (the paper's values), the KL weight of the ELBO,
    and ``extreme``: the weight of :func:`extreme_l1` (not in the paper; 0 = off)."""

    diff: float = 1.0
    img: float = 0.003
    seq: float = 0.003
    kl: float = 1.0
    extreme: float = 0.0

    def __post_init__(self) -> None:
        for key in ("diff", "img", "seq", "kl", "extreme"):
            value = getattr(self, key)
            if not (value >= 0 and np.isfinite(value)):
                raise ConfigError(f"loss.{key} must be a number >= 0, got {value}")


def scored_cells(target: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The cells a loss scores: finite target cells of frames with mask 1 ([B, K] mask)."""
    valid = torch.isfinite(target)
    if frame_mask is not None:
        valid = valid & (frame_mask > 0).view(*frame_mask.shape, *([1] * (target.ndim - 2)))
    return valid


def masked_l1(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |pred - target| over the :func:`scored_cells`."""
    valid = scored_cells(target, frame_mask)
    diff = (pred - torch.nan_to_num(target)).abs() * valid
    return diff.sum() / valid.sum().clamp_min(1)


def extreme_l1(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor | None = None,
               threshold: float = 1.0) -> torch.Tensor:
    """An intensity-aware L1: |pred - target| weighted by how far the truth lies beyond ``threshold``.

    Targets are standardised, so the weight max(|target| - threshold, 0) is zero
    within one standard deviation of the training mean and grows into the tails:
    deep lows of PSL and the wind maxima around them.  A model that fills storm
    cores (the blur of an L1 or L2 optimum under uncertainty) pays for it here
    beyond what L_recon charges.  Averaged over the same cells as :func:`masked_l1`.
    """
    valid = scored_cells(target, frame_mask)
    truth = torch.nan_to_num(target)
    weight = (truth.abs() - threshold).clamp_min(0) * valid
    return ((pred - truth).abs() * weight).sum() / valid.sum().clamp_min(1)


def recon_loss(pred: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_recon (Eq. 5): L1 between predicted and true frames."""
    return masked_l1(pred, target, target_mask)


def frames_at(times: np.ndarray, sources: list[tuple[torch.Tensor, np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, np.ndarray]:
    """True frames at ``times`` [B, K] looked up in (frames [B,T,...], times [B,T], mask [B,T]) sources.

    Returns the frames [B, K, ...] (zeros where none) and a [B, K] availability mask.
    """
    ref = sources[0][0]
    b, k = times.shape
    out = ref.new_zeros((b, k, *ref.shape[2:]))
    found = np.zeros((b, k), dtype=bool)
    pick_b, src_frames = [], []
    for frames, src_times, src_mask in sources:
        for i in range(b):
            for j in range(k):
                if found[i, j]:
                    continue
                hit = np.flatnonzero((np.abs(src_times[i] - times[i, j]) <= TIME_EPS * 10) & (src_mask[i] > 0))
                if hit.size:
                    found[i, j] = True
                    pick_b.append((i, j))
                    src_frames.append(frames[i, int(hit[0])])
    if src_frames:
        idx_b = torch.as_tensor([p[0] for p in pick_b], device=ref.device)
        idx_k = torch.as_tensor([p[1] for p in pick_b], device=ref.device)
        out = out.index_put((idx_b, idx_k), torch.stack(src_frames))
    return out, found


def diff_loss(diff: torch.Tensor, target: torch.Tensor, previous_truth: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """L_diff (Eq. 6): L1 between D and the true change X(s_i) - X(s_{i-1}) where both are known."""
    return masked_l1(diff, target - previous_truth, available)


def lsgan_discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """LSGAN loss of a discriminator: 0.5 * ((D(real) - 1)^2 + D(fake)^2)."""
    return 0.5 * (((real_score - 1) ** 2).mean() + (fake_score**2).mean())


def lsgan_generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """LSGAN loss of the generator: (D(fake) - 1)^2."""
    return ((fake_score - 1) ** 2).mean()
