"""Scorers: what the evaluation loop applies to each system's forecasts, batch by batch.

Each wraps an accumulator of :mod:`climode.metrics.streaming` and gives its
scores as blocks of climode's results JSON, leads keyed by :func:`lead_key`:

- :class:`FieldScorer` - latitude-weighted RMSE, MAE and ACC per variable;
- :class:`TrackScorer` - cyclone POD, FAR, track and intensity errors of the
  centres :class:`StormCentres` finds (the same tracker in truth and forecasts);
- :class:`ImageScorer` - SSIM, PSNR, MSE, MAE (and LPIPS) of video frames;
- :class:`StormCount` - distinct truth storms and truth storm-times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from climode.time import hours_since
from climode.forecast.storms import STORM_PARAMS
from climode.metrics.cyclones import Centre, TrackParams, detect_centres, track
from climode.metrics.streaming import (
    OVERALL,
    FieldScoreAccumulator,
    ImageScoreAccumulator,
    TrackScoreAccumulator,
    bootstrap_ci,
)

#: variables a cyclone tracker needs
TRACK_VARIABLES = ("PSL", "U850", "V850")
#: intensity scores reported beside the pinned track block
INTENSITY_KEYS = ("max_wind_error_ms", "max_wind_bias_ms", "min_psl_bias_hpa")


def lead_key(lead: Any) -> str:
    """A lead as a results key: ``6.0`` -> ``"6"``."""
    return f"{float(lead):g}"


def by_lead(scores: Mapping[Hashable, Any]) -> dict[str, Any]:
    """``scores`` per lead (everything but ``"overall"``), keyed by :func:`lead_key`, in increasing lead."""
    leads = {lead_key(k): v for k, v in scores.items() if k != OVERALL}
    return dict(sorted(leads.items(), key=lambda kv: float(kv[0])))


def lead_groups(leads: np.ndarray) -> dict[tuple[float, ...], np.ndarray]:
    """Window indices grouped by identical lead hours (rows of ``leads`` [B, K])."""
    out: dict[tuple[float, ...], list[int]] = {}
    for b, row in enumerate(leads):
        out.setdefault(tuple(float(h) for h in row), []).append(b)
    return {k: np.asarray(v) for k, v in out.items()}


class FieldScorer:
    """Latitude-weighted RMSE, MAE and ACC of every variable, by each window's own leads and overall."""

    def __init__(self, variables: Sequence[str], lat: Any, climatology: Mapping[str, Any] | None = None) -> None:
        self.accumulator = FieldScoreAccumulator(variables, lat, climatology=climatology, spectra=False)
        self.index = {v: i for i, v in enumerate(variables)}

    @property
    def variables(self) -> list[str]:
        return self.accumulator.variables

    def update(self, pred: np.ndarray, truth: np.ndarray, leads: np.ndarray) -> None:
        """Add windows: frames [B, K, C, H, W] in physical units, lead hours [B, K] per window."""
        for lead_hours, rows in lead_groups(leads).items():
            self.accumulator.update({v: pred[rows, :, i] for v, i in self.index.items()},
                                    {v: truth[rows, :, i] for v, i in self.index.items()}, list(lead_hours))

    def blocks(self) -> dict[Hashable, dict[str, dict[str, float]]]:
        """``{lead or "overall": {variable: {rmse, mae, acc}}}`` (NaN where not scored)."""
        return {key: {v: {"rmse": s.get("rmse", math.nan), "mae": s.get("mae", math.nan), "acc": s.get("acc", math.nan)}
                      for v, s in scores.items()}
                for key, scores in self.accumulator.compute().items()}

    def intervals(self, n: int, seed: int) -> dict[str, dict[str, list[float]]]:
        """95% bootstrap intervals over windows of each variable's overall RMSE."""
        ci = self.accumulator.confidence_intervals(n, seed)
        return {v: {"rmse": list(ci[v]["rmse"])} for v in self.variables}


