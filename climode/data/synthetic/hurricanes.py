"""A synthetic, CAM5-like hurricane world: U850, V850 and PSL with truth tracks.

The world is an analytic North-Atlantic-like atmosphere (see
``docs/synthetic_hurricanes.md`` for the equations and parameters):

* a background sea-level pressure with a subtropical ridge, a Bermuda-Azores
  high and travelling Rossby-like waves, with 850 hPa winds in friction-
  regularised geostrophic balance;
* Holland (1980) vortices with gradient-wind balanced winds, steered by the
  background wind plus a beta drift, that intensify over warm water and decay
  over land, over cold water and with age.

Everything is deterministic from ``seed``; the storm motion does not depend on
the output grid, window or time step, so a coarse and a fine sample of the same
seed show the same storms, and a 10-day world is the first 10 days of the
30-day world.
"""

from __future__ import annotations

import json
import logging
import math
import time as _time
from dataclasses import dataclass, fields

import numpy as np
import xarray as xr

from climode.errors import ConfigError, DataError
from climode.data.synthetic.landsea import (
    LAND_SOURCES,
    land_fraction_near,
    is_land,
    resolve_land_source,
)
from climode.time import data_time, hours_since

log = logging.getLogger(__name__)

EARTH_RADIUS = 6.371e6  # m
OMEGA = 7.292e-5  # s-1
_DEG = math.pi / 180.0
_STEP_S = 3600.0  # internal time step of the storm integration (1 h)

_RANGE_FIELDS = (
    "lat_range", "lon_range", "genesis_lat", "genesis_lon", "dp_max_hpa",
    "intensification_days", "lifetime_days", "rmax_km", "holland_b", "beta_drift_ms",
)


