"""Reference frame interpolations a video user compares a model with.

Both follow the shared model interface ``model(inputs, input_times, query_times,
input_mask=None)`` -> :class:`~climode.models.base.ForecastOutput` with frames
``[B, K, C, H, W]``.  A query between two observed frames a < s < b, at the
fraction w = (s - a) / (b - a), gets:

* :class:`FrameBlend` - the linear cross-fade (1 - w) X_a + w X_b;
* :class:`FlowInterpolation` - both neighbours warped to s along OpenCV's DIS
  optical flow (F_ab and F_ba on the grey frames), with Super SloMo's
  approximation of the flows from s (Jiang et al. 2018, Eq. 4:
  F_s->a = -(1 - w) w F_ab + w^2 F_ba, F_s->b = (1 - w)^2 F_ab - w (1 - w) F_ba),
  each neighbour sampled bilinearly (``cv2.remap``, edges replicated) and
  blended with weights 1 - w and w.

A query at or after the last observation (or before the first) gets the nearest
observed frame (persistence): these are interpolations, not forecasts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from climode.errors import require
from climode.models.base import ForecastOutput
from climode.models.baselines.reference import ReferenceConfig, _prepare

log = logging.getLogger(__name__)

__all__ = ["FrameBlend", "FlowInterpolation", "InterpolationConfig"]


@dataclass
class InterpolationConfig(ReferenceConfig):
    """Config of the reference interpolations (frames in [0, 1])."""

    time_unit: str = "frame"


def neighbours(times: np.ndarray, observed: np.ndarray, s: float) -> tuple[int, int, float]:
    """Input indices of the observations around ``s`` and the fraction w (a == b: w = 0)."""
    t = times[observed]
    j = int(np.searchsorted(t, s, side="right")) - 1
    if j < 0:
        return int(observed[0]), int(observed[0]), 0.0
    if j >= len(t) - 1 or t[j] == s:
        return int(observed[j]), int(observed[j]), 0.0
    return int(observed[j]), int(observed[j + 1]), float((s - t[j]) / (t[j + 1] - t[j]))


class _Interpolation(nn.Module):
    def __init__(self, config: InterpolationConfig | None = None, *, in_channels: int | None = None):
        super().__init__()
        self.config = config or InterpolationConfig(**({} if in_channels is None else {"in_channels": in_channels}))

    def between(self, first: np.ndarray, second: np.ndarray, w: float) -> np.ndarray:
        raise NotImplementedError

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None) -> ForecastOutput:
        batch = _prepare(inputs, input_times, query_times, input_mask, self.config.in_channels)
        frames = inputs.detach().float().cpu().numpy()
        out = np.empty((*batch.queries.shape, *frames.shape[2:]), dtype=np.float32)
        for b, observed in enumerate(batch.observed):
            for k, s in enumerate(batch.queries[b]):
                i, j, w = neighbours(batch.times[b], observed, float(s))
                out[b, k] = frames[b, i] if i == j else self.between(frames[b, i], frames[b, j], w)
        return ForecastOutput(frames=torch.from_numpy(out).to(inputs.device))


class FrameBlend(_Interpolation):
    """Linear cross-fade between the observed frames around each query."""

    def between(self, first: np.ndarray, second: np.ndarray, w: float) -> np.ndarray:
        return (1.0 - w) * first + w * second


class FlowInterpolation(_Interpolation):
    """Both neighbours warped to the query time along DIS optical flow, then blended."""

    def __init__(self, config: InterpolationConfig | None = None, *, in_channels: int | None = None):
        super().__init__(config, in_channels=in_channels)
        self._cv2 = require("cv2", "metrics")
        self._cache: tuple | None = None

    def _flows(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (first.tobytes(), second.tobytes())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        cv2 = self._cv2

        def grey(frame: np.ndarray) -> np.ndarray:
            g = frame.mean(axis=0) if frame.shape[0] != 3 else np.tensordot([0.299, 0.587, 0.114], frame, axes=1)
            return np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8)

        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        a, b = grey(first), grey(second)
        flows = (dis.calc(a, b, None), dis.calc(b, a, None))
        self._cache = (key, flows)
        return flows

    def _warp(self, frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``frame`` [C, H, W] sampled at x + flow(x) (backward warping)."""
        cv2 = self._cv2
        h, w = frame.shape[1:]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mx, my = gx + flow[..., 0].astype(np.float32), gy + flow[..., 1].astype(np.float32)
        return np.stack([cv2.remap(np.ascontiguousarray(c, dtype=np.float32), mx, my, cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE) for c in frame])

    def between(self, first: np.ndarray, second: np.ndarray, w: float) -> np.ndarray:
        f_ab, f_ba = self._flows(first, second)
        to_first = -(1.0 - w) * w * f_ab + w * w * f_ba
        to_second = (1.0 - w) ** 2 * f_ab - w * (1.0 - w) * f_ba
        return (1.0 - w) * self._warp(first, to_first) + w * self._warp(second, to_second)