def paired_rmse_ratios(fields: Mapping[str, FieldScorer], n: int, seed: int,
                       reference: str = "persistence") -> dict[str, dict[str, dict[str, list[float]]]]:
    """Per system and variable, a paired bootstrap interval of its RMSE over ``reference``'s (same windows)."""
    paired: dict[str, dict[str, dict[str, list[float]]]] = {}
    if reference not in fields:
        return paired
    ref_acc = fields[reference].accumulator
    for name, scorer in fields.items():
        if name == reference:
            continue
        paired[name] = {}
        for v in scorer.variables:
            mine = scorer.accumulator.per_window(v, "mse")
            ref = ref_acc.per_window(v, "mse")
            lo, hi = bootstrap_ci(np.stack([mine, ref], axis=1), n, seed,
                                  statistic=lambda s: math.sqrt(np.nanmean(s[:, 0])) / math.sqrt(np.nanmean(s[:, 1])))
            paired[name][v] = {f"rmse_ratio_to_{reference}_ci95": [lo, hi]}
    return paired


class StormCentres:
    """Cyclone centres in frames [K, C, H, W] of ``variables`` on one grid (the forecasts' storm tracker)."""

    def __init__(self, variables: Sequence[str], lat: Any, lon: Any) -> None:
        index = {v: i for i, v in enumerate(variables)}
        self.psl, self.u, self.v = (index[v] for v in TRACK_VARIABLES)
        self.lat, self.lon = lat, lon

    @staticmethod
    def possible(variables: Sequence[str]) -> bool:
        """Whether ``variables`` hold what the tracker needs (PSL, U850, V850)."""
        return set(TRACK_VARIABLES) <= set(variables)

    def frame(self, psl: np.ndarray, u: np.ndarray, v: np.ndarray) -> list[Centre]:
        """Centres of one frame; NaN cells are never minima (none at all in a frame without finite PSL).

        Rows and columns of NaN along the frame's edges (a tile's stride padding) are cut off
        first, so the grid's edge is the data's edge: filled, they would close the contour of a
        low cut by the edge and let the edge row hold a centre, making up storms.
        """
        finite = np.isfinite(psl)
        rows, cols = np.flatnonzero(finite.any(axis=1)), np.flatnonzero(finite.any(axis=0))
        if rows.size == 0:
            return []
        keep = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        psl, u, v = psl[keep], u[keep], v[keep]
        filled = np.where(np.isfinite(psl), psl, np.nanmax(psl))
        lat, lon = np.asarray(self.lat)[keep[0]], np.asarray(self.lon)[keep[1]]
        return detect_centres(filled, lat, lon, np.nan_to_num(u), np.nan_to_num(v), STORM_PARAMS)

    def window(self, frames: np.ndarray) -> dict[int, list[Centre]]:
        """``{target index: centres}`` of one window's frames [K, C, H, W]."""
        return {k: self.frame(f[self.psl], f[self.u], f[self.v]) for k, f in enumerate(frames)}

    def __call__(self, frames: np.ndarray) -> list[dict[int, list[Centre]]]:
        """Per window of frames [B, K, C, H, W]."""
        return [self.window(w) for w in frames]


class TrackScorer:
    """Cyclone scores of the forecast centres against the truth centres, matched within ``max_distance_km``."""

    def __init__(self, centres: StormCentres, max_distance_km: float = 300.0) -> None:
        self.centres = centres
        self.accumulator = TrackScoreAccumulator(max_distance_km)

    def update(self, pred: np.ndarray, truth_centres: list[dict[int, list[Centre]]], leads: np.ndarray) -> None:
        """Add windows: forecast frames [B, K, C, H, W], truth centres per window, lead hours [B, K]."""
        for b, window in enumerate(pred):
            self.accumulator.update(self.centres.window(window), truth_centres[b],
                                    lead_hours=dict(enumerate(leads[b].tolist())))

    def scores(self) -> dict[Hashable, dict[str, float]]:
        """Every score of :func:`climode.metrics.streaming.score_tracks`, per lead and overall."""
        return self.accumulator.compute()

    @staticmethod
    def block(scores: Mapping[str, float]) -> dict[str, float]:
        """The pinned track keys of the JSON schema."""
        return {"track_error_km": scores.get("track_error_km", math.nan), "pod": scores.get("pod", math.nan),
                "far": scores.get("far", math.nan), "min_psl_error_hpa": scores.get("min_psl_error_hpa", math.nan)}

    @staticmethod
    def intensity(scores: Mapping[Hashable, Mapping[str, float]]) -> dict[str, Any]:
        """Intensity scores beside the pinned track block: overall and per lead."""
        def pick(t: Mapping[str, float]) -> dict[str, float]:
            return {k: t.get(k, math.nan) for k in INTENSITY_KEYS}

        return {"overall": pick(scores.get(OVERALL, {})), "leads": by_lead({k: pick(t) for k, t in scores.items()})}

    def intervals(self, n: int, seed: int) -> dict[str, list[float]]:
        """95% bootstrap intervals over windows of POD, FAR and the (penalised) track error."""
        return {k: list(v) for k, v in self.accumulator.confidence_intervals(n, seed).items()}