@dataclass(frozen=True)
class HurricaneWorldConfig:
    """Parameters of the synthetic hurricane world (all have working defaults)."""

    seed: int = 0
    # output grid and time axis
    days: float = 30.0
    dt_hours: int = 3
    start: str = "2000-08-01"
    resolution: float = 1.5
    lat_range: tuple[float, float] = (5.0, 60.0)
    lon_range: tuple[float, float] = (255.0, 359.0)
    # background pressure (hPa, degrees)
    p_equator_hpa: float = 1010.0
    p_ridge_hpa: float = 1015.5
    p_pole_hpa: float = 1004.0
    ridge_lat: float = 28.0
    ridge_width_south: float = 16.0
    ridge_width_north: float = 18.0
    high_hpa: float = 5.0
    high_lat: float = 33.0
    high_lon: float = 335.0
    high_width_lat: float = 10.0
    high_width_lon: float = 30.0
    wave_amplitude_hpa: float = 3.0
    n_waves: int = 4
    n_tropical_waves: int = 2
    air_density: float = 1.1
    friction: float = 3.0e-6
    # storms
    genesis_rate_per_day: float = 0.2
    spinup_days: float = 8.0
    genesis_lat: tuple[float, float] = (10.0, 20.0)
    genesis_lon: tuple[float, float] = (300.0, 345.0)
    dp_genesis_hpa: float = 3.0
    dp_max_hpa: tuple[float, float] = (20.0, 70.0)
    intensification_days: tuple[float, float] = (1.0, 3.0)
    lifetime_days: tuple[float, float] = (8.0, 14.0)
    rmax_km: tuple[float, float] = (50.0, 120.0)
    holland_b: tuple[float, float] = (1.2, 1.8)
    beta_drift_ms: tuple[float, float] = (1.5, 3.0)
    steering_factor: float = 0.8
    land_decay_days: float = 0.75
    cold_lat: float = 38.0
    cold_decay_days: float = 2.0
    aging_decay_days: float = 2.0
    wind_reduction: float = 0.9
    translation_factor: float = 0.5
    merge_km: float = 300.0
    land_source: str = "auto"

    def __post_init__(self):
        for name in _RANGE_FIELDS:
            val = getattr(self, name)
            try:
                lo, hi = (float(v) for v in val)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}={val!r} must be a pair of numbers (low, high)") from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ConfigError(f"{name}={val!r} must be a finite pair with low <= high")
            object.__setattr__(self, name, (lo, hi))
        for f in fields(self):
            if f.name in _RANGE_FIELDS or f.name in ("start", "land_source"):
                continue
            val = getattr(self, f.name)
            want = int if f.type in ("int", int) else float
            if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
                raise ConfigError(f"{f.name}={val!r} must be a number")
            if want is int and float(val) != int(val):
                raise ConfigError(f"{f.name}={val!r} must be an integer")
            val = want(val)
            if not math.isfinite(val):
                raise ConfigError(f"{f.name}={val!r} must be finite")
            object.__setattr__(self, f.name, val)
        positive = (
            "days", "dt_hours", "resolution", "air_density", "ridge_width_south",
            "ridge_width_north", "high_width_lat", "high_width_lon", "land_decay_days",
            "cold_decay_days", "aging_decay_days", "dp_genesis_hpa",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        nonneg = (
            "seed", "n_waves", "n_tropical_waves", "wave_amplitude_hpa", "friction",
            "genesis_rate_per_day", "spinup_days", "steering_factor", "wind_reduction",
            "translation_factor", "high_hpa", "merge_km",
        )
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        lat0, lat1 = self.lat_range
        if not (-85.0 <= lat0 < lat1 <= 85.0):
            raise ConfigError(f"lat_range={self.lat_range} must satisfy -85 <= low < high <= 85")
        lon0, lon1 = self.lon_range
        if not (-180.0 <= lon0 < lon1 <= 360.0 and lon1 - lon0 <= 360.0):
            raise ConfigError(
                f"lon_range={self.lon_range} must satisfy -180 <= low < high <= 360 and span <= 360"
            )
        if self.resolution > min(lat1 - lat0, lon1 - lon0):
            raise ConfigError(f"resolution={self.resolution} is larger than the domain; use a smaller one")
        if not (-80.0 <= self.genesis_lat[0] and self.genesis_lat[1] <= 80.0):
            raise ConfigError(f"genesis_lat={self.genesis_lat} must lie within -80..80")
        if self.dp_max_hpa[0] <= self.dp_genesis_hpa:
            raise ConfigError(
                f"dp_max_hpa={self.dp_max_hpa} must exceed dp_genesis_hpa={self.dp_genesis_hpa}"
            )
        for name in ("intensification_days", "lifetime_days", "rmax_km", "holland_b"):
            if getattr(self, name)[0] <= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be positive")
        if self.n_time < 1:
            raise ConfigError(f"days={self.days} is shorter than one step of dt_hours={self.dt_hours}")
        if self.land_source not in LAND_SOURCES:
            raise ConfigError(
                f"land_source={self.land_source!r} is unknown; use one of {', '.join(LAND_SOURCES)}"
            )
        _parse_start(self.start)

    @property
    def n_time(self) -> int:
        return int(math.floor(self.days * 24.0 / self.dt_hours + 1e-9))

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def _parse_start(start: str):
    """The world's first time: a noleap date at a whole hour, ``'YYYY-MM-DD'`` or ``'YYYY-MM-DDTHH'``."""
    import cftime

    when = data_time(str(start), cftime.DatetimeNoLeap(2000, 1, 1), what="start time")
    if when.minute or when.second:
        raise ConfigError(f"start={start!r} is not a whole hour; use 'YYYY-MM-DD' or 'YYYY-MM-DDTHH'")
    return when


def config_from_params(seed: int = 0, **params) -> HurricaneWorldConfig:
    """Build a config from keyword overrides; unknown names raise ConfigError."""
    allowed = [f.name for f in fields(HurricaneWorldConfig)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown hurricane-world parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    return HurricaneWorldConfig(seed=seed, **params)


# --------------------------------------------------------------------------- background


@dataclass(frozen=True)
class _Waves:
    m: np.ndarray  # zonal wavenumber
    omega: np.ndarray  # s-1
    lat0: np.ndarray  # deg
    width: np.ndarray  # deg
    amp: np.ndarray  # Pa
    phase: np.ndarray  # rad


def _draw_waves(cfg: HurricaneWorldConfig) -> _Waves:
    rng = np.random.default_rng([cfg.seed, 2])
    m, c, lat0, width, amp, phase = ([] for _ in range(6))
    for k in range(cfg.n_waves + cfg.n_tropical_waves):
        tropical = k >= cfg.n_waves
        if tropical:  # African-easterly-like waves: short, westward, weak
            m.append(rng.integers(10, 16))
            c.append(rng.uniform(-9.0, -5.0))
            lat0.append(rng.uniform(10.0, 18.0))
            width.append(6.0)
            amp.append(0.12 * cfg.wave_amplitude_hpa * rng.uniform(0.7, 1.0))
        else:  # midlatitude Rossby-like waves: long, mostly eastward
            m.append(rng.integers(3, 9))
            c.append(rng.uniform(-2.0, 10.0))
            lat0.append(rng.uniform(35.0, 55.0))
            width.append(rng.uniform(8.0, 14.0))
            amp.append(cfg.wave_amplitude_hpa * rng.uniform(0.6, 1.0))
        phase.append(rng.uniform(0.0, 2.0 * np.pi))
    m_ = np.asarray(m, dtype=float)
    lat_ = np.asarray(lat0, dtype=float)
    omega = m_ * np.asarray(c, dtype=float) / (EARTH_RADIUS * np.cos(lat_ * _DEG)) if m else m_
    return _Waves(m_, omega, lat_, np.asarray(width, float), np.asarray(amp, float) * 100.0, np.asarray(phase, float))


def _background(cfg: HurricaneWorldConfig, waves: _Waves, lat, lon, t, grad: bool = True):
    """Background PSL (Pa) and its analytic derivatives (Pa per degree of lat, lon).

    lat/lon in degrees and t in seconds, broadcastable.  Returns ``p`` alone if
    ``grad`` is false, else ``(p, dp_dlat, dp_dlon)``.
    """
    lat = np.asarray(lat, dtype=float)
    alat = np.abs(lat)
    south = alat < cfg.ridge_lat
    w = np.where(south, cfg.ridge_width_south, cfg.ridge_width_north)
    base = np.where(south, cfg.p_equator_hpa, cfg.p_pole_hpa) * 100.0
    q = (alat - cfg.ridge_lat) / w
    ridge = (cfg.p_ridge_hpa * 100.0 - base) * np.exp(-(q**2))
    p = base + ridge
    a = ((lon - cfg.high_lon + 180.0) % 360.0 - 180.0) / cfg.high_width_lon
    b = (lat - cfg.high_lat) / cfg.high_width_lat
    high = cfg.high_hpa * 100.0 * np.exp(-(a**2) - b**2)
    p = p + high
    if grad:
        py = ridge * (-2.0 * q / w) * np.where(lat < 0, -1.0, 1.0) + high * (-2.0 * b / cfg.high_width_lat)
        px = high * (-2.0 * a / cfg.high_width_lon)
    lam = lon * _DEG
    for k in range(waves.m.size):
        dy = (lat - waves.lat0[k]) / waves.width[k]
        env = waves.amp[k] * np.exp(-(dy**2))
        phase = waves.m[k] * lam - waves.omega[k] * t + waves.phase[k]
        c = env * np.cos(phase)
        p = p + c
        if grad:
            py = py + c * (-2.0 * dy / waves.width[k])
            px = px - env * np.sin(phase) * (waves.m[k] * _DEG)
    if not grad:
        return p
    return p, py, px


def _balance(cfg: HurricaneWorldConfig, lat, py, px):
    """Friction-regularised geostrophic wind from PSL derivatives (Pa per degree)."""
    py = py / (_DEG * EARTH_RADIUS)
    px = px / (_DEG * EARTH_RADIUS * np.cos(lat * _DEG))
    f = 2.0 * OMEGA * np.sin(lat * _DEG)
    r = cfg.friction
    den = np.maximum(cfg.air_density * (f * f + r * r), 1e-30)
    return -(r * px + f * py) / den, (f * px - r * py) / den


def _background_wind(cfg: HurricaneWorldConfig, waves: _Waves, lat, lon, t):
    """850 hPa wind (m/s) in friction-regularised geostrophic balance with the background PSL."""
    lat = np.asarray(lat, dtype=float)
    _, py, px = _background(cfg, waves, lat, lon, t)
    return _balance(cfg, lat, py, px)


# --------------------------------------------------------------------------- storms


@dataclass
class _Storms:
    """Per-storm constants (arrays over storms)."""

    genesis_hour: np.ndarray
    lat0: np.ndarray
    lon0: np.ndarray
    dp_max: np.ndarray  # Pa
    growth: np.ndarray  # s-1, logistic rate
    life: np.ndarray  # s
    rmax: np.ndarray  # m
    b: np.ndarray
    beta_u: np.ndarray  # m/s
    beta_v: np.ndarray

    @property
    def size(self) -> int:
        return self.genesis_hour.size


def _draw_storms(cfg: HurricaneWorldConfig, land: str) -> _Storms:
    """Genesis as a Poisson process (prefix-stable in ``days``), parameters per storm."""
    rng = np.random.default_rng([cfg.seed, 0])
    times = []
    t = -cfg.spinup_days
    while cfg.genesis_rate_per_day > 0:
        t += rng.exponential(1.0 / cfg.genesis_rate_per_day)
        if t >= cfg.days:
            break
        times.append(t)
        if len(times) > 100000:
            raise ConfigError("genesis_rate_per_day is absurdly large; use a value below 10")
    cols = {k.name: [] for k in fields(_Storms)}
    dp0 = cfg.dp_genesis_hpa
    for k, tg in enumerate(times):
        srng = np.random.default_rng([cfg.seed, 1, k])
        la = srng.uniform(*cfg.genesis_lat, size=20)
        lo = srng.uniform(*cfg.genesis_lon, size=20)
        sea = ~is_land(la, lo, land)
        if not sea.any():
            log.debug("storm %d skipped: genesis region is land", k)
            continue
        i = int(np.argmax(sea))
        dpmax = srng.uniform(*cfg.dp_max_hpa)
        tau = srng.uniform(*cfg.intensification_days) * 86400.0
        cols["genesis_hour"].append(int(math.ceil(tg * 24.0)))
        cols["lat0"].append(la[i])
        cols["lon0"].append(lo[i])
        cols["dp_max"].append(dpmax * 100.0)
        # logistic growth from dp0 to 95% of dp_max in `tau`
        cols["growth"].append(math.log(19.0 * (dpmax - dp0) / dp0) / tau)
        cols["life"].append(srng.uniform(*cfg.lifetime_days) * 86400.0)
        cols["rmax"].append(srng.uniform(*cfg.rmax_km) * 1000.0)
        cols["b"].append(srng.uniform(*cfg.holland_b))
        speed = srng.uniform(*cfg.beta_drift_ms)
        ang = srng.uniform(25.0, 50.0) * _DEG  # from north towards the west
        hemi = 1.0 if la[i] >= 0 else -1.0
        cols["beta_u"].append(-speed * math.sin(ang))
        cols["beta_v"].append(hemi * speed * math.cos(ang))
    return _Storms(**{k: np.asarray(v, dtype=np.int64 if k == "genesis_hour" else float) for k, v in cols.items()})


def _storm_velocity(cfg, waves, st: _Storms, idx, lat, lon, t):
    u, v = _background_wind(cfg, waves, lat, lon, t)
    return cfg.steering_factor * u + st.beta_u[idx], cfg.steering_factor * v + st.beta_v[idx]


def _integrate_storms(cfg: HurricaneWorldConfig, waves: _Waves, st: _Storms, land: str) -> dict:
    """Hourly integration of positions and pressure deficits; returns states at output times."""
    n_out, dt_h = cfg.n_time, int(cfg.dt_hours)
    S = st.size
    rec = {k: np.full((n_out, S), np.nan) for k in ("lat", "lon", "dp", "ut", "vt", "landfrac")}
    if S == 0:
        return rec
    lat = st.lat0.copy()
    lon = st.lon0.copy()
    dp = np.full(S, cfg.dp_genesis_hpa * 100.0)
    state = np.zeros(S, dtype=np.int8)  # 0 not born, 1 alive, 2 dead
    last_hour = (n_out - 1) * dt_h
    dt = _STEP_S
    for h in range(int(st.genesis_hour.min()), last_hour + 1):
        state[(state == 0) & (st.genesis_hour == h)] = 1
        idx = np.flatnonzero(state == 1)
        if idx.size == 0:
            continue
        t = h * dt
        la, lo, d = lat[idx], lon[idx], dp[idx]
        u1, v1 = _storm_velocity(cfg, waves, st, idx, la, lo, t)
        lf = land_fraction_near(la, lo, land)
        if h >= 0 and h % dt_h == 0:
            k = h // dt_h
            for name, val in (("lat", la), ("lon", lo), ("dp", d), ("ut", u1), ("vt", v1), ("landfrac", lf)):
                rec[name][k, idx] = val
        # Heun step for the position
        la1 = la + v1 * dt / EARTH_RADIUS / _DEG
        lo1 = lo + u1 * dt / (EARTH_RADIUS * np.cos(la * _DEG)) / _DEG
        u2, v2 = _storm_velocity(cfg, waves, st, idx, la1, lo1, t + dt)
        u, v = 0.5 * (u1 + u2), 0.5 * (v1 + v2)
        lat[idx] = la + v * dt / EARTH_RADIUS / _DEG
        lon[idx] = (lo + u * dt / (EARTH_RADIUS * np.cos(0.5 * (la + lat[idx]) * _DEG)) / _DEG) % 360.0
        # pressure deficit: logistic growth over warm sea, exponential decay otherwise
        age = (h - st.genesis_hour[idx]) * dt
        cold = 1.0 / (1.0 + np.exp(-(np.abs(la) - cfg.cold_lat) / 2.0))
        old = (age > st.life[idx]).astype(float)
        sea = np.clip(1.0 - 2.0 * lf, 0.0, 1.0)  # no intensification once half the core is over land
        grow = sea * (1 - cold) * (1 - old) * st.growth[idx] * d * (1 - d / st.dp_max[idx])
        decay = d * (
            lf / (cfg.land_decay_days * 86400.0)
            + cold / (cfg.cold_decay_days * 86400.0)
            + old / (cfg.aging_decay_days * 86400.0)
        )
        dp[idx] = np.maximum(d + dt * (grow - decay), 0.0)
        dead = ((age > 12 * 3600.0) & (dp[idx] < 150.0)) | (np.abs(lat[idx]) > 80.0)
        if idx.size > 1:  # merger: of two centres closer than merge_km the weaker one is absorbed
            la2, lo2 = lat[idx], lon[idx]
            dist = _great_circle_m(la2[:, None], lo2[:, None], la2[None, :], lo2[None, :])
            close = (dist < cfg.merge_km * 1000.0) & ~np.eye(idx.size, dtype=bool)
            weaker = (dp[idx][:, None] < dp[idx][None, :]) | (
                (dp[idx][:, None] == dp[idx][None, :]) & (idx[:, None] > idx[None, :])
            )
            dead |= (close & weaker).any(axis=1)
        state[idx[dead]] = 2
    return rec


def _vortex(cfg, plat, plon, slat, slon, dp, rmax, b, ut, vt):
    """Holland pressure deficit (Pa) and wind (m/s) of storms at points; sums over axis -2.

    Points have shape (..., 1, P) and storms (..., S, 1).
    """
    dlon = ((plon - slon + 180.0) % 360.0 - 180.0) * _DEG
    dy = (plat - slat) * _DEG * EARTH_RADIUS
    dx = dlon * EARTH_RADIUS * np.cos(0.5 * (plat + slat) * _DEG)
    r = np.maximum(np.hypot(dx, dy), 1.0)
    x = (rmax / r) ** b
    e = np.exp(-x)
    deficit = dp * (1.0 - e)
    f = 2.0 * OMEGA * np.sin(slat * _DEG)
    half_rf = 0.5 * r * np.abs(f)
    vg = np.sqrt(b / cfg.air_density * x * dp * e + half_rf**2) - half_rf
    hr = 0.5 * rmax * np.abs(f)
    vmax = np.sqrt(b / cfg.air_density * dp * math.exp(-1.0) + hr**2) - hr
    hemi = np.where(f < 0, -1.0, 1.0)
    asym = cfg.translation_factor * np.divide(vg, vmax, out=np.zeros_like(vg), where=vmax > 0)
    u = cfg.wind_reduction * (-hemi * vg * dy / r) + asym * ut
    v = cfg.wind_reduction * (hemi * vg * dx / r) + asym * vt
    return deficit.sum(-2), u.sum(-2), v.sum(-2)


_RING_R = np.array([0.0, 0.15, 0.3, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5])
_RING_A = np.arange(16) * (2 * np.pi / 16)


def _ring_offsets(rmax, slat):
    """Lat/lon offsets (deg) of the sampling rings around storms: shape (..., S, 9*16)."""
    rr = (rmax[..., None] * np.repeat(_RING_R, _RING_A.size))
    aa = np.tile(_RING_A, _RING_R.size)
    dlat = rr * np.cos(aa) / EARTH_RADIUS / _DEG
    dlon = rr * np.sin(aa) / (EARTH_RADIUS * np.cos(slat[..., None] * _DEG)) / _DEG
    return dlat, dlon


# --------------------------------------------------------------------------- public API


def _grid(cfg: HurricaneWorldConfig):
    def axis(lo, hi):
        n = int(math.floor((hi - lo) / cfg.resolution + 1e-6)) + 1
        return np.round(lo + cfg.resolution * np.arange(n), 6)

    return axis(*cfg.lat_range), axis(*cfg.lon_range)


def generate(seed: int = 0, **params) -> xr.Dataset:
    """Generate a synthetic hurricane world; ``params`` override :class:`HurricaneWorldConfig`."""
    return generate_from_config(config_from_params(seed=seed, **params))


def generate_from_config(config: HurricaneWorldConfig) -> xr.Dataset:
    """Generate U850, V850, PSL on (time, lat, lon) plus truth tracks on (storm, time)."""
    import cftime

    if not isinstance(config, HurricaneWorldConfig):
        raise ConfigError("generate_from_config needs a HurricaneWorldConfig; use generate(**params) for keywords")
    cfg = config
    t0 = _time.perf_counter()
    land = resolve_land_source(cfg.land_source)
    waves = _draw_waves(cfg)
    storms = _draw_storms(cfg, land)
    rec = _integrate_storms(cfg, waves, storms, land)

    lat, lon = _grid(cfg)
    n_t, dt_h = cfg.n_time, int(cfg.dt_hours)
    tsec = np.arange(n_t) * dt_h * 3600.0
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    glat, glon = glat.ravel(), glon.ravel()
    P = glat.size

    alive_any = np.isfinite(rec["dp"]).any(axis=0)
    sidx = np.flatnonzero(alive_any)
    S = sidx.size
    psl = np.empty((n_t, P), dtype=np.float32)
    uu = np.empty((n_t, P), dtype=np.float32)
    vv = np.empty((n_t, P), dtype=np.float32)
    tr_psl = np.full((n_t, S), np.nan)
    tr_wind = np.full((n_t, S), np.nan)

    nring = _RING_R.size * _RING_A.size
    chunk = max(1, min(n_t, int(3e6 // (max(S, 1) * (P + S * nring)))))
    for a in range(0, n_t, chunk):
        sl = slice(a, min(a + chunk, n_t))
        T = sl.stop - sl.start
        s_alive = np.isfinite(rec["dp"][sl][:, sidx])
        cols = np.flatnonzero(s_alive.any(axis=0))  # storms alive in this chunk
        sub = sidx[cols]
        g = {k: np.nan_to_num(rec[k][sl][:, sub]) for k in ("lat", "lon", "dp", "ut", "vt")}
        rm = np.broadcast_to(storms.rmax[sub], (T, sub.size))
        dla, dlo = _ring_offsets(rm, g["lat"])
        plat = np.concatenate([np.broadcast_to(glat, (T, P)), (g["lat"][..., None] + dla).reshape(T, -1)], axis=1)
        plon = np.concatenate([np.broadcast_to(glon, (T, P)), (g["lon"][..., None] + dlo).reshape(T, -1)], axis=1)
        tt = tsec[sl][:, None]
        p, py, px = _background(cfg, waves, plat, plon, tt)
        u, v = _balance(cfg, plat, py, px)
        if sub.size:
            e = lambda x: x[:, :, None]  # noqa: E731
            dpf, du, dv = _vortex(
                cfg, plat[:, None, :], plon[:, None, :], e(g["lat"]), e(g["lon"]), e(g["dp"]),
                storms.rmax[sub][None, :, None], storms.b[sub][None, :, None], e(g["ut"]), e(g["vt"]),
            )
            p, u, v = p - dpf, u + du, v + dv
            ring_p = p[:, P:].reshape(T, sub.size, nring)
            ring_w = np.hypot(u[:, P:], v[:, P:]).reshape(T, sub.size, nring)
            ok = s_alive[:, cols]
            tr_psl[sl, cols] = np.where(ok, ring_p.min(-1), np.nan)
            tr_wind[sl, cols] = np.where(ok, ring_w.max(-1), np.nan)
        psl[sl], uu[sl], vv[sl] = p[:, :P], u[:, :P], v[:, :P]

    # truth tracks: only while the centre is inside the output window
    tlat = rec["lat"][:, sidx]
    tlon = cfg.lon_range[0] + (rec["lon"][:, sidx] - cfg.lon_range[0]) % 360.0
    inside = (
        (tlat >= lat[0]) & (tlat <= lat[-1]) & (tlon >= lon[0]) & (tlon <= lon[-1]) & np.isfinite(tlat)
    )
    keep = inside.any(axis=0)
    tracks = {
        "track_lat": (tlat, "degrees_north", "Storm centre latitude", "latitude"),
        "track_lon": (tlon, "degrees_east", "Storm centre longitude", "longitude"),
        "track_min_psl": (tr_psl, "Pa", "Minimum sea level pressure of the storm (sampled within 1.5 Rmax)", None),
        "track_max_wind": (tr_wind, "m/s", "Maximum 850 mbar wind speed near the storm", None),
        "track_dp": (rec["dp"][:, sidx], "Pa", "Holland pressure deficit of the storm", None),
        "track_rmax": (
            np.broadcast_to(storms.rmax[sidx] / 1000.0, tlat.shape), "km", "Radius of maximum wind", None,
        ),
        "track_land_fraction": (rec["landfrac"][:, sidx], "1", "Land fraction around the storm centre", None),
    }

    start = _parse_start(cfg.start)
    units = f"hours since {start.year:04d}-01-01 00:00:00"
    h0 = cftime.date2num(start, units, calendar="noleap")
    times = cftime.num2date(h0 + np.arange(n_t) * dt_h, units, calendar="noleap")

    data_vars = {}
    for name, arr, units_, long_name, std in (
        ("U850", uu, "m/s", "Zonal wind at 850 mbar pressure surface", "eastward_wind"),
        ("V850", vv, "m/s", "Meridional wind at 850 mbar pressure surface", "northward_wind"),
        ("PSL", psl, "Pa", "Sea level pressure", "air_pressure_at_mean_sea_level"),
    ):
        data_vars[name] = xr.Variable(
            ("time", "lat", "lon"), arr.reshape(n_t, lat.size, lon.size),
            {"units": units_, "long_name": long_name, "standard_name": std},
        )
    for name, (arr, units_, long_name, std) in tracks.items():
        attrs = {"units": units_, "long_name": long_name}
        if std:
            attrs["standard_name"] = std
        data_vars[name] = xr.Variable(("storm", "time"), np.asarray(arr[:, keep].T, dtype=np.float32), attrs)
        data_vars[name].values[~inside[:, keep].T] = np.nan

    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", times, {"standard_name": "time", "long_name": "time", "axis": "T"}),
            "lat": ("lat", lat, {"units": "degrees_north", "long_name": "latitude", "standard_name": "latitude", "axis": "Y"}),
            "lon": ("lon", lon, {"units": "degrees_east", "long_name": "longitude", "standard_name": "longitude", "axis": "X"}),
            "storm": ("storm", sidx[keep].astype(np.int32), {"long_name": "storm id (genesis order, stable across windows)"}),
        },
        attrs={
            "title": "Synthetic CAM5-like hurricane world (U850, V850, PSL)",
            "source": "climode.data.synthetic.hurricanes: analytic balanced background with Holland (1980) vortices; not model output",
            "Conventions": "CF-1.8",
            "seed": int(cfg.seed),
            "config": json.dumps(cfg.to_dict(), sort_keys=True),
            "land_source": land,
            "references": "Holland (1980) Mon. Wea. Rev. 108, 1212-1218; docs/synthetic_hurricanes.md",
        },
    )
    ds["time"].encoding.update({"units": units, "calendar": "noleap", "dtype": "float64", "_FillValue": None})
    for name in ("lat", "lon", "storm"):
        ds[name].encoding["_FillValue"] = None
    log.info(
        "generated hurricane world seed=%d: %d steps, %dx%d grid, %d storms in %.2fs",
        cfg.seed, n_t, lat.size, lon.size, ds.sizes["storm"], _time.perf_counter() - t0,
    )
    return ds


def land_sea_mask(lat, lon, source: str = "auto") -> xr.DataArray:
    """Static land-sea mask (1 land, 0 sea) on the given 1-D lat/lon; see :mod:`.landsea`."""
    from climode.data.synthetic.landsea import land_sea_mask as _lsm

    return _lsm(lat, lon, source=source)


# --------------------------------------------------------------------------- statistics


def _great_circle_m(lat1, lon1, lat2, lon2):
    p1, p2 = lat1 * _DEG, lat2 * _DEG
    dl = (lon2 - lon1) * _DEG
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def summarize(ds: xr.Dataset) -> dict:
    """Difficulty statistics of one generated world (plain floats, JSON-ready)."""
    need = ("U850", "V850", "PSL", "track_lat", "track_lon", "track_min_psl", "track_max_wind")
    missing = [n for n in need if n not in ds]
    if missing:
        raise DataError(f"summarize needs a generated hurricane world; missing {', '.join(missing)}")
    out: dict = {}
    for name in ("U850", "V850", "PSL"):
        a = ds[name].values.astype(np.float64)
        out[f"{name}_mean"] = float(a.mean())
        out[f"{name}_std"] = float(a.std())
    speed = np.hypot(ds["U850"].values.astype(float), ds["V850"].values.astype(float))
    out["grid_min_psl_hpa"] = float(ds["PSL"].values.min()) / 100.0
    out["grid_max_wind"] = float(speed.max())
    hrs = hours_since(ds["time"].values)
    lat = ds["track_lat"].values.astype(float)
    lon = ds["track_lon"].values.astype(float)
    n_storms = lat.shape[0]
    out["n_storms"] = int(n_storms)
    out["mean_active_storms"] = float(np.isfinite(lat).sum(0).mean()) if lat.size else 0.0
    out["days"] = float((hrs[-1] - hrs[0] + (hrs[1] - hrs[0] if hrs.size > 1 else 0)) / 24.0)
    if hrs.size > 1 and n_storms:
        dt = np.diff(hrs) * 3600.0
        dist = _great_circle_m(lat[:, :-1], lon[:, :-1], lat[:, 1:], lon[:, 1:])
        spd = dist / dt
        ueast = ((lon[:, 1:] - lon[:, :-1] + 180) % 360 - 180) * _DEG * EARTH_RADIUS * np.cos(
            0.5 * (lat[:, 1:] + lat[:, :-1]) * _DEG
        ) / dt
        ok = np.isfinite(spd)
        low = ok & (0.5 * (lat[:, 1:] + lat[:, :-1]) < 22.0)
        out["translation_speed_mean"] = float(spd[ok].mean()) if ok.any() else float("nan")
        out["translation_speed_p10"] = float(np.percentile(spd[ok], 10)) if ok.any() else float("nan")
        out["translation_speed_p90"] = float(np.percentile(spd[ok], 90)) if ok.any() else float("nan")
        out["westward_fraction_below_22N"] = float((ueast[low] < 0).mean()) if low.any() else float("nan")
        # recurvature: westward motion (<-1 m/s over 12 h) followed later by eastward (>+1 m/s)
        k = max(1, int(round(12.0 / np.median(np.diff(hrs)))))
        rec_flags = []
        for s in range(n_storms):
            ue = ueast[s]
            good = np.isfinite(ue)
            if good.sum() < 2 * k:
                continue
            sm = np.convolve(np.where(good, ue, np.nan), np.ones(k) / k, mode="valid")
            west = np.flatnonzero(sm < -1.0)
            rec_flags.append(bool(west.size and (sm[west[0]:] > 1.0).any()))
        out["n_storms_2day"] = int(sum(np.isfinite(lat[s]).sum() * (hrs[1] - hrs[0]) >= 48 for s in range(n_storms)))
        out["recurving_fraction"] = float(np.mean(rec_flags)) if rec_flags else float("nan")
    for key in ("translation_speed_mean", "translation_speed_p10", "translation_speed_p90",
                "westward_fraction_below_22N", "recurving_fraction"):
        out.setdefault(key, float("nan"))
    out.setdefault("n_storms_2day", 0)
    mp = ds["track_min_psl"].values.astype(float)
    mw = ds["track_max_wind"].values.astype(float)
    has = np.isfinite(mp).any(1) if n_storms else np.zeros(0, bool)
    if has.any():
        per_min = np.nanmin(mp[has], axis=1) / 100.0
        per_max = np.nanmax(mw[has], axis=1)
        out["track_min_psl_hpa"] = float(per_min.min())
        out["track_max_wind"] = float(per_max.max())
        out["storm_min_psl_median_hpa"] = float(np.median(per_min))
        out["storm_max_wind_median"] = float(np.median(per_max))
    else:
        for key in ("track_min_psl_hpa", "track_max_wind", "storm_min_psl_median_hpa", "storm_max_wind_median"):
            out[key] = float("nan")
    # background variability: temporal std of PSL far (> 1500 km) from every storm
    psl = ds["PSL"].values.astype(float)
    glat, glon = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
    far = np.ones(psl.shape, bool)
    for s in range(n_storms):
        for ti in np.flatnonzero(np.isfinite(lat[s])):
            far[ti] &= _great_circle_m(glat, glon, lat[s, ti], lon[s, ti]) > 1.5e6
    cnt = far.sum(0)
    mean = np.where(far, psl, 0).sum(0) / np.maximum(cnt, 1)
    var = np.where(far, (psl - mean) ** 2, 0).sum(0) / np.maximum(cnt, 1)
    enough = cnt >= max(3, psl.shape[0] // 4)
    out["background_psl_std_hpa"] = float(np.median(np.sqrt(var[enough])) / 100.0) if enough.any() else float("nan")
    return out


def summarize_seasons(seeds=range(10), **params) -> dict:
    """Mean (and min/max) of :func:`summarize` over several seeds; the documented difficulty table."""
    rows = [summarize(generate(seed=int(s), **params)) for s in seeds]
    out = {"n_seasons": len(rows)}
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], float)
        if np.isfinite(vals).any():
            out[key] = {"mean": float(np.nanmean(vals)), "min": float(np.nanmin(vals)), "max": float(np.nanmax(vals))}
    return out


__all__ = [
    "HurricaneWorldConfig",
    "generate",
    "generate_from_config",
    "land_sea_mask",
    "summarize",
    "summarize_seasons",
    "config_from_params",
]
