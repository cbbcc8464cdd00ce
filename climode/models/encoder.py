"""Conv-Encoder E, the z0 head, and the ODE-ConvGRU encoder loop (paper Eq. 1)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from climode.models.config import SolverConfig
from climode.models.odefunc import integrate
from climode.models.timeline import EncoderPlan
from climode.models.upload import DeviceIndex


class ConvEncoder(nn.Module):
    """Conv-Encoder E: X_t [N, C, H, W] -> E(X_t) [N, c', H/2^n, W/2^n].

    Conv3x3 + BatchNorm + ReLU, then ``n_downs`` times Conv4x4 stride 2 + BatchNorm
    + ReLU, doubling the channels each time.  Only observed frames are passed in,
    so masked frames never reach the BatchNorm statistics.
    """

    def __init__(self, in_channels: int, init_dim: int, n_downs: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, init_dim, 3, padding=1),
            nn.BatchNorm2d(init_dim),
            nn.ReLU(inplace=True),
        ]
        dim = init_dim
        for _ in range(n_downs):
            layers += [nn.Conv2d(dim, dim * 2, 4, stride=2, padding=1), nn.BatchNorm2d(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        self.net = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Z0Head(nn.Module):
    """Maps the encoder's final state h to the mean and std of z0 = h_{s_0} (1x1 convs)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_dim, latent_dim, 1), nn.ReLU(inplace=True), nn.Conv2d(latent_dim, 2 * latent_dim, 1)
        )

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=h.device.type, enabled=False):
            mean, raw_std = self.net(h.float()).chunk(2, dim=1)
        return mean, nn.functional.softplus(raw_std) + 1e-4


def encoder_indices(lookup: np.ndarray, plan: EncoderPlan, index: DeviceIndex | None = None) -> DeviceIndex:
    """Register in ``index`` the gathers of :func:`ode_rnn_encode` (computed on the host from the plan)."""
    index = index if index is not None else DeviceIndex()
    active = np.arange(lookup.shape[0])
    for j in range(len(plan.sigma)):
        samples, frames = plan.updates[j]
        if len(samples):
            index.add(("enc_rows", j), np.searchsorted(active, samples))
            index.add(("enc_x", j), lookup[samples, frames])
        done = plan.finish[j]
        if len(done):
            pos = np.searchsorted(active, done)
            keep = np.setdiff1d(np.arange(len(active)), pos)
            index.add(("enc_keep", j), keep)
            active = active[keep]
    return index


def ode_rnn_encode(x, lookup: np.ndarray, plan: EncoderPlan, ode: nn.Module, solver: SolverConfig, update,
                   index: DeviceIndex | None = None) -> torch.Tensor:
    """ODE-RNN over the union of per-sample encoder times: each sample's final state.

    ``x`` holds the features of the observed frames, ``lookup[b, t]`` the row of
    frame t of sample b.  The state starts at zero, is advanced by ``ode`` across
    each gap of ``plan.sigma`` and updated as ``update(h, x)`` where samples are
    observed; samples leave the batch once their encoding ends.  ``index``: the
    gathers of :func:`encoder_indices`, already sent to ``x``'s device (made and
    sent here when None).
    """
    batch = lookup.shape[0]
    if index is None:
        index = encoder_indices(lookup, plan).send(x.device)
    hidden = x.new_zeros((batch, *x.shape[1:]), dtype=torch.float32)
    active = np.arange(batch)
    final: dict[int, torch.Tensor] = {}
    for j, sigma in enumerate(plan.sigma):
        if j > 0 and len(active):
            span = torch.tensor([plan.sigma[j - 1], sigma], dtype=torch.float32)
            hidden = integrate(ode, hidden, span, solver)[-1]
        samples, _ = plan.updates[j]
        if len(samples):
            rows = index[("enc_rows", j)]
            new = update(hidden[rows], x[index[("enc_x", j)]])
            hidden = hidden.index_copy(0, rows, new)
        done = plan.finish[j]
        if len(done):
            pos = np.searchsorted(active, done)
            for s, p in zip(done, pos):
                final[int(s)] = hidden[int(p)]
            keep = np.setdiff1d(np.arange(len(active)), pos)
            active = active[keep]
            hidden = hidden[index[("enc_keep", j)]]
    return torch.stack([final[s] for s in range(batch)])