class ImageScorer:
    """SSIM, PSNR, MSE, MAE (and LPIPS) of the kept target frames of every window, by lead and overall."""

    def __init__(self, metrics: Sequence[str], *, lpips_weights: str | None = None,
                 psnr_max_db: float | None = None) -> None:
        self.metrics = list(metrics)
        self.accumulator = ImageScoreAccumulator(metrics, lpips_weights=lpips_weights, psnr_max_db=psnr_max_db)

    def update(self, pred: np.ndarray, truth: np.ndarray, kept: np.ndarray, leads: np.ndarray) -> None:
        """Add windows: frames [B, K, C, H, W] in [0, 1], targets kept [B, K], leads [B, K]."""
        for b in range(pred.shape[0]):
            k = np.flatnonzero(kept[b])
            self.accumulator.update(pred[b, k][None], truth[b, k][None], leads=leads[b, k].tolist())

    def results(self) -> dict[str, Any]:
        """``{"overall": {metric: mean}, "leads": {"1": {...}, ...}}``."""
        computed = self.accumulator.compute()
        return {"overall": computed.get(OVERALL, {}), "leads": by_lead(computed)}

    def intervals(self, n: int, seed: int) -> dict[str, list[float]]:
        """95% bootstrap intervals over windows of every metric."""
        return {m: list(bootstrap_ci(self.accumulator.per_window(m), n, seed)) for m in self.metrics}


#: scored valid times further apart than this (hours) are not stitched into one track: the 6-hourly
#: spacing of best-track archives (hourly targets drawn at random hours leave gaps of a few hours)
STITCH_GAP_HOURS = 6.0


@dataclass
class StormCount:
    """Truth centres by (sequence, time index), to count distinct truth storms and storm-times."""

    centres: dict[tuple[int, int], list] = field(default_factory=dict)
    storm_times: int = 0  # truth centres summed over windows and valid times (POD's denominator)

    def add(self, seq_id: int, time_index: int, centres: list) -> None:
        self.centres[(seq_id, time_index)] = centres
        self.storm_times += len(centres)

    def add_windows(self, dataset: Any, sample_index: Sequence[int], centres: list[dict[int, list]]) -> None:
        """Truth centres of windows ``sample_index`` of a :class:`~climode.data.loader.WindowDataset`, per target."""
        for b, idx in enumerate(sample_index):
            seq_id, start, spec = dataset.window(int(idx), 0)
            for k, offset in enumerate(spec.target_offsets):
                self.add(seq_id, start + int(offset), centres[b][k])

    def distinct(self, sequences) -> int:
        """Truth centres stitched into tracks per season, over runs of scored valid times at most
        :data:`STITCH_GAP_HOURS` apart (a track is not followed across a longer gap)."""
        total = 0
        for seq_id in sorted({k[0] for k in self.centres}):
            hours = hours_since(sequences[seq_id]["time"].values)
            indices = sorted(k[1] for k in self.centres if k[0] == seq_id)
            gaps = np.diff(hours[np.asarray(indices, dtype=int)])
            runs = np.split(np.asarray(indices), np.flatnonzero(gaps > STITCH_GAP_HOURS + 1e-9) + 1)
            for run in runs:
                frames = {float(hours[i]): self.centres[(seq_id, int(i))] for i in run}
                total += len(track(frames, params=TrackParams(min_length=1)))
        return total
