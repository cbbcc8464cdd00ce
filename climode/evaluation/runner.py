"""``climode evaluate``: a model and the named baselines on one set of held-out windows.

Every system sees exactly the same windows (the checkpoint's protocol, drawn
with a fixed seed from held-out data: for ``synthetic_hurricanes`` the test
seeds, never used in training).  Scores are per lead time and overall:
latitude-weighted RMSE, MAE and ACC per variable in physical units, and
cyclone scores (POD, FAR, track error over storms matched within 300 km,
min-PSL error; the maximum 850 hPa wind error in ``meta["intensity"]``) against
centres tracked in the true fields with the same tracker.  Lead hours are each
window's own.  ACC is against a climatology of the training seasons, never the
test seasons.  95% intervals come from a bootstrap over windows.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from climode.data.sampling import get_protocol
from climode.errors import ConfigError
from climode.time import hours_since
from climode.evaluation.heldout import check_held_out, recipe_section
from climode.evaluation.loop import BASELINE_ALIASES, build_systems, forecast_windows, held_out_windows, window_leads
from climode.evaluation.report import reproducibility_meta
from climode.evaluation.model_grid import OnModelGrid
from climode.evaluation.scorers import (
    FieldScorer,
    StormCentres,
    StormCount,
    TrackScorer,
    by_lead,
    paired_rmse_ratios,
)
from climode.evaluation.video import evaluate_video
from climode.metrics.streaming import OVERALL
from climode.models.periodic import is_periodic_grid
from climode.data.selection import is_video, video_datasets
from climode.data.sequences import climate_sequences, static_channels

log = logging.getLogger(__name__)


@dataclass
class EvaluationConfig:
    """What to score on: data, split, number of sequences and windows, baselines, seed."""

    data: str = "synthetic_hurricanes"
    split: str = "test"
    n_sequences: int = 4
    windows: int = 240
    batch_size: int = 8
    #: None: :func:`default_baselines` of ``data`` and ``interpolate``
    baselines: list[str] | None = None
    seed: int = 0
    bootstrap: int = 1000
    tracks: bool = True
    #: training seasons in the ACC climatology (None: those the checkpoint was trained on)
    climatology_sequences: int | None = None
    #: video: held-out clips to draw windows from (None: every clip of the split)
    clips: int | None = None
    #: video: local LPIPS (AlexNet) weights; LPIPS is scored only when given
    lpips_weights: str | None = None
    #: video: score interpolation instead: inputs every ``interpolate`` frames, targets the frames between
    interpolate: int | None = None
    #: climate: score inside this basin (code, alias or box); None = the checkpoint's training region on its
    #: own data, the whole domain of other data
    region: str | None = None
    #: climate: forecast over ``region`` (or the whole domain) but score only the cells of this basin
    score_region: str | None = None
    #: climate file data the checkpoint did not train on: the period to score (``START/END``, inclusive ISO
    #: dates); None = the checkpoint's own period for the split on its own data, else the whole file
    period: str | None = None

    def __post_init__(self) -> None:
        if self.baselines is None:
            self.baselines = default_baselines(self.data, self.interpolate)
        unknown = [b for b in self.baselines if b not in BASELINE_ALIASES]
        if unknown:
            raise ConfigError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(sorted(BASELINE_ALIASES))}")
        if self.windows < 1 or self.batch_size < 1 or self.n_sequences < 1:
            raise ConfigError("windows, batch_size and n_sequences must be positive")
        if self.interpolate is not None and self.interpolate < 2:
            raise ConfigError(f"interpolate must be a factor >= 2 (inputs every k frames), got {self.interpolate}")
        if self.clips is not None and self.clips < 1:
            raise ConfigError(f"clips must be >= 1 or None, got {self.clips}")
        from climode.basins import resolve_region

        for spec in (self.region, self.score_region):
            if spec is not None:
                resolve_region(spec)  # a ConfigError naming the known basins and the box syntax
        if self.period is not None:
            from climode.data.selection import parse_period

            parse_period("--period", self.period)  # a ConfigError showing the START/END form
        if self.climatology_sequences is not None and self.climatology_sequences < 1:
            raise ConfigError(f"climatology_sequences must be >= 1 or None, got {self.climatology_sequences}")


class ScoredCells:
    """The cells that are scored: all of the forecast grid, or those of one basin inside it.

    Called on an array whose last two axes are (lat, lon), returns its scored cells
    (columns east-going, as :func:`climode.basins.subset` cuts them).  Forecasting
    a larger domain and scoring a basin keeps the flow entering the basin in the
    model's inputs, which a tile cut to the basin hides.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, region: str | None = None) -> None:
        self.rows: np.ndarray | None = None
        self.columns: np.ndarray | None = None
        self.lat, self.lon = np.asarray(lat), np.asarray(lon)
        #: ``meta.score_region``: the basin as given, its box and its cells; None when the whole grid is scored
        self.note: dict[str, Any] | None = None
        if region is not None:
            from climode.basins import box_indices, resolve_region

            self.rows, self.columns, lon_new = box_indices(self.lat, self.lon, region)
            self.lat, self.lon = self.lat[self.rows], lon_new
            box = resolve_region(region)
            self.note = {"region": region, "box": box.spec if box else region,
                         "cells": [int(self.rows.size), int(self.columns.size)]}

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.rows is None or self.columns is None:
            return values
        return np.take(np.take(values, self.rows, axis=-2), self.columns, axis=-1)


