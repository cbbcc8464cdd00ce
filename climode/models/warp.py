"""The warping operation W(F, X) of the decoder (paper Eq. 2)."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

#: whether :func:`warp` wraps in x (set by :func:`climode.models.periodic.periodic_longitude`)
_PERIODIC_X: contextvars.ContextVar[bool] = contextvars.ContextVar("climode_periodic_x", default=False)


@contextlib.contextmanager
def periodic_x(enabled: bool = True) -> Iterator[None]:
    """Within this context, :func:`warp` samples across the x edges periodically (a global longitude axis)."""
    token = _PERIODIC_X.set(enabled)
    try:
        yield
    finally:
        _PERIODIC_X.reset(token)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Move ``image`` [N, C, H, W] along ``flow`` [N, 2, H, W] (dx, dy in pixels).

    Backward bilinear warping with border padding: output pixel p samples the
    input at p - flow(p), so the content moves by ``flow``.  The interpolation
    weights are computed from the fractional part of the source coordinate, so
    a zero flow is exactly the identity and an integer flow an exact shift
    (the published code's grid convention broke both).  Inside :func:`periodic_x`
    the x axis wraps round (column -1 is column w-1) instead of padding by its border.
    """
    n, c, h, w = image.shape
    flow = flow.float()
    ys = torch.arange(h, device=image.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=torch.float32).view(1, 1, w)
    src_x = xs - flow[:, 0]
    src_y = ys - flow[:, 1]
    x0 = torch.floor(src_x)
    y0 = torch.floor(src_y)
    wx = (src_x - x0).unsqueeze(1)
    wy = (src_y - y0).unsqueeze(1)
    x0i = x0.long()
    y0i = y0.long()
    if _PERIODIC_X.get():
        x_lo, x_hi = x0i.remainder(w), (x0i + 1).remainder(w)
    else:
        x_lo, x_hi = x0i.clamp(0, w - 1), (x0i + 1).clamp(0, w - 1)
    y_lo, y_hi = y0i.clamp(0, h - 1), (y0i + 1).clamp(0, h - 1)
    flat = image.reshape(n, c, h * w)

    def tap(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        index = (yy * w + xx).view(n, 1, h * w).expand(n, c, h * w)
        return flat.gather(2, index).view(n, c, h, w)

    top = tap(y_lo, x_lo) * (1 - wx) + tap(y_lo, x_hi) * wx
    bottom = tap(y_hi, x_lo) * (1 - wx) + tap(y_hi, x_hi) * wx
    return (top * (1 - wy) + bottom * wy).to(image.dtype)
