"""One optimisation step of Vid-ODE with its objective (paper Eq. 7).

GAN updates run in an order current PyTorch accepts: the discriminators are
updated on detached fakes first; the generator's adversarial loss is computed
afterwards, with the updated discriminators, and back-propagated once together
with L_recon and L_diff.  (The published code back-propagated a loss whose
graph the discriminator's optimiser step had modified in place.)

No optimiser steps on a non-finite loss or gradient: the check comes before
each step, and under DistributedDataParallel every rank agrees on it (``agree``
all-reduces the flag) before any collective backward, so one rank's NaN stops
every rank instead of leaving the others waiting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from climode.errors import ClimodeError
from climode.models.base import ForecastOutput
from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
from climode.models.latent import kl_standard_normal
from climode.models.precision import autocast
from climode.models.vidode import VidODE, VidODEOutput
from climode.training.adversarial import like_targets, sequences_ending_with
from climode.training.losses import (
    LossWeights,
    diff_loss,
    extreme_l1,
    frames_at,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    recon_loss,
)

BATCH_KEYS = ("inputs", "input_times", "input_mask", "targets", "target_times", "target_mask")
#: batch entries the trainer also keeps on the host (``batch["host"]``): models read masks as plans
HOST_COPIES = ("input_mask", "target_mask")


def host_copy(batch: dict, key: str):
    """``batch[key]`` from the host copies when the batch has them (no device read), else as it is."""
    return batch.get("host", {}).get(key, batch.get(key))


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


class NonFiniteError(ClimodeError):
    """A loss or gradient is NaN/inf; no optimiser step was taken with it."""


def _local_agree(finite: bool) -> bool:
    return finite


@dataclass
class Discriminators:
    """D_img and D_seq with their optimiser (either may be None).

    ``sync_grads`` (set by the trainer under DDP) averages their gradients over
    the ranks after the discriminator backward, so their weights stay identical.
    """

    image: ImageDiscriminator | None = None
    sequence: SequenceDiscriminator | None = None
    optimizer: torch.optim.Optimizer | None = None
    sync_grads: Callable[[list[nn.Parameter]], None] | None = None

    @property
    def modules(self) -> list[nn.Module]:
        return [d for d in (self.image, self.sequence) if d is not None]

    def parameters(self) -> list[nn.Parameter]:
        return [p for d in self.modules for p in d.parameters()]


@dataclass
class StepResult:
    losses: dict[str, float]
    output: ForecastOutput = field(repr=False)


class TrainStep:
    """Forward, losses, and the generator (and discriminator) updates for one batch."""

    def __init__(
        self,
        model: VidODE,
        optimizer: torch.optim.Optimizer,
        discriminators: Discriminators | None = None,
        weights: LossWeights | None = None,
        grad_clip: float | None = None,
        agree: Callable[[bool], bool] | None = None,
    ):
        self.model = model
        self.optimizer = optimizer
        self.discriminators = discriminators or Discriminators()
        self.weights = weights or LossWeights()
        self.grad_clip = grad_clip
        #: local finiteness -> the verdict of every rank (identity without DDP)
        self.agree = agree or _local_agree

    @property
    def config(self):
        """The model's config (through a DistributedDataParallel wrapper if there is one)."""
        return getattr(self.model, "module", self.model).config

    def _autocast(self, device: torch.device):
        return autocast(self.config, device)

    def generator_losses(self, batch: dict, out: ForecastOutput) -> dict[str, torch.Tensor]:
        """L_recon, L_diff (when D is a difference) and the KL term (when z0 is sampled)."""
        cfg = self.config
        targets, target_mask = batch["targets"], batch.get("target_mask")
        losses = {"recon": recon_loss(out.frames, targets, target_mask)}
        if self.weights.extreme:
            losses["extreme"] = extreme_l1(out.frames, targets, target_mask)
        has_diff = isinstance(out, VidODEOutput) and out.diff is not None  # D of Vid-ODE's G
        if getattr(cfg, "use_composition", False) and has_diff and self.weights.diff:
            host_target_mask = host_copy(batch, "target_mask")
            sources = [
                (batch["inputs"], _numpy(batch["input_times"]).reshape(len(targets), -1),
                 _numpy(host_copy(batch, "input_mask"))),
                (targets, _numpy(batch["target_times"]).reshape(len(targets), -1),
                 _numpy(host_target_mask) if host_target_mask is not None else np.ones(targets.shape[:2])),
            ]
            prev, found = frames_at(out.prev_times, sources)
            available = torch.as_tensor(found, device=targets.device).float()
            if target_mask is not None:
                available = available * target_mask.float()
            losses["diff"] = diff_loss(out.diff, targets, prev, available)
        if getattr(cfg, "sample_z0", False) and out.z0_std is not None:
            losses["kl"] = kl_standard_normal(out.z0_mean, out.z0_std)
        losses.update(out.extra_losses)
        return losses

    def _scores(self, batch: dict, frames: torch.Tensor) -> list[torch.Tensor]:
        """D_img on each kept target frame, D_seq on Eq. 4's sequence ending at each (``frames``: real or fake).

        NaN target cells are 0 on both sides (:mod:`climode.training.adversarial`).
        """
        disc = self.discriminators
        scores = []
        with self._autocast(frames.device):
            if disc.image is not None:
                mask = host_copy(batch, "target_mask")
                rows, steps = np.nonzero(_numpy(mask) > 0) if mask is not None else np.indices(frames.shape[:2])
                keep = (torch.as_tensor(rows.ravel(), device=frames.device),
                        torch.as_tensor(steps.ravel(), device=frames.device))  # host indices: no mask sync
                scores.append(disc.image(like_targets(frames, batch["targets"])[keep]).float())
            if disc.sequence is not None:
                scores.append(disc.sequence(sequences_ending_with(batch, frames, disc.sequence.n_frames)).float())
        return scores

    def _require_finite(self, what: str, values: dict[str, torch.Tensor | float]) -> dict[str, float]:
        """The values as floats; NonFiniteError unless every one is finite on every rank (checked before any step).

        The scalars are stacked and read in one transfer: one device sync for all of them.
        """
        device = next((v.device for v in values.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
        stacked = torch.stack([v.detach().float().reshape(()) if isinstance(v, torch.Tensor)
                               else torch.tensor(float(v), device=device) for v in values.values()])
        local = dict(zip(values, stacked.tolist()))
        if not self.agree(all(math.isfinite(v) for v in local.values())):
            bad = {k: v for k, v in local.items() if not math.isfinite(v)}
            where = f"here: {bad}" if bad else "on another rank"
            raise NonFiniteError(f"{what} became non-finite ({where}); no optimiser step was taken with it")
        return local

    def _update_discriminators(self, batch: dict, out: ForecastOutput, losses: dict[str, torch.Tensor]) -> float:
        """One step of D_img and D_seq on real targets and detached fakes (their LSGAN loss)."""
        disc = self.discriminators
        for d in disc.modules:
            d.train()
            d.requires_grad_(True)
        real = self._scores(batch, batch["targets"])
        fake = self._scores(batch, out.frames.detach())
        d_loss = sum(lsgan_discriminator_loss(r, f) for r, f in zip(real, fake))
        checked = self._require_finite("the loss", {**losses, "disc": d_loss})
        disc.optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        if disc.sync_grads is not None:
            disc.sync_grads(disc.parameters())
        self._require_finite("a discriminator gradient", {"disc_grad_norm": _grad_norm(disc.parameters())})
        disc.optimizer.step()
        return checked["disc"]

    def _adversarial_losses(self, batch: dict, out: ForecastOutput) -> dict[str, torch.Tensor]:
        """L_adv^img and L_adv^seq of the generator, against the (already updated, frozen) discriminators."""
        disc = self.discriminators
        for d in disc.modules:
            d.requires_grad_(False)
        adv = self._scores(batch, out.frames)
        names = [n for n, d in (("adv_img", disc.image), ("adv_seq", disc.sequence)) if d is not None]
        return {name: lsgan_generator_loss(score) for name, score in zip(names, adv)}

    def total_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Eq. 7: L_recon + lambda_diff L_diff + lambda_img L_adv^img + lambda_seq L_adv^seq (+ KL, + lambda_ext L_extreme)."""
        w = self.weights
        factor = {"recon": 1.0, "diff": w.diff, "kl": w.kl, "adv_img": w.img, "adv_seq": w.seq, "extreme": w.extreme}
        return sum(factor.get(k, 1.0) * v for k, v in losses.items())

    def __call__(self, batch: dict) -> StepResult:
        model, disc = self.model, self.discriminators
        model.train()
        out = model(batch["inputs"], batch["input_times"], batch["target_times"], host_copy(batch, "input_mask"),
                    batch.get("static"))
        losses = self.generator_losses(batch, out)
        logged: dict[str, float] = {}
        if disc.modules:
            logged["disc"] = self._update_discriminators(batch, out, losses)  # 1) D on detached fakes
            losses.update(self._adversarial_losses(batch, out))  # 2) G against the updated D
        total = self.total_loss(losses)
        checked = self._require_finite("the loss", {**losses, "total": total})
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        if self.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        else:
            norm = _grad_norm(params)
        self._require_finite("the generator gradient", {"grad_norm": norm})
        self.optimizer.step()
        logged.update(checked)  # the losses as read by the finiteness check: no further device read
        logged["nfe_encoder"] = out.nfe_encoder
        logged["nfe_decoder"] = out.nfe_decoder
        return StepResult(losses=logged, output=out)


def _grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """The 2-norm of all gradients together (0 when there are none)."""
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())
