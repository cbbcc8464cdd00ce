"""The warping operation W(F, X) of the decoder (paper Eq. 2)."""

from __future__ import annotations

import torch


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Move ``image`` [N, C, H, W] along ``flow`` [N, 2, H, W] (dx, dy in pixels).

    Backward bilinear warping with border padding: output pixel p samples the
    input at p - flow(p), so the content moves by ``flow``.  The interpolation
    weights are computed from the fractional part of the source coordinate, so
    a zero flow is exactly the identity and an integer flow an exact shift
    (the published code's grid convention broke both).
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
    x_lo, x_hi = x0i.clamp(0, w - 1), (x0i + 1).clamp(0, w - 1)
    y_lo, y_hi = y0i.clamp(0, h - 1), (y0i + 1).clamp(0, h - 1)
    flat = image.reshape(n, c, h * w)

    def tap(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        index = (yy * w + xx).view(n, 1, h * w).expand(n, c, h * w)
        return flat.gather(2, index).view(n, c, h, w)

    top = tap(y_lo, x_lo) * (1 - wx) + tap(y_lo, x_hi) * wx
    bottom = tap(y_hi, x_lo) * (1 - wx) + tap(y_hi, x_hi) * wx
    return (top * (1 - wy) + bottom * wy).to(image.dtype)
