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
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from climode.errors import ConfigError
from climode.metrics.cyclones import detect_centres
from climode.metrics.streaming import OVERALL, FieldScoreAccumulator, TrackScoreAccumulator, bootstrap_ci
from climode.models.inference import deterministic_forecast

log = logging.getLogger(__name__)

BASELINE_ALIASES = {"persistence": "persistence", "advection": "wind_advection", "wind_advection": "wind_advection",
                    "pysteps": "pysteps_lk", "pysteps_lk": "pysteps_lk", "pysteps_vet": "pysteps_vet",
                    "blend": "frame_blend", "flow": "flow_interpolation"}


@dataclass
class EvaluationConfig:
    """What to score on: data, split, number of sequences and windows, baselines, seed."""

    data: str = "synthetic_hurricanes"
    split: str = "test"
    n_sequences: int = 4
    windows: int = 240
    batch_size: int = 8
    baselines: list[str] = field(default_factory=lambda: ["persistence", "advection"])
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

    def __post_init__(self) -> None:
        unknown = [b for b in self.baselines if b not in BASELINE_ALIASES]
        if unknown:
            raise ConfigError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(sorted(BASELINE_ALIASES))}")
        if self.windows < 1 or self.batch_size < 1 or self.n_sequences < 1:
            raise ConfigError("windows, batch_size and n_sequences must be positive")
        if self.interpolate is not None and self.interpolate < 2:
            raise ConfigError(f"interpolate must be a factor >= 2 (inputs every k frames), got {self.interpolate}")
        if self.clips is not None and self.clips < 1:
            raise ConfigError(f"clips must be >= 1 or None, got {self.clips}")
        if self.climatology_sequences is not None and self.climatology_sequences < 1:
            raise ConfigError(f"climatology_sequences must be >= 1 or None, got {self.climatology_sequences}")


def _data_section(forecaster, config: EvaluationConfig):
    from climode.training.recipe import DataSection

    recipe_data = dict(forecaster.meta.get("recipe", {}).get("data", {}))
    allowed = set(DataSection.__dataclass_fields__)
    section = DataSection(**{k: v for k, v in recipe_data.items() if k in allowed})
    section.dataset = config.data
    section.split = config.split
    section.seeds = None
    section.n_sequences = config.n_sequences
    section.static = list(forecaster.static)
    if config.data != recipe_data.get("dataset"):
        section.region = None
    return section


def _systems(forecaster, names: list[str], lat, lon) -> dict[str, torch.nn.Module]:
    from climode.models.registry import get_model

    systems: dict[str, torch.nn.Module] = {"model": forecaster.model}
    channels = len(forecaster.variables)
    for name in names:
        key = BASELINE_ALIASES[name]
        if key == "wind_advection":
            from climode.models.baselines.reference import WindAdvection

            systems[name] = WindAdvection.from_normalizer(forecaster.normalizer, lat, lon)
        else:
            systems[name] = get_model(key, {"in_channels": channels})
    return systems


def _centres(psl: np.ndarray, u: np.ndarray, v: np.ndarray, lat, lon) -> list:
    from climode.forecast.storms import STORM_PARAMS

    if not np.isfinite(psl).any():
        return []
    filled = np.where(np.isfinite(psl), psl, np.nanmax(psl))
    return detect_centres(filled, lat, lon, np.nan_to_num(u), np.nan_to_num(v), STORM_PARAMS)


_CLIMATOLOGIES: dict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}


def _climatology_section(forecaster, section, config: EvaluationConfig):
    """The data section of the training seasons on the evaluation grid (the checkpoint's training split)."""
    recipe_data = dict(forecaster.meta.get("recipe", {}).get("data", {}))
    same_data = config.data == recipe_data.get("dataset", config.data)
    n = config.climatology_sequences or (int(recipe_data.get("n_sequences", 8)) if same_data else 8)
    seeds = recipe_data.get("seeds") if same_data and config.climatology_sequences is None else None
    split = (recipe_data.get("split") if same_data else None) or "train"
    return dataclasses.replace(section, split=split, seeds=seeds, n_sequences=n)


