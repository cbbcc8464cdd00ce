"""Streaming verification: accumulate scores batch by batch, merge partial results, compute.

Like pysteps' ``init / accum / merge / compute``: each accumulator holds sums
(exactly rounded, so merging accumulators over parts of the data gives
bit-for-bit the result of one accumulator over all of it, in any order) and
keeps one value per window (forecast sample) for bootstrap confidence
intervals over windows.

- :class:`FieldScoreAccumulator` - latitude-weighted RMSE, MAE, bias, ACC and
  spectral distance per variable, by lead time and overall;
- :class:`ImageScoreAccumulator` - SSIM, PSNR, MSE, MAE (and LPIPS) of video frames;
- :class:`TrackScoreAccumulator` - cyclone POD, FAR, track and intensity errors
  (:func:`score_tracks` for one set of forecast and truth centres);
- :func:`bootstrap_ci` - percentile bootstrap over windows.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from climode.errors import ConfigError, DataError
from climode.metrics import fields as _fields
from climode.metrics import image as _image
from climode.metrics.cyclones import MatchResult, match_tracks

log = logging.getLogger(__name__)

OVERALL = "overall"


class ExactSum:
    """Running float sum with exact rounding (Shewchuk partials, as :func:`math.fsum`).

    The value does not depend on the order of additions or merges.
    Non-finite values (inf, NaN) are summed separately with ordinary arithmetic.
    """

    __slots__ = ("_partials", "_special")

    def __init__(self) -> None:
        self._partials: list[float] = []
        self._special = 0.0

    def add(self, x: float) -> None:
        x = float(x)
        if not math.isfinite(x):
            self._special += x
            return
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def merge(self, other: "ExactSum") -> None:
        for p in other._partials:
            self.add(p)
        self._special += other._special

    @property
    def value(self) -> float:
        return math.fsum(self._partials) + self._special


class _MeanTable:
    """Exact sums and counts of non-NaN values per (key, name)."""

    def __init__(self) -> None:
        self.sums: dict[tuple[Hashable, str], ExactSum] = {}
        self.counts: dict[tuple[Hashable, str], int] = {}

    def add(self, key: Hashable, name: str, values: Any) -> None:
        s = self.sums.setdefault((key, name), ExactSum())
        n = 0
        for v in np.asarray(values, dtype=np.float64).ravel():
            if not np.isnan(v):
                s.add(v)
                n += 1
        self.counts[(key, name)] = self.counts.get((key, name), 0) + n

    def merge(self, other: "_MeanTable") -> None:
        for k, s in other.sums.items():
            self.sums.setdefault(k, ExactSum()).merge(s)
            self.counts[k] = self.counts.get(k, 0) + other.counts[k]

    def mean(self, key: Hashable, name: str) -> float:
        n = self.counts.get((key, name), 0)
        return self.sums[(key, name)].value / n if n else float("nan")

    def keys(self) -> list[Hashable]:
        ks = {k for k, _ in self.sums}
        leads = sorted((k for k in ks if k != OVERALL), key=lambda k: (str(type(k)), k))
        return [*leads, *([OVERALL] if OVERALL in ks else [])]


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    """Mean over axis 1 skipping NaN; NaN where a row is all NaN."""
    valid = ~np.isnan(a)
    n = valid.sum(axis=1)
    s = np.where(valid, a, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


def _leads(leads: Any, n: int, what: str) -> list[Hashable]:
    if leads is None:
        return list(range(n))
    arr = list(np.atleast_1d(np.asarray(leads)).tolist())
    if len(arr) != n:
        raise DataError(f"got {len(arr)} {what} but the data have {n} lead steps")
    return arr


def bootstrap_ci(
    per_window_values: Any,
    n: int = 1000,
    seed: int = 0,
    *,
    ci: float = 0.95,
    statistic: Callable[[np.ndarray], float] | None = None,
    transform: Callable[[Any], Any] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval over windows.

    Resamples the windows (axis 0 of ``per_window_values``) with replacement
    ``n`` times and returns the ``(1-ci)/2`` and ``(1+ci)/2`` quantiles of
    ``statistic`` (default: mean over windows, NaN windows skipped), after
    ``transform`` (e.g. ``np.sqrt`` to get an RMSE interval from per-window
    MSE).  For ratios pass 2-D values and a statistic, e.g.
    ``lambda s: s[:, 0].sum() / s[:, 1].sum()``.
    """
    v = np.asarray(per_window_values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] == 0:
        raise DataError("bootstrap_ci needs at least one window value")
    if int(n) < 1 or not 0 < ci < 1:
        raise ConfigError(f"bootstrap_ci needs n >= 1 and 0 < ci < 1, got n={n!r}, ci={ci!r}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], size=(int(n), v.shape[0]))
    if statistic is None:
        if v.ndim != 1:
            raise DataError("bootstrap_ci: 2-D window values need a statistic= callable")
        stats = _nanmean_rows(v[idx])
    else:
        stats = np.array([statistic(v[row]) for row in idx], dtype=np.float64)
    if transform is not None:
        stats = np.asarray(transform(stats), dtype=np.float64)
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(stats, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------ fields


class FieldScoreAccumulator:
    """Latitude-weighted field scores per variable, by lead and overall.

    ``update`` takes forecast and truth as ``{variable: array}`` mappings or
    xarray Datasets; each variable is ``(window, lead, lat, lon)``,
    ``(lead, lat, lon)`` (one window) or ``(lat, lon)``.  ``lead_hours`` labels
    the lead axis.  ACC is scored when a climatology (broadcastable per
    variable) is given to the constructor or to ``update``.
    """

    METRICS = ("mse", "mae", "bias", "acc", "spectral_distance")

    def __init__(
        self,
        variables: Sequence[str],
        lat: Any,
        *,
        climatology: Mapping[str, Any] | None = None,
        centred: bool = True,
        spectra: bool = True,
    ) -> None:
        if isinstance(variables, str) or not len(variables):
            raise ConfigError("variables must be a non-empty list of variable names, e.g. ['U850', 'V850', 'PSL']")
        self.variables = list(variables)
        self.lat = np.asarray(lat, dtype=np.float64).ravel()
        _fields.lat_weights(self.lat)  # validate early
        self.climatology = climatology
        self.centred = centred
        self.spectra = spectra
        self.table = _MeanTable()
        self.windows: dict[tuple[str, str], list[float]] = {}

    def _frames(self, data: Any, var: str) -> np.ndarray:
        if var not in data:
            raise DataError(f"variable {var!r} is missing from the batch; it has {list(data.keys())}")
        a = data[var]
        if hasattr(a, "dims") and hasattr(a, "transpose"):
            latd = next((d for d in _fields.LAT_NAMES if d in a.dims), None)
            lond = next((d for d in _fields.LON_NAMES if d in a.dims), None)
            if latd is None or lond is None:
                raise DataError(f"{var} dims {a.dims} lack lat/lon")
            a = a.transpose(..., latd, lond).values
        elif hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[-2] != self.lat.size:
            raise DataError(
                f"{var} has shape {a.shape}; expected (window, lead, lat={self.lat.size}, lon)"
            )
        return a

    def update(self, forecast: Any, truth: Any, lead_hours: Any = None, *, climatology: Any = None) -> None:
        """Add a batch of windows."""
        clim_all = climatology if climatology is not None else self.climatology
        for var in self.variables:
            f, t = self._frames(forecast, var), self._frames(truth, var)
            if f.shape != t.shape:
                raise DataError(f"{var}: forecast shape {f.shape} differs from truth shape {t.shape}")
            leads = _leads(lead_hours, f.shape[1], "lead_hours")
            per = {
                "mse": _fields.frame_mse(f, t, self.lat),
                "mae": _fields.frame_mae(f, t, self.lat),
                "bias": _fields.frame_bias(f, t, self.lat),
            }
            if clim_all is not None:
                if var not in clim_all:
                    raise DataError(f"the climatology has no {var!r}; give one per scored variable")
                c = clim_all[var]
                c = np.asarray(c.values if hasattr(c, "values") else c, dtype=np.float64)
                per["acc"] = _fields.frame_acc(f, t, c, self.lat, centred=self.centred)
            if self.spectra:
                per["spectral_distance"] = _fields.frame_spectral_distance(f, t)
            for m, vals in per.items():
                name = f"{var}/{m}"
                for k, lead in enumerate(leads):
                    self.table.add(lead, name, vals[:, k])
                self.table.add(OVERALL, name, vals)
                self.windows.setdefault((var, m), []).extend(_nanmean_rows(vals).tolist())

    def merge(self, other: "FieldScoreAccumulator") -> "FieldScoreAccumulator":
        """Add another accumulator's data into this one; returns self."""
        if other.variables != self.variables or not np.array_equal(other.lat, self.lat):
            raise ConfigError("cannot merge FieldScoreAccumulators with different variables or latitudes")
        self.table.merge(other.table)
        for k, v in other.windows.items():
            self.windows.setdefault(k, []).extend(v)
        return self

    def compute(self) -> dict[Hashable, dict[str, dict[str, float]]]:
        """``{lead: {var: {rmse, mae, bias, acc, spectral_distance, n_frames}}, "overall": {...}}``."""
        out: dict[Hashable, dict[str, dict[str, float]]] = {}
        for key in self.table.keys():
            out[key] = {}
            for var in self.variables:
                row: dict[str, float] = {}
                for m in self.METRICS:
                    if (key, f"{var}/{m}") in self.table.sums:
                        row[m] = self.table.mean(key, f"{var}/{m}")
                if "mse" in row:
                    row["rmse"] = math.sqrt(row["mse"]) if row["mse"] == row["mse"] else float("nan")
                    row["n_frames"] = self.table.counts.get((key, f"{var}/mse"), 0)
                out[key][var] = row
        return out

    def per_window(self, var: str, metric: str) -> np.ndarray:
        """One value per window (the mean over its leads); use ``mse`` for RMSE intervals."""
        if (var, metric) not in self.windows:
            raise DataError(f"no per-window values for {var}/{metric}; known: {sorted(self.windows)}")
        return np.asarray(self.windows[(var, metric)])

    def confidence_intervals(self, n: int = 1000, seed: int = 0, ci: float = 0.95) -> dict[str, dict[str, tuple[float, float]]]:
        """Bootstrap intervals over windows of the overall scores (RMSE via sqrt of mean MSE)."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for (var, m), vals in self.windows.items():
            d = out.setdefault(var, {})
            if m == "mse":
                d["rmse"] = bootstrap_ci(vals, n, seed, ci=ci, transform=np.sqrt)
            d[m] = bootstrap_ci(vals, n, seed, ci=ci)
        return out


# ------------------------------------------------------------------ images


class ImageScoreAccumulator:
    """SSIM, PSNR, MSE, MAE (and optionally LPIPS) of video frames, by lead and overall.

    ``update`` takes frames ``(window, lead, C, H, W)`` or ``(lead, C, H, W)``
    in [0, 1]; ``leads`` labels the lead axis (default 0, 1, ...).
    """

    ALLOWED = ("ssim", "psnr", "mse", "mae", "lpips")

    def __init__(
        self,
        metrics: Sequence[str] = ("ssim", "psnr", "mse", "mae"),
        *,
        lpips_weights: str | None = None,
        psnr_max_db: float | None = None,
    ) -> None:
        bad = [m for m in metrics if m not in self.ALLOWED]
        if bad or not metrics:
            raise ConfigError(f"unknown image metrics {bad}; choose from {self.ALLOWED}")
        self.metrics = list(metrics)
        self.lpips_weights = lpips_weights
        self.psnr_max_db = psnr_max_db
        if "lpips" in self.metrics:
            _image._resolve_weights(lpips_weights)  # fail now, not after hours of work
        self.table = _MeanTable()
        self.windows: dict[str, list[float]] = {}

    def update(self, pred: Any, target: Any, leads: Any = None) -> None:
        """Add a batch of windows."""
        x = _image._to_numpy(pred)
        y = _image._to_numpy(target)
        if x.ndim == 4 and y.ndim == 4:
            x, y = x[None], y[None]
        if x.ndim != 5:
            raise DataError(f"frames must be (window, lead, C, H, W) or (lead, C, H, W), got {x.shape}")
        lead_keys = _leads(leads, x.shape[1], "leads")
        for m in self.metrics:
            if m == "psnr":
                vals = _image.psnr(x, y, reduction="none", max_db=self.psnr_max_db)
            elif m == "lpips":
                vals = _image.lpips(x, y, self.lpips_weights, reduction="none")
            else:
                vals = getattr(_image, m)(x, y, reduction="none")
            for k, lead in enumerate(lead_keys):
                self.table.add(lead, m, vals[:, k])
            self.table.add(OVERALL, m, vals)
            self.windows.setdefault(m, []).extend(np.mean(vals, axis=1).tolist())

    def merge(self, other: "ImageScoreAccumulator") -> "ImageScoreAccumulator":
        """Add another accumulator's data into this one; returns self."""
        if other.metrics != self.metrics:
            raise ConfigError("cannot merge ImageScoreAccumulators with different metrics")
        self.table.merge(other.table)
        for k, v in other.windows.items():
            self.windows.setdefault(k, []).extend(v)
        return self

    def compute(self) -> dict[Hashable, dict[str, float]]:
        """``{lead: {metric: mean}, "overall": {...}}`` (means over frames)."""
        return {k: {m: self.table.mean(k, m) for m in self.metrics} for k in self.table.keys()}

    def per_window(self, metric: str) -> np.ndarray:
        """One value per window (mean over its frames)."""
        return np.asarray(self.windows.get(metric, []))


# ------------------------------------------------------------------ cyclone tracks


_TRACK_SUMS = ("distance_km", "abs_psl_pa", "psl_pa", "abs_wind", "wind")
_TRACK_COUNTS = ("hits", "misses", "false_alarms", "n_wind")


class _TrackStats:
    def __init__(self) -> None:
        self.counts = {k: 0 for k in _TRACK_COUNTS}
        self.sums = {k: ExactSum() for k in _TRACK_SUMS}

    def merge(self, other: "_TrackStats") -> None:
        for k in _TRACK_COUNTS:
            self.counts[k] += other.counts[k]
        for k in _TRACK_SUMS:
            self.sums[k].merge(other.sums[k])

    def scores(self, penalty_km: float) -> dict[str, float]:
        h, mi, fa = (self.counts[k] for k in ("hits", "misses", "false_alarms"))
        nw = self.counts["n_wind"]
        s = {k: v.value for k, v in self.sums.items()}
        nan = float("nan")

        def div(a: float, b: float) -> float:
            return a / b if b else nan

        return {
            "n_truth": h + mi,
            "n_forecast": h + fa,
            "hits": h,
            "misses": mi,
            "false_alarms": fa,
            "pod": div(h, h + mi),
            "far": div(fa, h + fa),
            "track_error_km": div(s["distance_km"], h),
            "penalised_track_error_km": div(s["distance_km"] + penalty_km * (mi + fa), h + mi + fa),
            "min_psl_error_hpa": div(s["abs_psl_pa"], h) / 100.0,
            "min_psl_bias_hpa": div(s["psl_pa"], h) / 100.0,
            "max_wind_error_ms": div(s["abs_wind"], nw),
            "max_wind_bias_ms": div(s["wind"], nw),
        }


class TrackScoreAccumulator:
    """Cyclone detection and track scores accumulated over windows (see ``score_tracks``).

    Each ``update`` is one window: forecast and truth centres by valid time,
    optionally with ``lead_hours`` mapping each valid time to its lead.
    """

    def __init__(self, max_distance_km: float = 300.0, *, miss_penalty_km: float | None = None) -> None:
        if not max_distance_km > 0:
            raise ConfigError(f"max_distance_km must be > 0, got {max_distance_km!r}")
        self.max_distance_km = float(max_distance_km)
        self.miss_penalty_km = float(max_distance_km if miss_penalty_km is None else miss_penalty_km)
        self.stats: dict[Hashable, _TrackStats] = {}
        self.windows: list[dict[str, float]] = []

    def update(self, forecast_centres_by_time: Any, truth_centres_by_time: Any, *, lead_hours: Mapping[Any, Any] | None = None) -> None:
        """Match one window's centres and add the result."""
        m = match_tracks(forecast_centres_by_time, truth_centres_by_time, self.max_distance_km)
        self.add_matches(m, lead_hours=lead_hours)

    def add_matches(self, m: MatchResult, *, lead_hours: Mapping[Any, Any] | None = None) -> None:
        """Add a :class:`~climode.metrics.cyclones.MatchResult` as one window."""
        window = _TrackStats()

        def targets(t):
            keys = [OVERALL]
            if lead_hours is not None and t in lead_hours:
                keys.append(lead_hours[t])
            return [self.stats.setdefault(k, _TrackStats()) for k in keys] + [window]

        for t, fc, tc, d in m.pairs:
            for st in targets(t):
                st.counts["hits"] += 1
                st.sums["distance_km"].add(d)
                st.sums["abs_psl_pa"].add(abs(fc.min_psl - tc.min_psl))
                st.sums["psl_pa"].add(fc.min_psl - tc.min_psl)
                dw = fc.max_wind - tc.max_wind
                if math.isfinite(dw):
                    st.counts["n_wind"] += 1
                    st.sums["abs_wind"].add(abs(dw))
                    st.sums["wind"].add(dw)
        for t, _ in m.misses:
            for st in targets(t):
                st.counts["misses"] += 1
        for t, _ in m.false_alarms:
            for st in targets(t):
                st.counts["false_alarms"] += 1
        self.stats.setdefault(OVERALL, _TrackStats())
        self.windows.append({**window.counts, "distance_km": window.sums["distance_km"].value})

    def merge(self, other: "TrackScoreAccumulator") -> "TrackScoreAccumulator":
        """Add another accumulator's data into this one; returns self."""
        if (other.max_distance_km, other.miss_penalty_km) != (self.max_distance_km, self.miss_penalty_km):
            raise ConfigError("cannot merge TrackScoreAccumulators with different distances or penalties")
        for k, st in other.stats.items():
            self.stats.setdefault(k, _TrackStats()).merge(st)
        self.windows.extend(other.windows)
        return self

    def compute(self) -> dict[Hashable, dict[str, float]]:
        """``{lead: scores, "overall": scores}`` with the keys of ``score_tracks``."""
        leads = sorted((k for k in self.stats if k != OVERALL), key=lambda k: (str(type(k)), k))
        out = {k: self.stats[k].scores(self.miss_penalty_km) for k in leads}
        out[OVERALL] = self.stats.get(OVERALL, _TrackStats()).scores(self.miss_penalty_km)
        return out

    def confidence_intervals(self, n: int = 1000, seed: int = 0, ci: float = 0.95) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals over windows of POD, FAR and the (penalised) track error."""
        if not self.windows:
            raise DataError("no windows accumulated; call update() first")
        w = np.array(
            [[d["hits"], d["misses"], d["false_alarms"], d["distance_km"]] for d in self.windows], dtype=np.float64
        )
        p = self.miss_penalty_km

        def ratio(num, den):
            return lambda s: num(s) / den(s) if den(s) else float("nan")

        stats = {
            "pod": ratio(lambda s: s[:, 0].sum(), lambda s: s[:, 0].sum() + s[:, 1].sum()),
            "far": ratio(lambda s: s[:, 2].sum(), lambda s: s[:, 0].sum() + s[:, 2].sum()),
            "track_error_km": ratio(lambda s: s[:, 3].sum(), lambda s: s[:, 0].sum()),
            "penalised_track_error_km": ratio(
                lambda s: s[:, 3].sum() + p * (s[:, 1].sum() + s[:, 2].sum()), lambda s: s[:, :3].sum()
            ),
        }
        return {k: bootstrap_ci(w, n, seed, ci=ci, statistic=f) for k, f in stats.items()}


def score_matches(m: MatchResult, miss_penalty_km: float) -> dict[str, float]:
    """Scores of a :class:`~climode.metrics.cyclones.MatchResult` (see :func:`score_tracks`)."""
    acc = TrackScoreAccumulator(miss_penalty_km=miss_penalty_km)
    acc.add_matches(m)
    return acc.compute()["overall"]


def score_tracks(
    forecast_centres_by_time: Any,
    truth_centres_by_time: Any,
    max_distance_km: float = 300.0,
    *,
    miss_penalty_km: float | None = None,
    times: Iterable[Any] | None = None,
) -> dict[str, float]:
    """POD, FAR, track and intensity errors of forecast centres against truth centres.

    Keys: ``n_truth``, ``n_forecast``, ``hits``, ``misses``, ``false_alarms``,
    ``pod`` (hits / n_truth), ``far`` (false alarms / n_forecast),
    ``track_error_km`` (mean over hits), ``min_psl_error_hpa`` and
    ``max_wind_error_ms`` (mean absolute, forecast minus truth, over hits),
    ``min_psl_bias_hpa``, ``max_wind_bias_ms``, and
    ``penalised_track_error_km``: mean distance over hits, misses and false
    alarms, where each miss or false alarm counts ``miss_penalty_km``
    (default ``max_distance_km``).  Undefined ratios are NaN, never 0.
    """
    m = match_tracks(forecast_centres_by_time, truth_centres_by_time, max_distance_km, times=times)
    return score_matches(m, max_distance_km if miss_penalty_km is None else miss_penalty_km)
