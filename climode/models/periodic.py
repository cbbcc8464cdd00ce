"""Periodic longitude: a model's spatial layers wrap round a global grid.

On a grid that goes once round the globe, the column west of the first one is
the last one.  Inside :func:`periodic_longitude` every padded convolution of a
model (Conv-Encoder E, the ConvGRU, the ODE functions f_theta and f_phi,
Conv-Decoder G, and any baseline's) pads its input circularly in longitude
(width) and keeps its zero padding in latitude (height); bilinear upsampling
interpolates across the seam, and the warping W(F, X) of Eq. 2 wraps in x
(:func:`climode.models.warp.warp`).  The switch is a runtime one: no weight or
config changes, so every checkpoint, the bundled one included, runs either way.

A convolution of stride 2 sees the grid on a lattice of every other column, so
shifting the input by a number of columns that is not a multiple of the
encoder stride (``2**n_downs``) changes the forecast by more than rounding;
shifts by multiples of it move the forecast by the same number of columns.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from climode.grid import is_global_lon
from climode.models.warp import periodic_x


def _wrap_columns(pad: int):
    def hook(module: nn.Module, args: tuple) -> tuple:  # noqa: ARG001 - torch's hook signature
        x = args[0]
        return (torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1), *args[1:])

    return hook


def _crop_columns(pad: int):
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:  # noqa: ARG001
        return output[..., pad:-pad]

    return hook


@contextlib.contextmanager
def periodic_longitude(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Within this context, ``model``'s spatial layers treat the last axis (longitude) as periodic.

    Padded ``nn.Conv2d`` layers get circular padding of the same width in x
    (zeros in y as before), bilinear ``nn.Upsample`` interpolates across the
    seam, and :func:`climode.models.warp.warp` wraps.  Everything is restored on
    exit; ``enabled=False`` changes nothing.
    """
    if not enabled:
        yield model
        return
    handles = []
    changed: list[tuple[nn.Conv2d, tuple]] = []
    try:
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros" and not isinstance(module.padding, str):
                pad_y, pad_x = module.padding
                if pad_x:
                    changed.append((module, module.padding))
                    module.padding = (pad_y, 0)
                    handles.append(module.register_forward_pre_hook(_wrap_columns(pad_x)))
            elif isinstance(module, nn.Upsample) and module.mode in ("bilinear", "bicubic", "nearest"):
                scale = module.scale_factor
                scale_x = scale[-1] if isinstance(scale, tuple) else scale
                if scale_x is None or float(scale_x) != int(scale_x):
                    continue  # only integer scale factors keep the columns aligned
                handles.append(module.register_forward_pre_hook(_wrap_columns(1)))
                handles.append(module.register_forward_hook(_crop_columns(int(scale_x))))
        with periodic_x(True):
            yield model
    finally:
        for handle in handles:
            handle.remove()
        for module, padding in changed:
            module.padding = padding


def is_periodic_grid(lon, width: int | None = None) -> bool:
    """True when the longitudes ``lon`` go once round the globe (and fill ``width`` columns, if given)."""
    lon = np.asarray(lon, dtype=np.float64)
    return is_global_lon(lon) and (width is None or width == lon.size)


__all__ = ["periodic_longitude", "is_periodic_grid"]
