"""Conv-Decoder G and the composition Psi of the decoder (paper Eq. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from climode.models.layout import like_weight
from climode.models.warp import warp


class ConvDecoder(nn.Module):
    """Conv-Decoder G: (h(s_i), h(s_{i-1})) -> flow F, difference D, mask M.

    ``n_ups`` times [bilinear Upsample x2 + Conv3x3 + BatchNorm + ReLU], halving
    the channels, then Conv3x3 to 2 + C + 1 channels: F (pixels), D (no
    activation), M (sigmoid).
    """

    def __init__(self, latent_dim: int, out_channels: int, n_ups: int):
        super().__init__()
        layers: list[nn.Module] = []
        dim = 2 * latent_dim
        for i in range(n_ups):
            out = latent_dim // 2**i
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(dim, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            dim = out
        layers.append(nn.Conv2d(dim, 2 + out_channels + 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, h: torch.Tensor, h_prev: torch.Tensor) -> "DecoderStep":
        first_conv = self.net[1] if isinstance(self.net[0], nn.Upsample) else self.net[0]
        out = self.net(like_weight(torch.cat([h, h_prev], dim=1), first_conv.weight)).float()
        c = self.out_channels
        return DecoderStep(flow=out[:, :2], diff=out[:, 2 : 2 + c], mask=torch.sigmoid(out[:, 2 + c :]))


@dataclass
class DecoderStep:
    """The three outputs of G at one step: F [N,2,H,W], D [N,C,H,W], M [N,1,H,W]."""

    flow: torch.Tensor
    diff: torch.Tensor
    mask: torch.Tensor


def partial_step(step: DecoderStep, fraction: torch.Tensor, previous: torch.Tensor, *, use_warp: bool,
                 difference_mode: str) -> DecoderStep:
    """The fraction f in [0, 1] ([N]) of a decoder step, for a query time between two grid points.

    The flow F and the difference become f times G's; the mask M, a proportion
    (which part of the change is motion, which is new content), is kept.  With
    ``difference_mode='residual'`` the difference is D itself; in image mode
    (and without warping, where D is the frame) it is D - X_prev, so the
    partial D is X_prev + f (D - X_prev).  Composed by :func:`compose`, f = 0
    gives X_prev exactly, f = 1 the full step, and the frame moves with f in
    between: linearly in the difference, along the flow f F.
    """
    f = fraction.to(step.flow.dtype).view(-1, 1, 1, 1)
    if use_warp and difference_mode == "residual":
        diff = f * step.diff
    else:
        diff = previous + f * (step.diff - previous)
    return DecoderStep(flow=f * step.flow, diff=diff, mask=step.mask)


def compose(step: DecoderStep, previous: torch.Tensor, *, use_warp: bool, use_composition: bool, difference_mode: str) -> torch.Tensor:
    """Psi: the next frame from G's outputs and the previous composed frame X_hat(s_{i-1}).

    - full model (``use_composition``): M * W(F, X_prev) + (1 - M) * D, where D is
      composed as an image (the paper, ``difference_mode='image'``) or as a change,
      (1 - M) * (X_prev + D) (``'residual'``, suited to standardised fields);
    - warp only (ablation D): W(F, X_prev);
    - neither (vanilla Vid-ODE, ablations A-C): D is the frame itself.

    Each step warps the previous *composed* frame, as in the paper's Eq. 2 (the
    published code warped its own chain of warped frames instead).
    """
    if not use_warp:
        return step.diff
    warped = warp(previous, step.flow)
    if not use_composition:
        return warped
    fill = step.diff if difference_mode == "image" else previous + step.diff
    return step.mask * warped + (1 - step.mask) * fill
