"""Reference forecasts shown beside the model in every comparison table.

Three parameter-free forecasters that follow the shared model interface
``model(inputs, input_times, query_times, input_mask=None, static=None)`` and
return a :class:`~climode.models.base.ForecastOutput` with ``frames``
[B, K, C, H, W], so ``climode evaluate`` scores them on the same windows:

* :class:`Persistence` - the last observed frame at or before each query.
* :class:`PystepsExtrapolation` - semi-Lagrangian extrapolation of the last
  observed frame along a pysteps motion field (``"LK"`` or ``"VET"``).
* :class:`WindAdvection` - semi-Lagrangian advection of every field by the last
  observed 850 hPa wind (climate fields on a lat/lon grid).

Common rules: times are per sample; masked input frames (mask 0) are ignored
entirely, including their values (they may be NaN); a query at or before the
last observation gets the persistence frame (no backward extrapolation); NaN in
observed frames is allowed and travels with the field (see each class).
See ``docs/baselines_reference.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from climode.errors import ConfigError, MissingDependencyError, ModelInputError, require
from climode.grid import is_global_lon
from climode.models.base import ForecastOutput

log = logging.getLogger(__name__)

__all__ = [
    "EARTH_RADIUS_M",
    "ExtrapolationConfig",
    "Persistence",
    "PystepsExtrapolation",
    "ReferenceConfig",
    "WindAdvection",
    "WindAdvectionConfig",
]

EARTH_RADIUS_M = 6.371e6
_LEAD_EPS = 1e-9


# --------------------------------------------------------------------------- configs
@dataclass
class ReferenceConfig:
    """Config of :class:`Persistence`; the switches the training/eval code reads are off."""

    in_channels: int = 3
    time_unit: str = "hour"
    use_composition: bool = False
    sample_z0: bool = False
    amp: bool = False

    def __post_init__(self) -> None:
        if int(self.in_channels) < 1:
            raise ConfigError(f"in_channels must be >= 1, got {self.in_channels}")


@dataclass
class ExtrapolationConfig(ReferenceConfig):
    """Config of :class:`PystepsExtrapolation`.

    ``method``: pysteps motion method, ``"LK"`` or ``"VET"``.  ``n_frames``: how
    many newest observed frames estimate the motion (VET takes 2 or 3).
    ``motion_channel``: channel whose motion moves every channel (``None``: each
    channel its own motion).  ``motion_scale``: frames are mapped jointly onto
    [0, motion_scale] before motion estimation (see docs).  ``max_step``: longest
    extrapolation sub-step in time units (``None``: the mean gap of the frames
    that gave the motion, i.e. pysteps' usual one step per input interval).
    ``motion_kwargs`` / ``extrap_kwargs`` are passed on to pysteps unchanged.
    ``motion_threads``: OpenMP threads for pysteps' compiled VET (``None``: leave
    as is); one thread avoids OpenMP spin-waiting on small, busy machines.
    """

    method: str = "VET"
    n_frames: int = 3
    motion_channel: int | None = None
    motion_scale: float = 10.0
    max_step: float | None = None
    motion_kwargs: dict[str, Any] = field(default_factory=dict)
    extrap_kwargs: dict[str, Any] = field(default_factory=dict)
    motion_threads: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.motion_threads is not None and self.motion_threads < 1:
            raise ConfigError(f"motion_threads must be >= 1 or None, got {self.motion_threads}")
        self.method = str(self.method).upper()
        if self.method not in ("LK", "VET"):
            raise ConfigError(f"method {self.method!r} is unknown; use 'LK' or 'VET'")
        if self.n_frames < 2 or (self.method == "VET" and self.n_frames > 3):
            raise ConfigError(f"n_frames must be 2 or 3 for VET and >= 2 for LK, got {self.n_frames}")
        if self.motion_channel is not None and not 0 <= self.motion_channel < self.in_channels:
            raise ConfigError(f"motion_channel must be in [0, {self.in_channels}), got {self.motion_channel}")
        if not self.motion_scale > 0:
            raise ConfigError(f"motion_scale must be positive, got {self.motion_scale}")
        if self.max_step is not None and not self.max_step > 0:
            raise ConfigError(f"max_step must be positive or None, got {self.max_step}")


@dataclass
class WindAdvectionConfig(ReferenceConfig):
    """Config of :class:`WindAdvection`.

    ``u_channel`` / ``v_channel``: indices of U850 and V850 (m/s once
    denormalised).  ``seconds_per_unit``: seconds per input time unit (3600 for
    hours).  ``n_iter``: fixed-point iterations for each departure point.
    ``max_step``: longest trajectory sub-step in time units.  ``wrap_lon``: treat
    longitude as periodic (needs a global grid); otherwise edges hold boundary
    values.  ``min_cos_lat``: floor of cos(latitude) so polar rows stay finite.
    """

    u_channel: int = 0
    v_channel: int = 1
    earth_radius: float = EARTH_RADIUS_M
    seconds_per_unit: float = 3600.0
    n_iter: int = 2
    max_step: float = 6.0
    wrap_lon: bool = False
    min_cos_lat: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("u_channel", "v_channel"):
            idx = getattr(self, name)
            if not 0 <= idx < self.in_channels:
                raise ConfigError(f"{name} must be in [0, {self.in_channels}), got {idx}")
        if self.u_channel == self.v_channel:
            raise ConfigError("u_channel and v_channel must differ")
        if self.n_iter < 1:
            raise ConfigError(f"n_iter must be >= 1, got {self.n_iter}")
        for name in ("earth_radius", "seconds_per_unit", "max_step", "min_cos_lat"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


# --------------------------------------------------------------------------- shared helpers
def _batch_times(t, batch: int, name: str) -> np.ndarray:
    arr = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (batch, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != batch:
        raise ModelInputError(f"{name} must have shape [T] or [B, T] with B={batch}, got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ModelInputError(f"{name} contains NaN or inf; give finite times")
    return np.ascontiguousarray(arr)


@dataclass
class _Batch:
    inputs: torch.Tensor
    times: np.ndarray  # [B, T]
    queries: np.ndarray  # [B, K]
    observed: list[np.ndarray]  # per sample: observed frame indices sorted by time, unique times


def _prepare(inputs, input_times, query_times, input_mask, in_channels: int) -> _Batch:
    if not isinstance(inputs, torch.Tensor):
        raise ModelInputError("inputs must be a torch tensor [B, T, C, H, W]")
    if inputs.ndim != 5:
        raise ModelInputError(f"inputs must have shape [B, T, C, H, W], got {tuple(inputs.shape)}")
    b, t, c = inputs.shape[:3]
    if c != in_channels:
        raise ModelInputError(f"inputs have {c} channels but the forecaster expects {in_channels}")
    times = _batch_times(input_times, b, "input_times")
    queries = _batch_times(query_times, b, "query_times")
    mask = np.ones((b, t)) if input_mask is None else _batch_times(input_mask, b, "input_mask")
    if times.shape[1] != t or mask.shape != (b, t):
        raise ModelInputError(
            f"input times {times.shape} and mask {mask.shape} must match the {t} input frames of the batch"
        )
    observed = []
    for s in range(b):
        idx = np.flatnonzero(mask[s] > 0)
        if not len(idx):
            raise ModelInputError(f"sample {s} has no observed input frame; every sample needs at least one")
        idx = idx[np.argsort(times[s, idx], kind="stable")]
        # equal times: the later frame in the input order wins
        keep = np.append(np.diff(times[s, idx]) > 0, True)
        observed.append(idx[keep])
    return _Batch(inputs, times, queries, observed)


def _persistence_index(batch: _Batch) -> np.ndarray:
    """[B, K] input index of the last observed frame at or before each query (else the first)."""
    out = np.empty(batch.queries.shape, dtype=np.int64)
    for s, idx in enumerate(batch.observed):
        obs_t = batch.times[s, idx]
        pos = np.searchsorted(obs_t, batch.queries[s] + _LEAD_EPS, side="right") - 1
        out[s] = idx[np.clip(pos, 0, None)]
    return out


def _gather(inputs: torch.Tensor, index: np.ndarray) -> torch.Tensor:
    b, k = index.shape
    rows = torch.as_tensor(np.repeat(np.arange(b), k), device=inputs.device)
    cols = torch.as_tensor(index.ravel(), device=inputs.device)
    return inputs[rows, cols].reshape(b, k, *inputs.shape[2:])


def _leads(batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """Index [B] and time [B] of each sample's last observation, and lead times [B, K]."""
    last = np.array([idx[-1] for idx in batch.observed])
    t_last = batch.times[np.arange(len(last)), last]
    return last, batch.queries - t_last[:, None]