def default_baselines(data: str, interpolate: int | None = None) -> list[str]:
    """The baselines scored when none are named: persistence and advection for climate fields,
    persistence and pysteps for video, frame blending and flow for video interpolation."""
    if interpolate:
        return ["blend", "flow"]
    return ["persistence", "pysteps"] if is_video(data) else ["persistence", "advection"]


def _data_section(forecaster, config: EvaluationConfig):
    recipe_data = dict(forecaster.meta.recipe_data)
    section = recipe_section(recipe_data)
    section.dataset = config.data
    section.split = config.split
    section.seeds = None
    section.n_sequences = config.n_sequences
    section.static = list(forecaster.static)
    if config.region is not None:
        section.region = config.region
    elif config.data != recipe_data.get("dataset"):
        section.region = None
    if config.period is not None:
        if config.data == recipe_data.get("dataset"):
            raise ConfigError("--period is for data the checkpoint did not train on; on its own data it is scored "
                              "on the held-out period of its recipe's data.periods")
        section.periods = {config.split: config.period}
    elif config.data != recipe_data.get("dataset"):
        section.periods = None  # the training data's periods say nothing about other data
    return section


_CLIMATOLOGIES: dict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}


def _climatology_section(forecaster, section, config: EvaluationConfig):
    """The data section of the training seasons on the evaluation grid (the checkpoint's training split)."""
    recipe_data = forecaster.meta.recipe_data
    same_data = config.data == recipe_data.get("dataset", config.data)
    n = config.climatology_sequences or (int(recipe_data.get("n_sequences", 8)) if same_data else 8)
    seeds = recipe_data.get("seeds") if same_data and config.climatology_sequences is None else None
    split = (recipe_data.get("split") if same_data else None) or "train"
    periods = section.periods if section.periods and split in section.periods else None  # else the whole file
    return dataclasses.replace(section, split=split, seeds=seeds, n_sequences=n, periods=periods)


