"""ODE functions f_theta (encoder) and f_phi (decoder), and the torchdiffeq call.

Both are autonomous convolutional networks (they ignore t).  The state and the
solver's error control stay in float32 even under bf16 autocast: bf16 noise
inflates adaptive step counts.  Their forward convolutions run in IEEE float32,
not TF32, on Ampere and later GPUs too (TF32's ~5e-4 relative error is close to
dopri5's rtol of 1e-3); their backward follows torch's global setting.
"""

from __future__ import annotations

import math

import numpy as np
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


#: fixed-step methods climode integrates itself, stepping on a host time grid (no device reads)
HOST_GRID_METHODS = ("euler", "midpoint", "rk4")


def host_grid(u: np.ndarray, step: float | None) -> np.ndarray:
    """:func:`step_grid` on the host, in float32 as torchdiffeq computes it (``u`` increasing)."""
    if step is None:
        return u
    n = max(1, math.ceil(float(u[-1] - u[0]) / step - 1e-4))
    points = u[0] + np.float32(step) * np.arange(n + 1, dtype=np.float32)
    points[-1] = u[-1]
    return points


def _fixed_step(func, method: str, y: torch.Tensor, t0: float, dt: float) -> torch.Tensor:
    """The increment of one step of ``method`` (torchdiffeq's formulas; rk4 is its 3/8-rule variant)."""
    k1 = func(t0, y)
    if method == "euler":
        return dt * k1
    if method == "midpoint":
        half = 0.5 * dt
        return dt * func(t0 + half, y + k1 * half)
    k2 = func(t0 + dt / 3, y + dt * k1 * (1 / 3))
    k3 = func(t0 + dt * 2 / 3, y + dt * (k2 - k1 * (1 / 3)))
    k4 = func(t0 + dt, y + dt * (k1 - k2 + k3))
    return (k1 + 3 * (k2 + k3) + k4) * dt * 0.125


def fixed_grid_odeint(func, y0: torch.Tensor, times: np.ndarray, method: str, step: float | None) -> torch.Tensor:
    """torchdiffeq's fixed-grid ``odeint`` with its time grid on the host: the same steps, no device syncs.

    torchdiffeq keeps the times on the device and compares them there at every
    step (about a dozen device reads per solve); here the grid, the step sizes
    and the linear interpolation weights at output times between grid points are
    host floats.  Decreasing ``times`` integrate backward, as torchdiffeq does
    (on negated time, which is exact in float arithmetic).
    """
    times = np.asarray(times, dtype=np.float32)
    sign = np.float32(-1.0 if len(times) > 1 and times[0] > times[1] else 1.0)
    u = sign * times
    grid = host_grid(u, step)
    out, j, y = [y0], 1, y0
    for a, b in zip(grid[:-1], grid[1:]):
        du = b - a
        y1 = y + _fixed_step(func, method, y, float(sign * a), float(sign * du))
        while j < len(u) and b >= u[j]:
            if u[j] == a:
                out.append(y)
            elif u[j] == b:
                out.append(y1)
            else:
                out.append(y + float((u[j] - a) / du) * (y1 - y))
            j += 1
        y = y1
    return torch.stack(out)


def integrate(func: ODEFunc, h0: torch.Tensor, times: torch.Tensor | np.ndarray, solver: SolverConfig) -> torch.Tensor:
    """Solve dh/dt = func(h) from ``times[0]`` (where h = h0) and return h at every time.

    ``times`` is a 1-D strictly monotonic float tensor or array in model time; the
    result has shape ``[len(times), *h0.shape]`` and its first entry is ``h0``.
    Euler, midpoint and rk4 step on a host grid (:func:`fixed_grid_odeint`); the
    others go to torchdiffeq, adaptive ones with float32 time scalars.
    """
    h0 = h0.float()
    host_times = times.detach().cpu().numpy() if isinstance(times, torch.Tensor) else np.asarray(times)
    if solver.method in HOST_GRID_METHODS and not solver.adjoint:
        return fixed_grid_odeint(func, h0, host_times, solver.method, solver.step_size)
    times = torch.as_tensor(host_times, dtype=torch.float32).to(h0.device, non_blocking=True)
    options: dict = {"dtype": torch.float32} if solver.adaptive else {}
    if not solver.adaptive and solver.step_size is not None:
        options["grid_constructor"] = step_grid(float(solver.step_size))
    kwargs = dict(rtol=solver.rtol, atol=solver.atol, method=solver.method, options=options or None)
    if solver.adjoint:
        return odeint_adjoint(func, h0, times, adjoint_params=tuple(func.parameters()), **kwargs)
    return odeint(func, h0, times, **kwargs)
