"""Cyclone centres from PSL minima, tracks, and their matching against the truth.

Detection (per frame, in the spirit of TempestExtremes' DetectNodes):

1. candidates are grid-point local minima of PSL (3x3 neighbourhood,
   longitude wrapping on global grids) below ``max_psl``;
2. a closed-contour test: the connected region of cells with
   ``PSL < min + closed_contour_hpa`` around the minimum must stay within
   ``closed_contour_radius_deg`` (great-circle degrees) of it;
3. optionally a cyclonic 850 hPa relative-vorticity threshold, the largest
   ``vorticity * sign(lat)`` within ``vorticity_radius_deg``;
4. candidates closer than ``merge_distance_deg`` keep only the deepest;
5. the centre is refined to sub-grid by a least-squares quadratic surface fit
   on the 3x3 cells around the minimum; ``min_psl`` is the grid minimum (a
   fitted vertex overshoots the flat core of real pressure profiles).

Tracks stitch centres over time greedily by shortest distance, with a
maximum jump of ``max_speed_km_per_6h * dt / 6 h``.  Scores match forecast and
truth centres at each valid time within ``max_distance_km`` (optimal
one-to-one assignment); :func:`climode.metrics.streaming.score_tracks` turns the
matches into POD, FAR, track error and intensity errors.
Distances are haversine great-circle distances with R = 6371 km.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from climode.errors import ConfigError, DataError
from climode.grid import is_global_lon
from climode.time import hours_between

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class Centre:
    """A cyclone centre: position (degrees, lon in 0..360), min PSL (Pa), max wind (m/s, NaN if unknown)."""

    lat: float
    lon: float
    min_psl: float
    max_wind: float = float("nan")
    time: Any = None
    vorticity: float = float("nan")


@dataclass
class Track:
    """Centres of one cyclone in time order."""

    centres: list[Centre] = field(default_factory=list)
    track_id: int = 0

    def __len__(self) -> int:
        return len(self.centres)

    @property
    def times(self) -> list[Any]:
        return [c.time for c in self.centres]


@dataclass(frozen=True)
class DetectionParams:
    """Parameters of :func:`detect_centres` (pressures in Pa/hPa as named, radii in great-circle degrees)."""

    max_psl: float | None = 101_000.0
    closed_contour_hpa: float | None = 2.0
    closed_contour_radius_deg: float = 5.0
    min_vorticity: float | None = None
    vorticity_radius_deg: float = 2.0
    wind_radius_deg: float = 3.0
    merge_distance_deg: float = 6.0

    def __post_init__(self) -> None:
        for name in ("closed_contour_radius_deg", "vorticity_radius_deg", "wind_radius_deg"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"DetectionParams.{name} must be > 0, got {getattr(self, name)!r}")
        if self.closed_contour_hpa is not None and not self.closed_contour_hpa > 0:
            raise ConfigError(f"DetectionParams.closed_contour_hpa must be > 0 or None, got {self.closed_contour_hpa!r}")
        if self.merge_distance_deg < 0:
            raise ConfigError(f"DetectionParams.merge_distance_deg must be >= 0, got {self.merge_distance_deg!r}")
        if self.closed_contour_hpa is None and self.min_vorticity is None and self.max_psl is None:
            raise ConfigError(
                "DetectionParams: set at least one of closed_contour_hpa, min_vorticity or max_psl, "
                "or every local minimum counts as a cyclone"
            )


@dataclass(frozen=True)
class TrackParams:
    """Parameters of :func:`track`."""

    max_speed_km_per_6h: float = 500.0
    min_length: int = 3
    max_gap: int = 0

    def __post_init__(self) -> None:
        if not self.max_speed_km_per_6h > 0:
            raise ConfigError(f"TrackParams.max_speed_km_per_6h must be > 0, got {self.max_speed_km_per_6h!r}")
        if self.min_length < 1 or self.max_gap < 0:
            raise ConfigError("TrackParams: min_length must be >= 1 and max_gap >= 0")


# ------------------------------------------------------------------ geometry


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray | float:
    """Great-circle distance in km (haversine, R = 6371 km); broadcasts."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dphi = p2 - p1
    dlam = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def _gc_deg(lat1, lon1, lat2, lon2):
    return np.rad2deg(np.asarray(haversine_km(lat1, lon1, lat2, lon2)) / EARTH_RADIUS_KM)


