"""``climode evaluate``: a model and the named baselines on one set of held-out windows.

Every system sees exactly the same windows (the checkpoint's protocol, drawn
with a fixed seed from held-out data: for ``synthetic_hurricanes`` the test
seeds, never used in training).  Scores are per lead time and overall:
latitude-weighted RMSE, MAE and ACC per variable in physical units, and
cyclone scores (POD, FAR, track error over storms matched within 300 km,
min-PSL error) against centres tracked in the true fields with the same
tracker.  95% intervals come from a bootstrap over windows.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from climode.errors import ConfigError
from climode.metrics.cyclones import detect_centres
from climode.metrics.streaming import OVERALL, FieldScoreAccumulator, TrackScoreAccumulator, bootstrap_ci

log = logging.getLogger(__name__)

BASELINE_ALIASES = {"persistence": "persistence", "advection": "wind_advection", "wind_advection": "wind_advection",
                    "pysteps": "pysteps_lk", "pysteps_lk": "pysteps_lk", "pysteps_vet": "pysteps_vet"}


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

    def __post_init__(self) -> None:
        unknown = [b for b in self.baselines if b not in BASELINE_ALIASES]
        if unknown:
            raise ConfigError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(sorted(BASELINE_ALIASES))}")
        if self.windows < 1 or self.batch_size < 1 or self.n_sequences < 1:
            raise ConfigError("windows, batch_size and n_sequences must be positive")


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


def evaluate(forecaster, config: EvaluationConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster`` and the baselines; return the results in climode's JSON schema."""
    from torch.utils.data import DataLoader

    from climode.data.loader import WindowDataset, collate_windows
    from climode.data.sampling import get_protocol
    from climode.training.data import climate_sequences, static_channels
    from climode.training.trainer import EpochSampler

    config = config or EvaluationConfig()
    section = _data_section(forecaster, config)
    stride = getattr(forecaster.model.config, "stride", 1)
    sequences = climate_sequences(section, config.split, config.n_sequences, stride)
    protocol_meta = dict(forecaster.meta.get("protocol", {}))
    protocol = get_protocol(protocol_meta.pop("name", section.protocol), **protocol_meta)
    static = static_channels(section, sequences[0]) if forecaster.static else None
    dataset = WindowDataset(sequences, forecaster.variables, protocol, forecaster.normalizer, seed=config.seed,
                            samples_per_epoch=config.windows, static=static)
    loader = DataLoader(dataset, batch_size=config.batch_size, collate_fn=collate_windows,
                        sampler=EpochSampler(len(dataset), 0, config.seed, shuffle=False))
    lat, lon = sequences[0]["lat"].values, sequences[0]["lon"].values
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # padded cells are NaN at every time
        climatology = {v: np.nanmean(np.stack([s[v].values for s in sequences]), axis=(0, 1))
                       for v in forecaster.variables}
    systems = _systems(forecaster, config.baselines, lat, lon)
    fields = {name: FieldScoreAccumulator(forecaster.variables, lat, climatology=climatology, spectra=False)
              for name in systems}
    tracks = {name: TrackScoreAccumulator(300.0) for name in systems}
    index = {v: i for i, v in enumerate(forecaster.variables)}
    has_tracks = config.tracks and {"PSL", "U850", "V850"} <= set(index)
    n_storms = 0
    device = forecaster.device or torch.device("cpu")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="window")
    leads_seen: list[float] = []
    for batch in loader:
        inputs = batch["inputs"].to(device)
        truth = forecaster.normalizer.denormalize(batch["targets"].numpy(), channel_axis=2)
        valid = batch["valid"].numpy()[:, None] > 0  # [B, 1, C, H, W]
        lead = (batch["target_times"] - batch["input_times"].max(dim=1, keepdim=True).values).numpy()
        lead_hours = [float(h) for h in np.round(lead[0], 6)]
        leads_seen = lead_hours
        truth_fields = {v: truth[:, :, i] for v, i in index.items()}
        truth_centres = None
        if has_tracks:
            truth_centres = [
                {k: _centres(truth[b, k, index["PSL"]], truth[b, k, index["U850"]], truth[b, k, index["V850"]], lat, lon)
                 for k in range(truth.shape[1])} for b in range(truth.shape[0])]
            n_storms += sum(len(c) for w in truth_centres for c in w.values())
        for name, system in systems.items():
            with torch.no_grad():
                out = system(inputs, batch["input_times"], batch["target_times"], batch["input_mask"].to(device),
                             batch.get("static").to(device) if batch.get("static") is not None and name == "model" else None)
            pred = forecaster.normalizer.denormalize(out.frames.float().cpu().numpy(), channel_axis=2)
            pred = np.where(valid, pred, np.nan)
            fields[name].update({v: pred[:, :, i] for v, i in index.items()}, truth_fields, lead_hours)
            if has_tracks:
                for b in range(pred.shape[0]):
                    fc = {k: _centres(pred[b, k, index["PSL"]], pred[b, k, index["U850"]], pred[b, k, index["V850"]],
                                      lat, lon) for k in range(pred.shape[1])}
                    tracks[name].update(fc, truth_centres[b], lead_hours={k: lead_hours[k] for k in range(pred.shape[1])})
        if bar is not None:
            bar.update(len(inputs))
    if bar is not None:
        bar.close()
    return _results(forecaster, config, fields, tracks, has_tracks, n_storms, len(dataset), sequences, leads_seen)


def _lead_key(lead: Any) -> str:
    return f"{float(lead):g}"


def _results(forecaster, config, fields, tracks, has_tracks, n_storms, n_windows, sequences, leads) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    for name, acc in fields.items():
        computed = acc.compute()
        track_scores = tracks[name].compute() if has_tracks else {}
        system: dict[str, Any] = {"overall": {}, "leads": {}}
        for key, scores in computed.items():
            block = {v: {"rmse": s.get("rmse", math.nan), "mae": s.get("mae", math.nan), "acc": s.get("acc", math.nan)}
                     for v, s in scores.items()}
            if has_tracks:
                t = track_scores.get(key, {})
                block["track"] = {"track_error_km": t.get("track_error_km", math.nan), "pod": t.get("pod", math.nan),
                                  "far": t.get("far", math.nan), "min_psl_error_hpa": t.get("min_psl_error_hpa", math.nan)}
            if key == OVERALL:
                system["overall"] = block
            else:
                system["leads"][_lead_key(key)] = block
        system["leads"] = dict(sorted(system["leads"].items(), key=lambda kv: float(kv[0])))
        out[name] = system
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
        "n_windows": n_windows,
        "n_storm_centres": n_storms,
        "n_storms": n_storms,  # truth centres, one per storm and valid time
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
        "bootstrap": config.bootstrap,
        "track_truth": "centres tracked in the true gridded fields with the same tracker as the forecasts",
    }
    return out
