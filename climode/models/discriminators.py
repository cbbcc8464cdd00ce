"""Image and sequence discriminators D_img and D_seq (PatchGAN, LSGAN; paper Eqs. 3-4)."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """PatchGAN: Conv4x4 s2 (LeakyReLU 0.2), two more s2 blocks and one s1 block with
    InstanceNorm, then a Conv4x4 to a map of patch scores."""

    def __init__(self, in_channels: int, base: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        dim = base
        for i in range(1, n_layers + 1):
            out = base * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            padding = 1 if i < n_layers else 2
            layers += [
                nn.Conv2d(dim, out, 4, stride=stride, padding=padding),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            dim = out
        layers.append(nn.Conv2d(dim, 1, 4, stride=1, padding=2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImageDiscriminator(PatchDiscriminator):
    """D_img: scores single frames [N, C, H, W]."""


class SequenceDiscriminator(nn.Module):
    """D_seq: scores ``n_frames`` consecutive frames [N, T, C, H, W] stacked on channels.

    Shorter sequences are zero-padded at the front, longer ones keep their last
    ``n_frames`` frames.
    """

    def __init__(self, in_channels: int, n_frames: int, base: int = 64, n_layers: int = 3):
        super().__init__()
        self.n_frames = n_frames
        self.patch = PatchDiscriminator(in_channels * n_frames, base, n_layers)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = seq.shape
        if t >= self.n_frames:
            seq = seq[:, t - self.n_frames :]
        else:
            seq = torch.cat([seq.new_zeros(n, self.n_frames - t, c, h, w), seq], dim=1)
        return self.patch(seq.reshape(n, self.n_frames * c, h, w))