def _check_grid(psl: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
    if psl.ndim != 2 or psl.shape != (lat.size, lon.size):
        raise DataError(f"psl must be a 2-D (lat={lat.size}, lon={lon.size}) field, got shape {psl.shape}")
    if lat.size < 3 or lon.size < 3:
        raise DataError("cyclone detection needs at least 3x3 grid cells")
    for name, c in (("lat", lat), ("lon", lon)):
        d = np.diff(c)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise DataError(f"{name} must be strictly monotonic for cyclone detection")


def relative_vorticity(u: Any, v: Any, lat: Any, lon: Any) -> np.ndarray:
    """Relative vorticity (1/s) on the sphere from winds ``(..., lat, lon)`` in m/s.

    ``zeta = (dv/dlambda - d(u cos phi)/dphi) / (R cos phi)`` with centred
    differences (one-sided at the edges, periodic in longitude on global grids).
    NaN within 0.5 degrees of the poles.
    """
    u, v = np.asarray(u, float), np.asarray(v, float)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    if u.shape != v.shape or u.shape[-2:] != (lat.size, lon.size):
        raise DataError(f"u {u.shape} and v {v.shape} must both end in (lat={lat.size}, lon={lon.size})")
    phi = np.deg2rad(lat)[:, None]
    lam = np.deg2rad(lon)
    if is_global_lon(lon):
        step = np.deg2rad(np.median(np.diff(lon)))
        vp = np.concatenate([v[..., -1:], v, v[..., :1]], axis=-1)
        dv = (vp[..., 2:] - vp[..., :-2]) / (2 * step)
    else:
        dv = np.gradient(v, lam, axis=-1)
    duc = np.gradient(u * np.cos(phi), phi[:, 0], axis=-2)
    cos = np.cos(phi)
    with np.errstate(invalid="ignore", divide="ignore"):
        zeta = (dv - duc) / (EARTH_RADIUS_M * cos)
    return np.where(np.abs(lat)[:, None] > 89.5, np.nan, zeta)


# ------------------------------------------------------------------ detection


def _box(i: int, j: int, lat: np.ndarray, lon: np.ndarray, radius_deg: float, wrap: bool):
    """Row/col indices of a box covering a great-circle radius around (i, j); and whether it was clipped."""
    dlat = abs(float(np.median(np.diff(lat))))
    dlon = abs(float(np.median(np.diff(lon))))
    nr = int(math.ceil(radius_deg / dlat)) + 1
    rows = np.arange(i - nr, i + nr + 1)
    clipped = rows.min() < 0 or rows.max() >= lat.size
    rows = rows[(rows >= 0) & (rows < lat.size)]
    maxlat = min(89.0, float(np.max(np.abs(lat[rows]))))
    nc = int(math.ceil(radius_deg / (dlon * math.cos(math.radians(maxlat))))) + 1
    if wrap:
        nc = min(nc, lon.size // 2)
        cols = (j + np.arange(-nc, nc + 1)) % lon.size
    else:
        cols = np.arange(j - nc, j + nc + 1)
        clipped = clipped or cols.min() < 0 or cols.max() >= lon.size
        cols = cols[(cols >= 0) & (cols < lon.size)]
    return rows, cols, bool(clipped)


def _closed_contour(psl, i, j, lat, lon, delta_pa, radius_deg, wrap) -> bool:
    rows, cols, clipped = _box(i, j, lat, lon, radius_deg, wrap)
    sub = psl[np.ix_(rows, cols)]
    ci, cj = int(np.where(rows == i)[0][0]), int(np.where(cols == j)[0][0])
    mask = np.nan_to_num(sub, nan=np.inf) < psl[i, j] + delta_pa
    labels, _ = ndimage.label(mask)
    comp = labels == labels[ci, cj]
    dist = _gc_deg(lat[i], lon[j], lat[rows][:, None], lon[cols][None, :])
    if np.any(dist[comp] > radius_deg):
        return False
    touches_edge = comp[0, :].any() or comp[-1, :].any() or comp[:, 0].any() or comp[:, -1].any()
    return not (clipped and touches_edge)


def _refine(psl, i, j, lat, lon, wrap) -> tuple[float, float, float]:
    """Sub-grid centre by a quadratic surface fit on the 3x3 cells around (i, j); min PSL of the grid."""
    cols = (j + np.arange(-1, 2)) % lon.size if wrap else np.arange(j - 1, j + 2)
    z = psl[np.ix_(np.arange(i - 1, i + 2), cols)]
    yy, xx = np.mgrid[-1:2, -1:2]
    A = np.stack([np.ones(9), xx.ravel(), yy.ravel(), xx.ravel() ** 2, (xx * yy).ravel(), yy.ravel() ** 2], 1)
    (_c0, bx, by, dxx, exy, fyy), *_ = np.linalg.lstsq(A, z.ravel(), rcond=None)
    H = np.array([[2 * dxx, exy], [exy, 2 * fyy]])
    ox = oy = 0.0
    if np.linalg.det(H) > 0 and H[0, 0] > 0:
        ox, oy = np.linalg.solve(H, -np.array([bx, by]))
    if not (abs(ox) <= 1 and abs(oy) <= 1):  # fall back to separable 1-D parabolas
        def para(a, b, c):
            den = a - 2 * b + c
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 0 else 0.0

        ox, oy = para(z[1, 0], z[1, 1], z[1, 2]), para(z[0, 1], z[1, 1], z[2, 1])
    pmin = float(psl[i, j])  # the fitted vertex overshoots flat-bottomed profiles; keep the data value
    dlat = lat[i + 1] - lat[i - 1]
    clat = lat[i] + oy * dlat / 2
    step = float(np.median(np.diff(lon)))
    clon = (lon[j] + ox * step) % 360.0
    return float(clat), float(clon), pmin


def detect_centres(
    psl: Any,
    lat: Any,
    lon: Any,
    u: Any = None,
    v: Any = None,
    params: DetectionParams | None = None,
    *,
    time: Any = None,
) -> list[Centre]:
    """Cyclone centres in one PSL frame ``(lat, lon)`` in Pa; winds (m/s) are optional.

    With ``u``/``v`` each centre gets the largest wind speed within
    ``wind_radius_deg``; ``params.min_vorticity`` needs them.  Returns centres
    deepest first.
    """
    p = params or DetectionParams()
    psl = np.asarray(psl.values if hasattr(psl, "values") else psl, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    _check_grid(psl, lat, lon)
    if (u is None) != (v is None):
        raise ConfigError("pass both u and v (850 hPa winds) or neither")
    if p.min_vorticity is not None and u is None:
        raise ConfigError("DetectionParams.min_vorticity is set, so detect_centres needs u= and v= winds")
    if np.nanmax(psl) < 2000:
        raise DataError(f"psl values look like hPa (max {np.nanmax(psl):.1f}); pass PSL in Pa")
    wrap = is_global_lon(lon)
    speed = zeta = None
    if u is not None:
        u = np.asarray(u, float)
        v = np.asarray(v, float)
        if u.shape != psl.shape or v.shape != psl.shape:
            raise DataError(f"u {u.shape} and v {v.shape} must have the psl shape {psl.shape}")
        speed = np.hypot(u, v)
        if p.min_vorticity is not None:
            zeta = relative_vorticity(u, v, lat, lon) * np.sign(lat)[:, None]

    filled = np.nan_to_num(psl, nan=np.inf)
    modes = ("nearest", "wrap" if wrap else "nearest")
    mins = ndimage.minimum_filter(filled, size=3, mode=modes)
    maxs = ndimage.maximum_filter(np.nan_to_num(psl, nan=-np.inf), size=3, mode=modes)
    cand = (filled == mins) & (filled < maxs) & np.isfinite(psl)  # flat plateaus are not minima
    cand[0, :] = cand[-1, :] = False  # need neighbours on both sides for the fit
    if not wrap:
        cand[:, 0] = cand[:, -1] = False
    if p.max_psl is not None:
        cand &= psl < p.max_psl
    ii, jj = np.nonzero(cand)
    order = np.argsort(psl[ii, jj], kind="stable")
    kept: list[tuple[int, int]] = []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if any(_gc_deg(lat[i], lon[j], lat[a], lon[b]) < p.merge_distance_deg for a, b in kept):
            continue
        if p.closed_contour_hpa is not None and not _closed_contour(
            psl, i, j, lat, lon, 100.0 * p.closed_contour_hpa, p.closed_contour_radius_deg, wrap
        ):
            continue
        vort = float("nan")
        if zeta is not None:
            rows, cols, _ = _box(i, j, lat, lon, p.vorticity_radius_deg, wrap)
            d = _gc_deg(lat[i], lon[j], lat[rows][:, None], lon[cols][None, :])
            zz = zeta[np.ix_(rows, cols)][d <= p.vorticity_radius_deg]
            vort = float(np.nanmax(zz)) if np.any(np.isfinite(zz)) else float("nan")
            if not vort >= p.min_vorticity:
                continue
        kept.append((i, j))
    centres = []
    for i, j in kept:
        clat, clon, pmin = _refine(psl, i, j, lat, lon, wrap)
        wind = float("nan")
        if speed is not None:
            rows, cols, _ = _box(i, j, lat, lon, p.wind_radius_deg, wrap)
            d = _gc_deg(clat, clon, lat[rows][:, None], lon[cols][None, :])
            ss = speed[np.ix_(rows, cols)][d <= p.wind_radius_deg]
            wind = float(np.nanmax(ss)) if np.any(np.isfinite(ss)) else float("nan")
        vort = float("nan")
        if zeta is not None:
            vort = float(np.nanmax(zeta[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]))
        centres.append(Centre(clat, clon, pmin, wind, time, vort))
    log.debug("detect_centres: %d candidates, %d centres", ii.size, len(centres))
    return centres


# ------------------------------------------------------------------ tracking


def _frames_from_dataset(ds, detection, psl_var, u_var, v_var):
    latd = next((d for d in ("lat", "latitude") if d in ds[psl_var].dims), None)
    lond = next((d for d in ("lon", "longitude") if d in ds[psl_var].dims), None)
    if latd is None or lond is None or "time" not in ds[psl_var].dims:
        raise DataError(f"{psl_var} must have dims (time, lat, lon), got {ds[psl_var].dims}")
    have_wind = u_var in ds and v_var in ds
    lat, lon = ds[latd].values, ds[lond].values
    out = []
    for k in range(ds.sizes["time"]):
        fr = ds.isel(time=k)
        t = fr["time"].values.item() if fr["time"].values.dtype == object else fr["time"].values
        kw = {}
        if have_wind:
            kw = {"u": fr[u_var].transpose(latd, lond).values, "v": fr[v_var].transpose(latd, lond).values}
        cs = detect_centres(fr[psl_var].transpose(latd, lond).values, lat, lon, params=detection, time=t, **kw)
        out.append((t, cs))
    return out


def centres_by_time(
    data: Any, times: Sequence[Any] | None = None
) -> list[tuple[Any, list[Centre]]]:
    """Normalise centres to a time-ordered list of ``(time, centres)``.

    Accepts a mapping ``time -> centres``, a sequence of ``(time, centres)``
    pairs, a sequence of centre lists with ``times``, or a list of Tracks.
    """
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, Sequence) and data and all(isinstance(x, Track) for x in data):
        acc: dict[Any, list[Centre]] = {}
        for tr in data:
            for c in tr.centres:
                acc.setdefault(c.time, []).append(c)
        items = list(acc.items())
    elif times is not None:
        if len(times) != len(data):
            raise DataError(f"got {len(data)} frames of centres but {len(times)} times")
        items = list(zip(times, data))
    else:
        items = list(data)
        if not all(isinstance(x, tuple) and len(x) == 2 for x in items):
            raise DataError("pass centres as {time: [Centre, ...]}, as (time, centres) pairs, or with times=")
    try:
        items.sort(key=lambda kv: kv[0])
    except TypeError as exc:
        raise DataError("times of the centres cannot be ordered; use one time type throughout") from exc
    return [(t, list(cs)) for t, cs in items]


def track(
    data: Any,
    *,
    times: Sequence[Any] | None = None,
    detection: DetectionParams | None = None,
    params: TrackParams | None = None,
    psl_var: str = "PSL",
    u_var: str = "U850",
    v_var: str = "V850",
) -> list[Track]:
    """Stitch cyclone centres into tracks.

    ``data`` is an xarray Dataset with ``psl_var`` (and optionally winds) on
    dims (time, lat, lon), or centres per time (see :func:`centres_by_time`).
    A track continues to a centre at most ``max_speed_km_per_6h * dt / 6``
    away (nearest pairs first), may skip ``max_gap`` steps, and is kept if it
    has at least ``min_length`` centres.
    """
    tp = params or TrackParams()
    if hasattr(data, "data_vars"):
        if psl_var not in data:
            raise DataError(f"dataset has no {psl_var!r} variable; pass psl_var= with the sea-level-pressure name")
        frames = _frames_from_dataset(data, detection, psl_var, u_var, v_var)
    else:
        frames = centres_by_time(data, times)
    finished: list[list[Centre]] = []
    active: list[tuple[list[Centre], int]] = []  # (centres, index of last frame)
    for step, (t, cs) in enumerate(frames):
        cs = [c if c.time == t else Centre(c.lat, c.lon, c.min_psl, c.max_wind, t, c.vorticity) for c in cs]
        still = []
        for tr, last in active:
            if step - last - 1 <= tp.max_gap:
                still.append((tr, last))
            else:
                finished.append(tr)
        active = still
        pairs = []
        for a, (tr, last) in enumerate(active):
            dt = hours_between(frames[last][0], t)
            limit = tp.max_speed_km_per_6h * dt / 6.0
            for b, c in enumerate(cs):
                d = haversine_km(tr[-1].lat, tr[-1].lon, c.lat, c.lon)
                if d <= limit:
                    pairs.append((d, a, b))
        pairs.sort()
        used_a, used_b = set(), set()
        for d, a, b in pairs:
            if a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            active[a][0].append(cs[b])
            active[a] = (active[a][0], step)
        active.extend(([c], step) for b, c in enumerate(cs) if b not in used_b)
    finished.extend(tr for tr, _ in active)
    tracks = [tr for tr in finished if len(tr) >= tp.min_length]
    tracks.sort(key=lambda tr: (tr[0].time, tr[0].lat, tr[0].lon))
    return [Track(tr, k) for k, tr in enumerate(tracks)]


# ------------------------------------------------------------------ scoring


@dataclass
class MatchResult:
    """Forecast-truth centre matching at each valid time."""

    pairs: list[tuple[Any, Centre, Centre, float]] = field(default_factory=list)
    misses: list[tuple[Any, Centre]] = field(default_factory=list)
    false_alarms: list[tuple[Any, Centre]] = field(default_factory=list)

    @property
    def n_truth(self) -> int:
        return len(self.pairs) + len(self.misses)

    @property
    def n_forecast(self) -> int:
        return len(self.pairs) + len(self.false_alarms)


def match_tracks(
    forecast_centres_by_time: Any,
    truth_centres_by_time: Any,
    max_distance_km: float = 300.0,
    *,
    times: Iterable[Any] | None = None,
) -> MatchResult:
    """Match forecast and truth centres one-to-one at each valid time within ``max_distance_km``.

    Inputs are ``{time: [Centre, ...]}`` mappings (or what
    :func:`centres_by_time` accepts, e.g. lists of Tracks).  Verified times are
    ``times`` or the union of both inputs' times; a time missing from one side
    counts as "no centres" there.  The assignment minimises total distance.
    """
    from scipy.optimize import linear_sum_assignment

    if not max_distance_km > 0:
        raise ConfigError(f"max_distance_km must be > 0, got {max_distance_km!r}")
    fc = dict(centres_by_time(forecast_centres_by_time)) if forecast_centres_by_time else {}
    tc = dict(centres_by_time(truth_centres_by_time)) if truth_centres_by_time else {}
    when = list(times) if times is not None else list(dict.fromkeys([*tc, *fc]))
    try:
        when.sort()
    except TypeError:
        pass
    res = MatchResult()
    for t in when:
        f, o = fc.get(t, []), tc.get(t, [])
        if f and o:
            d = np.array([[haversine_km(a.lat, a.lon, b.lat, b.lon) for b in o] for a in f])
            big = 1e9
            cost = np.where(d <= max_distance_km, d, big)
            ri, ci = linear_sum_assignment(cost)
            ok = [(r, c) for r, c in zip(ri, ci) if d[r, c] <= max_distance_km]
        else:
            ok = []
        mf = {r for r, _ in ok}
        mo = {c for _, c in ok}
        res.pairs.extend((t, f[r], o[c], float(d[r, c])) for r, c in ok)
        res.misses.extend((t, b) for k, b in enumerate(o) if k not in mo)
        res.false_alarms.extend((t, a) for k, a in enumerate(f) if k not in mf)
    return res

