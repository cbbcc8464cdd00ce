"""Score a model on data of another grid spacing as a forecast would run it: on its own grid.

A convolutional model learns motion in cells per hour, so it must see the grid
spacing it was trained on.  :class:`climode.forecast.Forecaster` regrids a
forecast's inputs to the model's spacing and the forecast back; in evaluation,
:class:`OnModelGrid` does the same to every batch (bilinear, in torch), so the
model is scored on the data's grid beside the baselines, which run there directly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from climode.grid import is_global_lon


def model_grid_shape(lat: np.ndarray, lon: np.ndarray, dlat: float, dlon: float) -> tuple[int, int]:
    """Rows and columns of the model's spacing over the same domain (once round for a global grid)."""
    rows = int(round(abs(float(lat[-1]) - float(lat[0])) / dlat)) + 1
    if is_global_lon(lon):
        cols = int(round(360.0 / dlon))
    else:
        cols = int(round(abs(float(lon[-1]) - float(lon[0])) / dlon)) + 1
    return max(rows, 2), max(cols, 2)


def resample(x: torch.Tensor, size: tuple[int, int], periodic: bool) -> torch.Tensor:
    """Bilinear resampling of ``x`` [..., H, W] to ``size``, first and last cell centres kept in place.

    ``periodic``: the columns go once round the globe; the first column is
    appended after the last, so the seam is interpolated across, not extrapolated.
    """
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape(-1, 1, h, w).float()
    if periodic:
        flat = torch.cat([flat, flat[..., :1]], dim=-1)
        out = F.interpolate(flat, size=(size[0], size[1] + 1), mode="bilinear", align_corners=True)[..., :-1]
    else:
        out = F.interpolate(flat, size=size, mode="bilinear", align_corners=True)
    return out.reshape(*lead, *size).to(x.dtype)


class OnModelGrid(nn.Module):
    """``model`` called on its training grid spacing: inputs regridded to it, the frames back.

    The regridded grid is padded with zeros (a missing cell in normalised
    units, as the forecaster's NaN padding becomes) to the encoder's stride.
    """

    def __init__(self, model: nn.Module, lat: np.ndarray, lon: np.ndarray, dlat: float, dlon: float) -> None:
        super().__init__()
        self.model = model
        self.periodic = is_global_lon(np.asarray(lon))
        self.data_shape = (len(lat), len(lon))
        self.model_shape = model_grid_shape(np.asarray(lat), np.asarray(lon), dlat, dlon)
        self.stride = int(getattr(getattr(model, "config", None), "stride", 1) or 1)

    @property
    def config(self) -> Any:
        return getattr(self.model, "config", None)

    def _to_model(self, x: torch.Tensor) -> torch.Tensor:
        y = resample(x, self.model_shape, self.periodic)
        pad_h = (-y.shape[-2]) % self.stride
        pad_w = (-y.shape[-1]) % self.stride
        return F.pad(y, (0, pad_w, 0, pad_h)) if pad_h or pad_w else y

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, **kwargs):
        out = self.model(self._to_model(inputs), input_times, query_times, input_mask,
                         None if static is None else self._to_model(static), **kwargs)
        frames = out.frames[..., : self.model_shape[0], : self.model_shape[1]]
        return dataclasses.replace(out, frames=resample(frames, self.data_shape, self.periodic))

    def extra_repr(self) -> str:
        return f"data grid {self.data_shape} -> model grid {self.model_shape}, periodic={self.periodic}"