class Persistence(nn.Module):
    """Each query gets the last observed frame at or before it; earlier queries get the first one."""

    def __init__(self, config: ReferenceConfig | None = None, *, in_channels: int | None = None):
        super().__init__()
        self.config = config or ReferenceConfig(**({} if in_channels is None else {"in_channels": in_channels}))

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None) -> ForecastOutput:
        """Frames [B, K, C, H, W] copied exactly from the inputs."""
        batch = _prepare(inputs, input_times, query_times, input_mask, self.config.in_channels)
        return ForecastOutput(frames=_gather(inputs, _persistence_index(batch)))


# --------------------------------------------------------------------------- pysteps
def _import_pysteps():
    """Import pysteps quietly (its import prints the config file path to stdout)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        pysteps = require("pysteps", "metrics")
        import pysteps.extrapolation  # noqa: F401
        import pysteps.motion  # noqa: F401
    if buf.getvalue().strip():
        log.debug("pysteps: %s", buf.getvalue().strip())
    return pysteps


@contextlib.contextmanager
def _omp_threads(n: int | None):
    """Temporarily set the OpenMP thread count of libgomp (used by pysteps' compiled VET)."""
    lib = None
    if n is not None:
        try:
            lib = ctypes.CDLL("libgomp.so.1")
            old = int(lib.omp_get_max_threads())
        except (OSError, AttributeError):  # no GNU OpenMP runtime: nothing to limit
            lib = None
    if lib is None:
        yield
        return
    lib.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        lib.omp_set_num_threads(old)


def _lead_grid(leads: np.ndarray, max_step: float | None) -> tuple[list[float], np.ndarray]:
    """Increasing extrapolation times covering ``leads`` (> 0) and where each lead sits in them."""
    grid = np.unique(leads)
    if max_step is not None:
        extra = np.arange(max_step, grid[-1], max_step)
        grid = np.unique(np.concatenate([grid, extra]))
    return [float(g) for g in grid], np.searchsorted(grid, leads)


class PystepsExtrapolation(nn.Module):
    """Semi-Lagrangian extrapolation along a pysteps LK or VET motion field.

    Per sample, the ``n_frames`` newest observed frames give the motion (per
    channel, or from ``motion_channel``); the last observed frame is advected
    with pysteps' ``semilagrangian`` extrapolator to each query's lead time.
    Irregular times: the motion of each frame pair is in pixels per pair gap; the
    velocity is the summed displacement divided by the summed time gap (with equal
    gaps all frames go to pysteps together), in pixels per time unit, and pysteps
    receives the real lead times with ``vel_timestep=1``.  Edges hold boundary
    values; NaN cells are masked in the motion estimate and advected as NaN.
    """

    def __init__(self, method: str = "VET", config: ExtrapolationConfig | None = None, **overrides: Any):
        super().__init__()
        if config is None:
            config = ExtrapolationConfig(method=method, **overrides)
        elif overrides:
            raise ConfigError("give either a config or keyword overrides, not both")
        self.config = config
        pysteps = _import_pysteps()
        if config.method == "LK" and importlib.util.find_spec("cv2") is None:
            raise MissingDependencyError(
                "pysteps' LK motion needs OpenCV; install it with: pip install opencv-python-headless "
                "(or use method='VET')"
            )
        self._motion = pysteps.motion.get_method(config.method)
        self._extrapolate = pysteps.extrapolation.get_method("semilagrangian")

    def _motion_kwargs(self) -> dict[str, Any]:
        if self.config.method == "VET":
            kw: dict[str, Any] = {"verbose": False}
        else:  # continuous fields: no rain/no-rain opening, which thresholds at the field minimum
            kw = {"size_opening": 0, "verbose": False}
        kw.update(self.config.motion_kwargs)
        return kw

    def estimate_velocity(self, frames: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Motion [2, H, W] (x, y) in pixels per time unit from frames [n, H, W] at strictly increasing times."""
        frames = np.asarray(frames, dtype=np.float64)
        h, w = frames.shape[1:]
        zero = np.zeros((2, h, w))
        finite = np.isfinite(frames)
        if len(frames) < 2 or not finite.any():
            return zero
        lo, hi = float(frames[finite].min()), float(frames[finite].max())
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            return zero
        scaled = np.ma.masked_invalid((frames - lo) / (hi - lo) * self.config.motion_scale)
        gaps = np.diff(times)
        kw = self._motion_kwargs()
        with _omp_threads(self.config.motion_threads):
            return self._velocity(scaled, gaps, kw)

    def _velocity(self, scaled: np.ma.MaskedArray, gaps: np.ndarray, kw: dict[str, Any]) -> np.ndarray:
        if np.allclose(gaps, gaps[0], rtol=1e-6, atol=0.0):
            velocity = np.asarray(self._motion(scaled, **kw), dtype=np.float64) / gaps[0]
        else:
            disp = sum(np.asarray(self._motion(scaled[i : i + 2], **kw), dtype=np.float64) for i in range(len(gaps)))
            velocity = disp / gaps.sum()
        return np.nan_to_num(velocity, nan=0.0, posinf=0.0, neginf=0.0)

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None) -> ForecastOutput:
        """Frames [B, K, C, H, W]: extrapolated for queries after the last observation, else persistence."""
        cfg = self.config
        batch = _prepare(inputs, input_times, query_times, input_mask, cfg.in_channels)
        frames = _gather(inputs, _persistence_index(batch)).detach().cpu().double().numpy().copy()
        _, leads = _leads(batch)
        data = inputs.detach().cpu().double().numpy()
        for s, idx in enumerate(batch.observed):
            ahead = np.flatnonzero(leads[s] > _LEAD_EPS)
            if not len(ahead):
                continue
            use = idx[-cfg.n_frames :]
            t_use = batch.times[s, use]
            step = cfg.max_step or (float(np.mean(np.diff(t_use))) if len(use) > 1 else None)
            grid, pos = _lead_grid(leads[s, ahead], step)
            channels = [cfg.motion_channel] if cfg.motion_channel is not None else range(cfg.in_channels)
            velocities = {c: self.estimate_velocity(data[s, use, c], t_use) for c in channels}
            for c in range(cfg.in_channels):
                velocity = velocities[cfg.motion_channel if cfg.motion_channel is not None else c]
                last = data[s, use[-1], c]
                if not np.isfinite(last).any():
                    frames[s, ahead, c] = np.nan
                    continue
                kw = {"outval": np.nan, "allow_nonfinite_values": True, "map_coordinates_mode": "nearest"}
                kw.update(cfg.extrap_kwargs)
                out = self._extrapolate(last, velocity, grid, vel_timestep=1.0, **kw)
                frames[s, ahead, c] = out[pos]
        return ForecastOutput(frames=torch.as_tensor(frames, dtype=inputs.dtype, device=inputs.device))


# --------------------------------------------------------------------------- wind advection
def _bilinear(field: torch.Tensor, x: torch.Tensor, y: torch.Tensor, wrap_x: bool) -> torch.Tensor:
    """Sample field [N, C, H, W] at pixel coords x, y [N, H, W]; edges clamp (or x wraps).

    NaN cells are NaN in the output only where they get a non-zero weight.
    """
    n, c, h, w = field.shape
    y = y.clamp(0, h - 1)
    x = torch.remainder(x, w) if wrap_x else x.clamp(0, w - 1)
    x0f, y0f = torch.floor(x), torch.floor(y)
    wx, wy = x - x0f, y - y0f
    x0, y0 = x0f.long().clamp(0, w - 1), y0f.long().clamp(0, h - 1)
    x1 = torch.remainder(x0 + 1, w) if wrap_x else (x0 + 1).clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    nan = torch.isnan(field)
    flat = torch.where(nan, torch.zeros_like(field), field).reshape(n, c, h * w)
    flat_nan = nan.to(field.dtype).reshape(n, c, h * w)
    weights = ((1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy)
    corners = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1)
    value = field.new_zeros((n, c, h * w))
    bad = field.new_zeros((n, c, h * w))
    for wt, idx in zip(weights, corners):
        i = idx.reshape(n, 1, h * w).expand(n, c, h * w)
        wt = wt.reshape(n, 1, h * w)
        value = value + wt * flat.gather(2, i)
        bad = bad + wt * flat_nan.gather(2, i)
    value = torch.where(bad > 0, torch.full_like(value, float("nan")), value)
    return value.reshape(n, c, h, w)


def advection_dtype(device: torch.device) -> torch.dtype:
    """float64 on the CPU; float32 on accelerators (MPS has no float64, most GPUs run it far slower).

    In float32 the departure points of a 1000-cell grid are off by about 1e-4 cell.
    """
    return torch.float64 if device.type == "cpu" else torch.float32


class WindAdvection(nn.Module):
    """Advect every channel by the last observed 850 hPa wind (frozen in time and along the lead).

    ``lat`` [H] and ``lon`` [W] are the grid's coordinates in degrees (either
    order; spacing may vary).  ``mean`` / ``std`` (one per channel) are the
    normalisation statistics of the inputs, ``x = (phys - mean) / std``: only the
    wind channels are denormalised (to m/s) to move the trajectories; the fields
    are advected in whatever units they come in, so forecasts keep the input
    units.  Omit them for physical inputs.  Wind in m/s becomes grid cells per
    time unit via dx = R cos(lat) dlon and dy = R dlat.  Backward trajectories
    with ``n_iter`` fixed-point iterations of the midpoint departure point per
    sub-step (at most ``max_step`` long), bilinear interpolation, edges hold
    boundary values (or longitude wraps with ``wrap_lon``).  NaN wind counts as
    calm; NaN field cells stay NaN and travel with the flow.
    """

    def __init__(
        self,
        lat: Sequence[float] | np.ndarray,
        lon: Sequence[float] | np.ndarray,
        config: WindAdvectionConfig | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **overrides: Any,
    ):
        super().__init__()
        if config is None:
            config = WindAdvectionConfig(**overrides)
        elif overrides:
            raise ConfigError("give either a config or keyword overrides, not both")
        self.config = cfg = config
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        for name, arr in (("lat", lat), ("lon", lon)):
            if arr.ndim != 1 or len(arr) < 2 or not np.isfinite(arr).all():
                raise ConfigError(f"{name} must be a 1-D array of at least 2 finite values in degrees")
            d = np.diff(arr)
            if not ((d > 0).all() or (d < 0).all()):
                raise ConfigError(f"{name} must be strictly monotonic")
        dlon = np.gradient(lon)
        if cfg.wrap_lon and not is_global_lon(lon):
            span = abs(lon[-1] - lon[0]) + abs(np.median(np.diff(lon)))
            raise ConfigError(f"wrap_lon needs a global longitude grid (evenly spaced, once round); this one spans "
                              f"{span:.2f} degrees")
        n_ch = cfg.in_channels
        mean = np.zeros(n_ch) if mean is None else np.asarray(mean, dtype=np.float64)
        std = np.ones(n_ch) if std is None else np.asarray(std, dtype=np.float64)
        if mean.shape != (n_ch,) or std.shape != (n_ch,) or not (np.isfinite(std).all() and (std > 0).all()):
            raise ConfigError(f"mean and std need one finite value per channel ({n_ch}), std > 0")
        self.lat, self.lon = lat, lon
        self.mean, self.std = mean, std
        cos = np.maximum(np.cos(np.deg2rad(lat)), cfg.min_cos_lat)
        # grid cells per time unit for 1 m/s: [H, W] in x, [H, 1] in y
        self._cells_x = cfg.seconds_per_unit / (cfg.earth_radius * cos[:, None] * np.deg2rad(dlon)[None, :])
        self._cells_y = (cfg.seconds_per_unit / (cfg.earth_radius * np.deg2rad(np.gradient(lat))))[:, None]

    @classmethod
    def from_normalizer(
        cls, normalizer: Any, lat, lon, u: str = "U850", v: str = "V850", **overrides: Any
    ) -> "WindAdvection":
        """Build from a :class:`climode.data.normalize.Normalizer` whose variables are the input channels."""
        names = list(normalizer.variables)
        missing = [n for n in (u, v) if n not in names]
        if missing:
            raise ConfigError(f"normalizer has no variables {missing}; it covers {names}")
        config = WindAdvectionConfig(
            in_channels=len(names), u_channel=names.index(u), v_channel=names.index(v), **overrides
        )
        return cls(lat, lon, config=config, mean=normalizer.mean, std=normalizer.std)

    def wind_cells(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Wind of frames [N, C, H, W] in grid cells per time unit (x east-index, y row-index), in
        :func:`advection_dtype` of the frames' device."""
        cfg = self.config
        f = frame.to(advection_dtype(frame.device))
        u = f[:, cfg.u_channel] * float(self.std[cfg.u_channel]) + float(self.mean[cfg.u_channel])
        v = f[:, cfg.v_channel] * float(self.std[cfg.v_channel]) + float(self.mean[cfg.v_channel])
        u, v = torch.nan_to_num(u, nan=0.0), torch.nan_to_num(v, nan=0.0)
        cx = torch.as_tensor(self._cells_x, dtype=f.dtype, device=f.device)
        cy = torch.as_tensor(self._cells_y, dtype=f.dtype, device=f.device)
        return u * cx, v * cy

    def _departure(self, wind: torch.Tensor, lead: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Departure points [N, H, W] of backward trajectories over ``lead`` [N] through ``wind`` [N, 2, H, W],
        in ``steps`` sub-steps (counted on the host by the caller)."""
        cfg = self.config
        n, _, h, w = wind.shape
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=wind.dtype, device=wind.device),
            torch.arange(w, dtype=wind.dtype, device=wind.device),
            indexing="ij",
        )
        x, y = xx.expand(n, h, w).clone(), yy.expand(n, h, w).clone()
        dt = (lead / steps).reshape(n, 1, 1)
        for _ in range(steps):
            dx, dy = wind[:, 0] * dt, wind[:, 1] * dt  # first guess: wind at the arrival point
            for _ in range(cfg.n_iter):
                mid = _bilinear(wind, x - dx / 2, y - dy / 2, cfg.wrap_lon)
                dx, dy = mid[:, 0] * dt, mid[:, 1] * dt
            x, y = x - dx, y - dy
        return x, y

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None) -> ForecastOutput:
        """Frames [B, K, C, H, W] advected to each lead; persistence at or before the last observation."""
        cfg = self.config
        batch = _prepare(inputs, input_times, query_times, input_mask, cfg.in_channels)
        h, w = inputs.shape[-2:]
        if (h, w) != (len(self.lat), len(self.lon)):
            raise ModelInputError(
                f"inputs are {h}x{w} but the grid has {len(self.lat)} latitudes x {len(self.lon)} longitudes"
            )
        frames = _gather(inputs, _persistence_index(batch)).detach().clone()
        last, leads = _leads(batch)
        sb, sk = np.nonzero(leads > _LEAD_EPS)
        if len(sb):
            dev = inputs.device
            work = advection_dtype(dev)
            src = inputs.detach()[torch.as_tensor(sb, device=dev), torch.as_tensor(last[sb], device=dev)].to(work)
            wind = torch.stack(self.wind_cells(src), dim=1)
            lead = torch.as_tensor(leads[sb, sk], dtype=work, device=dev)
            # sub-step count per row, so a query's answer does not depend on the other queries
            n_steps = np.maximum(1, np.ceil(leads[sb, sk] / cfg.max_step - 1e-9)).astype(int)
            for n in np.unique(n_steps):
                rows = np.flatnonzero(n_steps == n)
                r = torch.as_tensor(rows, device=dev)
                x, y = self._departure(wind[r], lead[r], int(n))
                out = _bilinear(src[r], x, y, cfg.wrap_lon).to(inputs.dtype)
                frames[torch.as_tensor(sb[rows], device=dev), torch.as_tensor(sk[rows], device=dev)] = out
        return ForecastOutput(frames=frames)