def training_climatology(forecaster, section, config: EvaluationConfig, stride: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-cell time mean of every variable over the training seasons, and a description of it.

    ACC needs a climatology that does not know the test seasons: this one comes from
    the checkpoint's training split (for ``synthetic_hurricanes`` its training seeds),
    computed once per process for a given data section.  Data without a separate
    training split (one file) fall back to the time mean of the data itself, and the
    description says so.
    """
    from climode.data.catalog import load_catalog
    from climode.training.data import climate_sequences

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


@dataclass
class _StormCount:
    """Truth centres by (sequence, time index), to count distinct truth storms and storm-times."""

    centres: dict[tuple[int, int], list] = field(default_factory=dict)
    storm_times: int = 0  # truth centres summed over windows and valid times (POD's denominator)

    def add(self, seq_id: int, time_index: int, centres: list) -> None:
        self.centres[(seq_id, time_index)] = centres
        self.storm_times += len(centres)

    def distinct(self, sequences) -> int:
        """Truth centres stitched into tracks per season, over runs of consecutive valid times."""
        from climode.data.loader import hours_since
        from climode.metrics.cyclones import TrackParams, track

        total = 0
        for seq_id in sorted({k[0] for k in self.centres}):
            hours = hours_since(sequences[seq_id]["time"].values)
            indices = sorted(k[1] for k in self.centres if k[0] == seq_id)
            runs = np.split(np.asarray(indices), np.flatnonzero(np.diff(indices) > 1) + 1)
            for run in runs:
                frames = {float(hours[i]): self.centres[(seq_id, int(i))] for i in run}
                total += len(track(frames, params=TrackParams(min_length=1)))
        return total


def _window_leads(batch) -> np.ndarray:
    """Lead hours [B, K] of every target of every window (after its own last input)."""
    lead = batch["target_times"] - batch["input_times"].max(dim=1, keepdim=True).values
    return np.round(lead.numpy(), 6)


def _groups(leads: np.ndarray) -> dict[tuple[float, ...], np.ndarray]:
    """Window indices grouped by identical lead hours."""
    out: dict[tuple[float, ...], list[int]] = {}
    for b, row in enumerate(leads):
        out.setdefault(tuple(float(h) for h in row), []).append(b)
    return {k: np.asarray(v) for k, v in out.items()}


def evaluate(forecaster, config: EvaluationConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster`` and the baselines; return the results in climode's JSON schema.

    Video benchmarks (``bouncing_balls``, ``moving_mnist``, ``kth``, ...) are scored
    with the image metrics instead (:func:`climode.evaluation.video.evaluate_video`).
    """
    from climode.training.data import VIDEO_SETS

    from climode.evaluation.heldout import check_held_out

    config = config or EvaluationConfig()
    check_held_out(forecaster.meta, config.data, config.split, config.n_sequences)
    trained_on_video = forecaster.meta.get("time_unit") == "frame" or \
        forecaster.meta.get("recipe", {}).get("data", {}).get("dataset") in VIDEO_SETS
    if config.data in VIDEO_SETS or trained_on_video:
        if config.data not in VIDEO_SETS:
            raise ConfigError(f"the checkpoint was trained on video; score it on a video benchmark "
                              f"({', '.join(VIDEO_SETS)}), not {config.data!r}")
        from climode.evaluation.video import evaluate_video

        return evaluate_video(forecaster, config, progress)

    from climode.data.loader import WindowDataset, make_loader
    from climode.data.sampling import get_protocol
    from climode.models.periodic import is_periodic_grid, periodic_longitude
    from climode.training.data import climate_sequences, static_channels

    section = _data_section(forecaster, config)
    stride = getattr(forecaster.model.config, "stride", 1)
    sequences = climate_sequences(section, config.split, config.n_sequences, stride)
    protocol_meta = dict(forecaster.meta.get("protocol", {}))
    protocol = get_protocol(protocol_meta.pop("name", section.protocol), **protocol_meta)
    static = static_channels(section, sequences[0]) if forecaster.static else None
    dataset = WindowDataset(sequences, forecaster.variables, protocol, forecaster.normalizer, seed=config.seed,
                            samples_per_epoch=config.windows, static=static)
    loader = make_loader(dataset, config.batch_size, epoch=0)
    lat, lon = sequences[0]["lat"].values, sequences[0]["lon"].values
    periodic = is_periodic_grid(lon)
    climatology, clim_meta = training_climatology(forecaster, section, config, stride)
    systems = _systems(forecaster, config.baselines, lat, lon)
    fields = {name: FieldScoreAccumulator(forecaster.variables, lat, climatology=climatology, spectra=False)
              for name in systems}
    tracks = {name: TrackScoreAccumulator(300.0) for name in systems}
    index = {v: i for i, v in enumerate(forecaster.variables)}
    has_tracks = config.tracks and {"PSL", "U850", "V850"} <= set(index)
    storms = _StormCount()
    device = forecaster.device or torch.device("cpu")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="window")
    leads_seen: set[float] = set()

    def centres_of(frames: np.ndarray, b: int, k: int) -> list:
        return _centres(frames[b, k, index["PSL"]], frames[b, k, index["U850"]], frames[b, k, index["V850"]], lat, lon)

    for batch in loader:
        inputs = batch["inputs"].to(device)
        truth = forecaster.normalizer.denormalize(batch["targets"].numpy(), channel_axis=2)
        valid = batch["valid"].numpy()[:, None] > 0  # [B, 1, C, H, W]
        leads = _window_leads(batch)
        leads_seen.update(float(h) for h in leads.ravel())
        groups = _groups(leads)
        truth_centres = None
        if has_tracks:
            truth_centres = [{k: centres_of(truth, b, k) for k in range(truth.shape[1])} for b in range(truth.shape[0])]
            for b, idx in enumerate(batch["sample_index"].tolist()):
                seq_id, start, spec = dataset.window(int(idx), 0)
                for k, offset in enumerate(spec.target_offsets):
                    storms.add(seq_id, start + int(offset), truth_centres[b][k])
        for name, system in systems.items():
            with torch.no_grad(), periodic_longitude(system, periodic):  # a global grid wraps in longitude
                out = deterministic_forecast(
                    system, inputs, batch["input_times"], batch["target_times"], batch["input_mask"].to(device),
                    batch.get("static").to(device) if batch.get("static") is not None and name == "model" else None)
            pred = forecaster.normalizer.denormalize(out.frames.float().cpu().numpy(), channel_axis=2)
            pred = np.where(valid, pred, np.nan)
            for lead_hours, rows in groups.items():
                fields[name].update({v: pred[rows, :, i] for v, i in index.items()},
                                    {v: truth[rows, :, i] for v, i in index.items()}, list(lead_hours))
            if has_tracks:
                for b in range(pred.shape[0]):
                    fc = {k: centres_of(pred, b, k) for k in range(pred.shape[1])}
                    tracks[name].update(fc, truth_centres[b], lead_hours=dict(enumerate(leads[b].tolist())))
        if bar is not None:
            bar.update(len(inputs))
    if bar is not None:
        bar.close()
    counts = {"n_windows": len(dataset), "n_storms": storms.distinct(sequences) if has_tracks else 0,
              "n_storm_times": storms.storm_times}
    return _results(forecaster, config, fields, tracks, has_tracks, counts, sequences, sorted(leads_seen), clim_meta)


