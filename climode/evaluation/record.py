"""Scoring on a real record held out for evaluation (``climode evaluate --data ncl_storm_1996``).

A record marked ``evaluation_only`` (a catalog entry, or a file the user marks
with ``--whole-record``) is never trained on; it is scored on every window that
fits in it.  Each window ends at one initial time: the checkpoint's number of
inputs at the record's own spacing, the last at the initial time, then targets at
the requested leads (by default one and two steps).  The model forecasts through
:meth:`climode.forecast.Forecaster.predict` exactly as ``climode forecast`` would
(regridding to its grid and back, an input step with a variable entirely missing
treated as unobserved, cells missing in every input NaN).  Persistence and the
pysteps extrapolation see the same input steps on the record's own grid.

Every system is scored on the same cells: where the truth and every system's
forecast are finite (fill values and the cells a forecast cannot reach drop out
for all of them).  RMSE is latitude-weighted per variable and lead, with 95%
bootstrap intervals over windows; track error uses centres found by the same
tracker in the forecasts and the true fields, where it finds any.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from climode.time import hours_since
from climode.data.open import open_dataset
from climode.errors import ConfigError, DataError
from climode.evaluation.loop import baseline_systems
from climode.evaluation.runner import climate_results
from climode.evaluation.scorers import FieldScorer, StormCentres, StormCount, TrackScorer

log = logging.getLogger(__name__)

RECORD_BASELINES = {"persistence": "persistence", "pysteps": "pysteps_lk", "pysteps_lk": "pysteps_lk",
                    "pysteps_vet": "pysteps_vet"}


@dataclass
class RecordEvaluationConfig:
    """What to score: the record, the leads (hours; default one and two steps), baselines, bootstrap."""

    data: Any = "ncl_storm_1996"
    leads: list[float] | None = None
    baselines: list[str] = field(default_factory=lambda: ["persistence", "pysteps"])
    bootstrap: int = 1000
    seed: int = 0
    tracks: bool = True

    def __post_init__(self) -> None:
        unknown = [b for b in self.baselines if b not in RECORD_BASELINES]
        if unknown:
            raise ConfigError(f"baseline {unknown[0]!r} is not scored on a record; choose from "
                              f"{', '.join(RECORD_BASELINES)}")
        if self.leads is not None and (not self.leads or min(self.leads) <= 0):
            raise ConfigError(f"leads must be positive hours after the initial time, got {self.leads}")


def is_evaluation_only(data: Any) -> bool:
    """Whether ``data`` names a catalog entry marked ``evaluation_only``."""
    from climode.data.catalog import load_catalog
    from climode.data.open import is_catalog_name

    if not isinstance(data, str) or not is_catalog_name(data):
        return False
    entry = load_catalog().entries.get(data)
    return bool(entry is not None and entry.evaluation_only)


def record_windows(hours: np.ndarray, n_inputs: int, leads: list[float]) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    """The record's spacing and every window: (input indices, target indices) at that spacing.

    A window whose inputs or targets are not all in the record (a gap in its time
    axis, or the record's ends) is skipped.
    """
    if hours.size < 2:
        raise DataError("the record has fewer than 2 time steps; it cannot be scored")
    spacing = float(np.median(np.diff(hours)))
    index = {round(float(h) / spacing * 1e6): i for i, h in enumerate(hours)}

    def at(h: float) -> int | None:
        return index.get(round(h / spacing * 1e6))

    windows = []
    for last, h0 in enumerate(hours):
        inputs = [at(h0 - k * spacing) for k in range(n_inputs - 1, -1, -1)]
        targets = [at(h0 + lead) for lead in leads]
        if None in inputs or None in targets:
            continue
        windows.append((np.asarray(inputs), np.asarray(targets)))
    return spacing, windows


def _observed(values: np.ndarray) -> np.ndarray:
    """Input steps [T, C, H, W] where no variable is entirely missing (the forecaster's rule)."""
    return np.array([all(np.isfinite(values[t, c]).any() for c in range(values.shape[1]))
                     for t in range(values.shape[0])])


def evaluate_record(forecaster, config: RecordEvaluationConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster``, persistence and pysteps on every window of an evaluation-only record."""
    config = config or RecordEvaluationConfig()
    variables = forecaster.variables
    ds = open_dataset(config.data, variables, min_times=2, validate=False).load()
    hours = hours_since(ds["time"].values)
    spacing = float(np.median(np.diff(hours))) if hours.size > 1 else 0.0
    leads = [float(h) for h in (config.leads or [spacing, 2 * spacing])]
    spacing, windows = record_windows(hours, forecaster.n_inputs, leads)
    if not windows:
        raise DataError(f"the record ({len(hours)} steps every {spacing:g} h) has no window of {forecaster.n_inputs} "
                        f"inputs and leads {leads} h; ask for shorter leads")
    lat, lon = ds["lat"].values, ds["lon"].values
    values = np.stack([ds[v].values for v in variables], axis=1).astype(np.float32)  # [T, C, H, W]
    systems = ["model", *config.baselines]
    baselines = baseline_systems(config.baselines, len(variables))
    fields = {name: FieldScorer(variables, lat) for name in systems}
    centres = StormCentres(variables, lat, lon) if config.tracks and StormCentres.possible(variables) else None
    tracks = {name: TrackScorer(centres) for name in systems} if centres is not None else None
    window_leads = np.asarray([leads])  # [1, K]: one window at a time
    times_text = ",".join(f"+{h:g}h" for h in leads)
    storms = StormCount()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(windows), desc="evaluate record", unit="window")
    for inputs, targets in windows:
        truth = values[targets]  # [K, C, H, W]
        window = ds.isel(time=inputs)
        pred = {"model": forecaster.predict(window, times_text)}
        pred["model"] = np.stack([pred["model"][v].values for v in variables], axis=1)
        observed = _observed(values[inputs])
        x = torch.from_numpy(values[inputs])[None]
        in_hours = torch.from_numpy(hours[inputs] - hours[inputs[0]])[None]
        query = in_hours[:, -1:] + torch.tensor(leads, dtype=torch.float64)[None]
        for name, system in baselines.items():
            with torch.no_grad():
                out = system(x, in_hours, query, torch.from_numpy(observed.astype(np.float32))[None])
            pred[name] = out.frames[0].double().numpy()
        # the same cells for every system: truth and every forecast finite
        common = np.isfinite(truth) & np.logical_and.reduce([np.isfinite(p) for p in pred.values()])
        truth_m = np.where(common, truth, np.nan)
        truth_c = None
        if centres is not None:
            truth_c = centres(truth[None])
            for k, t in enumerate(targets):
                storms.add(0, int(t), truth_c[0][k])
        for name in systems:
            fields[name].update(np.where(common, pred[name], np.nan)[None], truth_m[None], window_leads)
            if tracks is not None:
                tracks[name].update(pred[name][None], truth_c, window_leads)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    label = config.data if isinstance(config.data, str) else "<dataset>"
    counts = {"n_windows": len(windows), "n_storms": storms.distinct([ds]) if tracks is not None else 0,
              "n_storm_times": storms.storm_times}
    clim = {"source": "none: an evaluation-only record has no training period, so ACC is not scored"}
    results = climate_results(forecaster, fields, tracks, counts, [ds], leads, clim, data=label, split="whole record",
                              seed=config.seed, bootstrap=config.bootstrap,
                              model_grid=("the model ran through Forecaster.predict, regridded to its training spacing "
                                          "and back" if forecaster.regrid_needed(ds) else None))
    meta = results["meta"]
    meta.update({
        "seeds": [],
        "window_seed": None,
        "evaluation_only": True,
        "protocol": (f"every window of {forecaster.n_inputs} inputs {spacing:g} h apart (the record's spacing) "
                     f"and targets at +{', +'.join(f'{h:g}' for h in leads)} h that fits in the record"),
        "record_steps": int(hours.size),
        "record_spacing_hours": spacing,
        "scored_cells": "cells where the truth and every system's forecast are finite",
        "baselines": list(config.baselines),
    })
    return results


def mean_ratio(results: dict[str, Any], system: str, variable: str, lead: float) -> float:
    """RMSE of ``system`` over persistence's at one lead (for tables)."""
    key = f"{float(lead):g}"
    mine = results[system]["leads"][key][variable]["rmse"]
    ref = results["persistence"]["leads"][key][variable]["rmse"]
    return mine / ref if ref and not math.isnan(ref) else math.nan


__all__ = ["RecordEvaluationConfig", "evaluate_record", "is_evaluation_only", "record_windows", "mean_ratio"]
