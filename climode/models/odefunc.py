"""ODE functions f_theta (encoder) and f_phi (decoder), and the torchdiffeq call.

Both are autonomous convolutional networks (they ignore t).  The state and the
solver's error control stay in float32 even under bf16 autocast: bf16 noise
inflates adaptive step counts.  Their forward convolutions run in IEEE float32,
not TF32, on Ampere and later GPUs too (TF32's ~5e-4 relative error is close to
dopri5's rtol of 1e-3); their backward follows torch's global setting.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from climode.models.config import SolverConfig
from climode.models.layout import like_weight
from climode.models.precision import full_float32_convolutions


class ODEFunc(nn.Module):
    """dh/dt = f(h): Conv3x3-Tanh x3 then Conv3x3, latent -> hidden -> latent channels.

    ``nfe`` counts function evaluations since the last :meth:`reset_nfe`.
    """

    def __init__(self, latent_dim: int, hidden_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_dim, hidden_dim, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(hidden_dim, latent_dim, 3, padding=1),
        )
        self.nfe = 0

    def reset_nfe(self) -> None:
        self.nfe = 0

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - autonomous
        self.nfe += 1
        with torch.autocast(device_type=h.device.type, enabled=False), full_float32_convolutions():
            return self.net(like_weight(h.float(), self.net[0].weight))


def step_grid(step: float):
    """torchdiffeq grid constructor: full steps of ``step`` from the solve's start, a shorter last one.

    torchdiffeq's own ``step_size`` grid does the same, but float rounding of a
    span that is a whole number of steps (0.4 - 0.3 over 0.1) can add a sliver
    of a last step that costs a full set of function evaluations; a remainder
    under 1e-4 of a step is folded into the last full step instead.
    """

    def grid(func, y0, t: torch.Tensor) -> torch.Tensor:  # noqa: ARG001 - torchdiffeq's signature
        n = max(1, math.ceil(float(t[-1] - t[0]) / step - 1e-4))
        points = t[0] + step * torch.arange(n + 1, dtype=t.dtype, device=t.device)
        points[-1] = t[-1]
        return points

    return grid


def integrate(func: ODEFunc, h0: torch.Tensor, times: torch.Tensor, solver: SolverConfig) -> torch.Tensor:
    """Solve dh/dt = func(h) from ``times[0]`` (where h = h0) and return h at every time.

    ``times`` is a 1-D strictly monotonic float tensor in model time; the result has
    shape ``[len(times), *h0.shape]`` and its first entry is ``h0``.
    """
    times = times.to(device=h0.device, dtype=torch.float32)
    options = {}
    if not solver.adaptive and solver.step_size is not None:
        options["grid_constructor"] = step_grid(float(solver.step_size))
    kwargs = dict(rtol=solver.rtol, atol=solver.atol, method=solver.method, options=options or None)
    h0 = h0.float()
    if solver.adjoint:
        return odeint_adjoint(func, h0, times, adjoint_params=tuple(func.parameters()), **kwargs)
    return odeint(func, h0, times, **kwargs)
