"""One optimisation step of Vid-ODE with its objective (paper Eq. 7).

GAN updates run in an order current PyTorch accepts: the discriminators are
updated on detached fakes first; the generator's adversarial loss is computed
afterwards, with the updated discriminators, and back-propagated once together
with L_recon and L_diff.  (The published code back-propagated a loss whose
graph the discriminator's optimiser step had modified in place.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
from climode.models.precision import autocast
from climode.models.vidode import VidODE, VidODEOutput
from climode.training.losses import (
    LossWeights,
    diff_loss,
    frames_at,
    kl_standard_normal,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    recon_loss,
)

BATCH_KEYS = ("inputs", "input_times", "input_mask", "targets", "target_times", "target_mask")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


@dataclass
class Discriminators:
    """D_img and D_seq with their optimiser (either may be None)."""

    image: ImageDiscriminator | None = None
    sequence: SequenceDiscriminator | None = None
    optimizer: torch.optim.Optimizer | None = None

    @property
    def modules(self) -> list[nn.Module]:
        return [d for d in (self.image, self.sequence) if d is not None]


@dataclass
class StepResult:
    losses: dict[str, float]
    output: VidODEOutput = field(repr=False)


class TrainStep:
    """Forward, losses, and the generator (and discriminator) updates for one batch."""

    def __init__(
        self,
        model: VidODE,
        optimizer: torch.optim.Optimizer,
        discriminators: Discriminators | None = None,
        weights: LossWeights | None = None,
        grad_clip: float | None = None,
    ):
        self.model = model
        self.optimizer = optimizer
        self.discriminators = discriminators or Discriminators()
        self.weights = weights or LossWeights()
        self.grad_clip = grad_clip

    @property
    def config(self):
        """The model's config (through a DistributedDataParallel wrapper if there is one)."""
        return getattr(self.model, "module", self.model).config

    def _autocast(self, device: torch.device):
        return autocast(self.config, device)

    def generator_losses(self, batch: dict, out: VidODEOutput) -> dict[str, torch.Tensor]:
        """L_recon, L_diff (when D is a difference) and the KL term (when z0 is sampled)."""
        cfg = self.config
        targets, target_mask = batch["targets"], batch.get("target_mask")
        losses = {"recon": recon_loss(out.frames, targets, target_mask)}
        if getattr(cfg, "use_composition", False) and out.diff is not None and self.weights.diff:
            sources = [
                (batch["inputs"], _numpy(batch["input_times"]).reshape(len(targets), -1), _numpy(batch["input_mask"])),
                (targets, _numpy(batch["target_times"]).reshape(len(targets), -1),
                 _numpy(target_mask) if target_mask is not None else np.ones(targets.shape[:2])),
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

    def _sequences(self, batch: dict, frames: torch.Tensor) -> torch.Tensor:
        mask = batch["input_mask"].to(frames.dtype).view(*batch["input_mask"].shape, 1, 1, 1)
        return torch.cat([batch["inputs"] * mask, torch.nan_to_num(frames)], dim=1)

    def _scores(self, batch: dict, frames: torch.Tensor) -> list[torch.Tensor]:
        disc = self.discriminators
        scores = []
        with self._autocast(frames.device):
            if disc.image is not None:
                keep = batch["target_mask"] > 0 if "target_mask" in batch else torch.ones(frames.shape[:2], dtype=torch.bool)
                scores.append(disc.image(torch.nan_to_num(frames[keep])).float())
            if disc.sequence is not None:
                scores.append(disc.sequence(self._sequences(batch, frames)).float())
        return scores

    def __call__(self, batch: dict) -> StepResult:
        model, disc = self.model, self.discriminators
        model.train()
        out = model(batch["inputs"], batch["input_times"], batch["target_times"], batch.get("input_mask"), batch.get("static"))
        losses = self.generator_losses(batch, out)
        logged: dict[str, float] = {}
        if disc.modules:
            # 1) discriminators on real targets and detached fakes
            for d in disc.modules:
                d.train()
                d.requires_grad_(True)
            real = self._scores(batch, batch["targets"])
            fake = self._scores(batch, out.frames.detach())
            d_loss = sum(lsgan_discriminator_loss(r, f) for r, f in zip(real, fake))
            disc.optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            disc.optimizer.step()
            logged["disc"] = float(d_loss.detach())
            # 2) generator's adversarial terms against the updated discriminators
            for d in disc.modules:
                d.requires_grad_(False)
            adv = self._scores(batch, out.frames)
            names = [n for n, d in (("adv_img", disc.image), ("adv_seq", disc.sequence)) if d is not None]
            for name, score in zip(names, adv):
                losses[name] = lsgan_generator_loss(score)
        w = self.weights
        factor = {"recon": 1.0, "diff": w.diff, "kl": w.kl, "adv_img": w.img, "adv_seq": w.seq}
        total = sum(factor.get(k, 1.0) * v for k, v in losses.items())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        self.optimizer.step()
        logged.update({k: float(v.detach()) for k, v in losses.items()})
        logged["total"] = float(total.detach())
        logged["nfe_encoder"] = out.nfe_encoder
        logged["nfe_decoder"] = out.nfe_decoder
        return StepResult(losses=logged, output=out)