def training_climatology(forecaster, section, config: EvaluationConfig, stride: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-cell time mean of every variable over the training seasons, and a description of it.

    ACC needs a climatology that does not know the test seasons: this one comes from
    the checkpoint's training split (for ``synthetic_hurricanes`` its training seeds),
    computed once per process for a given data section.  Data without a separate
    training split (one file) fall back to the time mean of the data itself, and the
    description says so.
    """
    from climode.data.catalog import load_catalog

    clim = _climatology_section(forecaster, section, config)
    key = repr((clim, tuple(forecaster.variables), stride))
    if key not in _CLIMATOLOGIES:
        t0 = time.perf_counter()
        sequences = climate_sequences(clim, clim.split, clim.n_sequences, stride)
        values = _time_mean(sequences, forecaster.variables)
        entry = load_catalog().entries.get(clim.dataset)
        seeds = [int(s.attrs["climode_seed"]) for s in sequences if "climode_seed" in s.attrs]
        if entry is not None and entry.driver == "synthetic":
            source = f"per-cell time mean of the {clim.split} split of {clim.dataset} (seeds {seeds})"
        elif clim.periods and clim.split in clim.periods:
            source = f"per-cell time mean of the {clim.split} period {clim.periods[clim.split]} of {clim.dataset}"
        else:
            source = f"per-cell time mean of {clim.dataset} (no separate training split: includes the scored period)"
        # no timing in the results: two runs of one command must write byte-identical JSON
        log.info("training climatology (%s) in %.1f s", source, time.perf_counter() - t0)
        _CLIMATOLOGIES[key] = (values, {"source": source, "split": clim.split, "seeds": seeds})
    return _CLIMATOLOGIES[key]


def _time_mean(sequences, variables) -> dict[str, np.ndarray]:
    """Per-cell mean over every time of every sequence, NaN skipped (NaN where a cell is never finite).

    Sums and counts are reduced per sequence (chunk by chunk for dask-backed
    archives), so the archive is never loaded whole.
    """
    import dask

    out = {}
    for v in variables:
        parts = [(s[v].sum("time", skipna=True), s[v].notnull().sum("time")) for s in sequences]
        (computed,) = dask.compute(parts)
        total = sum(np.asarray(t.values, dtype=np.float64) for t, _ in computed)
        count = sum(np.asarray(c.values, dtype=np.float64) for _, c in computed)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[v] = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan).astype(np.float32)
    return out


def on_data_time_steps(sequences: list, protocol: dict[str, Any]) -> tuple[list, dict[str, Any], str | None]:
    """The held-out sequences and the checkpoint's protocol, reconciled when the data's time step differs.

    Finer data (the protocol's step a multiple of the data's) are thinned to the
    protocol's step; coarser data (the data's step a multiple of the protocol's)
    keep their step and the protocol draws on it, with its gap and lead ranges in
    hours unchanged.  Returns the sequences, the protocol arguments and a note for
    ``meta.time_steps`` (None when nothing changed).
    """
    step = protocol.get("step_hours")
    hours = hours_since(sequences[0]["time"]) if "time" in sequences[0].coords else np.zeros(1)
    if step is None or hours.size < 2:
        return sequences, protocol, None
    step, data_step = float(step), float(np.median(np.diff(hours)))
    if abs(data_step - step) <= 1e-6 * step:
        return sequences, protocol, None
    ratio = step / data_step
    if ratio > 1 and abs(ratio - round(ratio)) < 1e-6:
        k = int(round(ratio))
        note = (f"the data's {data_step:g} h steps thinned to one in {k}, the checkpoint's protocol step of "
                f"{step:g} h")
        log.info("%s", note)
        return [s.isel(time=slice(None, None, k)) for s in sequences], protocol, note
    if ratio < 1 and abs(1 / ratio - round(1 / ratio)) < 1e-6:
        note = (f"the checkpoint's protocol (step {step:g} h) drawn on the data's {data_step:g} h steps: gaps and "
                f"leads within its ranges, multiples of {data_step:g} h")
        log.info("%s", note)
        return sequences, {**protocol, "step_hours": data_step}, note
    raise ConfigError(f"the data's time step ({data_step:g} h) and the checkpoint's protocol step ({step:g} h) are "
                      "not multiples of one another; resample the data to a step that is")


def evaluate(forecaster, config: EvaluationConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster`` and the baselines; return the results in climode's JSON schema.

    Video benchmarks (``bouncing_balls``, ``moving_mnist``, ``kth``, ...) are scored
    with the image metrics instead (:func:`climode.evaluation.video.evaluate_video`).
    """
    config = config or EvaluationConfig()
    check_held_out(forecaster.meta, config.data, config.split, config.n_sequences)
    trained_on_video = forecaster.meta.is_video or is_video(forecaster.meta.recipe_data.get("dataset"))
    if is_video(config.data) or trained_on_video:
        if config.region is not None or config.score_region is not None:
            raise ConfigError("--region and --score-region apply to climate fields; a video benchmark is scored "
                              "on whole frames")
        if not is_video(config.data):
            raise ConfigError(f"the checkpoint was trained on video; score it on a video benchmark "
                              f"({', '.join(video_datasets())}), not {config.data!r}")
        return evaluate_video(forecaster, config, progress)

    section = _data_section(forecaster, config)
    stride = getattr(forecaster.model.config, "stride", 1)
    sequences = climate_sequences(section, config.split, config.n_sequences, stride)
    protocol_meta = dict(forecaster.meta.protocol)
    sequences, protocol_meta, time_steps = on_data_time_steps(sequences, protocol_meta)
    protocol = get_protocol(protocol_meta.pop("name", section.protocol), **protocol_meta)
    static = static_channels(section, sequences[0]) if forecaster.static else None
    dataset = held_out_windows(sequences, forecaster.variables, protocol, forecaster.normalizer, seed=config.seed,
                               windows=config.windows, static=static)
    lat, lon = sequences[0]["lat"].values, sequences[0]["lon"].values
    climatology, clim_meta = training_climatology(forecaster, section, config, stride)
    systems = build_systems(forecaster, config.baselines, lat=lat, lon=lon)
    scored = ScoredCells(lat, lon, config.score_region)
    model_grid = None
    if forecaster.regrid_needed(sequences[0]):  # run the model on its own spacing, as a forecast does
        systems["model"] = OnModelGrid(forecaster.model, lat, lon, forecaster.grid["dlat"], forecaster.grid["dlon"])
        model_grid = (f"the model ran on its training spacing ({forecaster.grid['dlat']:g} x "
                      f"{forecaster.grid['dlon']:g} degrees, {systems['model'].model_shape[0]} x "
                      f"{systems['model'].model_shape[1]} cells), its inputs and forecasts regridded bilinearly "
                      f"from and to the data's {len(lat)} x {len(lon)} cells; every system is scored on the data's grid")
        log.info("%s", model_grid)
    fields = {name: FieldScorer(forecaster.variables, scored.lat, {v: scored(c) for v, c in climatology.items()})
              for name in systems}
    centres = StormCentres(forecaster.variables, scored.lat, scored.lon) if config.tracks and \
        StormCentres.possible(forecaster.variables) else None
    tracks = {name: TrackScorer(centres) for name in systems} if centres is not None else None
    storms = StormCount()
    leads_seen: set[float] = set()
    for batch, predictions in forecast_windows(dataset, systems, batch_size=config.batch_size, seed=config.seed,
                                               device=forecaster.device or torch.device("cpu"),
                                               periodic=is_periodic_grid(lon), progress=progress):
        truth = scored(forecaster.normalizer.denormalize(batch["targets"].numpy(), channel_axis=2))
        valid = scored(batch["valid"].numpy()[:, None] > 0)  # [B, 1, C, H, W]
        leads = window_leads(batch)
        leads_seen.update(float(h) for h in leads.ravel())
        truth_centres = None
        if centres is not None:
            truth_centres = centres(truth)
            storms.add_windows(dataset, batch["sample_index"].tolist(), truth_centres)
        for name, frames in predictions.items():
            pred = np.where(valid, scored(forecaster.normalizer.denormalize(frames, channel_axis=2)), np.nan)
            fields[name].update(pred, truth, leads)
            if tracks is not None:
                tracks[name].update(pred, truth_centres, leads)
    counts = {"n_windows": len(dataset), "n_storms": storms.distinct(sequences) if tracks is not None else 0,
              "n_storm_times": storms.storm_times}
    return climate_results(forecaster, fields, tracks, counts, sequences, sorted(leads_seen), clim_meta,
                           data=config.data, split=config.split, seed=config.seed, bootstrap=config.bootstrap,
                           region=section.region, model_grid=model_grid, time_steps=time_steps,
                           score_region=scored.note, period=config.period)


def climate_results(forecaster, fields: dict[str, FieldScorer], tracks: dict[str, TrackScorer] | None,
                    counts: dict[str, int], sequences, leads, climatology: dict[str, Any], *, data: Any, split: str,
                    seed: int, bootstrap: int, region: str | None = None,
                    model_grid: str | None = None, time_steps: str | None = None,
                    score_region: dict[str, Any] | None = None, period: str | None = None) -> dict[str, Any]:
    """Every system's field (and track) scores per lead and overall, and the meta block, in climode's JSON schema."""
    out: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    intensity: dict[str, Any] = {}
    for name, scorer in fields.items():
        blocks = scorer.blocks()
        ci[name] = scorer.intervals(bootstrap, seed)
        if tracks is not None:
            track_scores = tracks[name].scores()
            for key, block in blocks.items():
                block["track"] = TrackScorer.block(track_scores.get(key, {}))
            intensity[name] = TrackScorer.intensity(track_scores)
            ci[name]["track"] = tracks[name].intervals(bootstrap, seed)
        out[name] = {"overall": blocks.get(OVERALL, {}), "leads": by_lead(blocks)}
    out["meta"] = {
        "n_windows": counts["n_windows"],
        # distinct truth storms: truth centres stitched into tracks per season over the scored valid times
        "n_storms": counts["n_storms"],
        # truth storm-times: one per truth centre, window and valid time (the denominator of POD)
        "n_storm_times": counts["n_storm_times"],
        "data": data,
        "split": split,
        "region": region,
        "model_grid": model_grid or "the model ran on the data's grid (its training spacing)",
        "seeds": [int(s.attrs.get("climode_seed", -1)) for s in sequences],
        "window_seed": seed,
        "lead_hours": [float(h) for h in leads],
        "model": forecaster.name,
        "checkpoint": str(forecaster.path.name if forecaster.path else ""),
        "checkpoint_sha256": forecaster.meta.sha256 or "",
        "ci95": ci,
        "paired": paired_rmse_ratios(fields, bootstrap, seed),
        "intensity": intensity,
        "climatology": climatology,
        "bootstrap": bootstrap,
        "track_truth": "centres tracked in the true gridded fields with the same tracker as the forecasts",
        "reproducibility": reproducibility_meta(),
    }
    if time_steps is not None:
        out["meta"]["time_steps"] = time_steps
    if score_region is not None:
        out["meta"]["score_region"] = score_region
    if period is not None:
        out["meta"]["period"] = period
    return out