def _lead_key(lead: Any) -> str:
    return f"{float(lead):g}"


def _track_block(t: dict[str, float]) -> dict[str, float]:
    """The pinned track keys of the JSON schema."""
    return {"track_error_km": t.get("track_error_km", math.nan), "pod": t.get("pod", math.nan),
            "far": t.get("far", math.nan), "min_psl_error_hpa": t.get("min_psl_error_hpa", math.nan)}


INTENSITY_KEYS = ("max_wind_error_ms", "max_wind_bias_ms", "min_psl_bias_hpa")


def _intensity(track_scores: dict[Any, dict[str, float]]) -> dict[str, Any]:
    """Intensity scores beside the pinned track block: overall and per lead."""
    def pick(t: dict[str, float]) -> dict[str, float]:
        return {k: t.get(k, math.nan) for k in INTENSITY_KEYS}

    leads = {_lead_key(k): pick(t) for k, t in track_scores.items() if k != OVERALL}
    return {"overall": pick(track_scores.get(OVERALL, {})),
            "leads": dict(sorted(leads.items(), key=lambda kv: float(kv[0])))}


def _results(forecaster, config, fields, tracks, has_tracks, counts, sequences, leads, climatology) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    intensity: dict[str, Any] = {}
    for name, acc in fields.items():
        computed = acc.compute()
        track_scores = tracks[name].compute() if has_tracks else {}
        system: dict[str, Any] = {"overall": {}, "leads": {}}
        for key, scores in computed.items():
            block = {v: {"rmse": s.get("rmse", math.nan), "mae": s.get("mae", math.nan), "acc": s.get("acc", math.nan)}
                     for v, s in scores.items()}
            if has_tracks:
                block["track"] = _track_block(track_scores.get(key, {}))
            if key == OVERALL:
                system["overall"] = block
            else:
                system["leads"][_lead_key(key)] = block
        system["leads"] = dict(sorted(system["leads"].items(), key=lambda kv: float(kv[0])))
        out[name] = system
        if has_tracks:
            intensity[name] = _intensity(track_scores)
        intervals = {v: {"rmse": list(acc.confidence_intervals(config.bootstrap, config.seed)[v]["rmse"])}
                     for v in acc.variables}
        if has_tracks:
            intervals["track"] = {k: list(v) for k, v in tracks[name].confidence_intervals(config.bootstrap, config.seed).items()}
        ci[name] = intervals
    paired = {}
    if "persistence" in fields:
        for name, acc in fields.items():
            if name == "persistence":
                continue
            paired[name] = {}
            for v in acc.variables:
                mine = acc.per_window(v, "mse")
                ref = fields["persistence"].per_window(v, "mse")
                lo, hi = bootstrap_ci(np.stack([mine, ref], axis=1), config.bootstrap, config.seed,
                                      statistic=lambda s: math.sqrt(np.nanmean(s[:, 0])) / math.sqrt(np.nanmean(s[:, 1])))
                paired[name][v] = {"rmse_ratio_to_persistence_ci95": [lo, hi]}
    out["meta"] = {
        "n_windows": counts["n_windows"],
        # distinct truth storms: truth centres stitched into tracks per season over the scored valid times
        "n_storms": counts["n_storms"],
        # truth storm-times: one per truth centre, window and valid time (the denominator of POD)
        "n_storm_times": counts["n_storm_times"],
        "data": config.data,
        "split": config.split,
        "seeds": [int(s.attrs.get("climode_seed", -1)) for s in sequences],
        "window_seed": config.seed,
        "lead_hours": [float(h) for h in leads],
        "model": forecaster.name,
        "checkpoint": str(forecaster.path.name if forecaster.path else ""),
        "checkpoint_sha256": forecaster.meta.get("sha256", ""),
        "ci95": ci,
        "paired": paired,
        "intensity": intensity,
        "climatology": climatology,
        "bootstrap": config.bootstrap,
        "track_truth": "centres tracked in the true gridded fields with the same tracker as the forecasts",
        "reproducibility": reproducibility_meta(),
    }
    return out


#: packages whose versions decide the scores (data generation, models, metrics)
SCORED_WITH = ("torch", "numpy", "scipy", "xarray", "dask", "torchdiffeq", "pysteps", "scikit-image", "opencv-python-headless")


def reproducibility_meta() -> dict[str, Any]:
    """What must match for two runs of one command to write byte-identical JSON.

    The same command, climode and package versions, and torch intra-op thread
    count (``--threads``; float reductions may split differently over threads).
    The results hold no timings.
    """
    import platform
    from importlib import metadata

    from climode import __version__

    versions = {"climode": __version__, "python": platform.python_version()}
    for name in SCORED_WITH:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
            "contract": "same command, versions and torch_threads give byte-identical JSON"}
