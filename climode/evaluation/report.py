"""Every table of an evaluation: markdown like the papers' tables (climate fields, video), and its strict JSON."""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from typing import Any

import numpy as np
import torch

from climode import __version__

#: the direction in which each video score is better (for the report)
HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "mse": False, "mae": False, "lpips": False}
#: packages whose versions decide the scores (data generation, models, metrics)
SCORED_WITH = ("torch", "numpy", "scipy", "xarray", "dask", "torchdiffeq", "pysteps", "scikit-image", "opencv-python-headless")


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN/inf replaced by None (JSON null) and numpy scalars made Python numbers."""
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_json(results: dict[str, Any]) -> str:
    """The results as standard JSON: a score that could not be computed is ``null``, never ``NaN``."""
    return json.dumps(finite_or_none(results), indent=2, allow_nan=False)


def reproducibility_meta() -> dict[str, Any]:
    """What must match for two runs of one command to write byte-identical JSON.

    The same command, climode and package versions, and torch intra-op thread
    count (``--threads``; float reductions may split differently over threads).
    The results hold no timings.
    """
    versions = {"climode": __version__, "python": platform.python_version()}
    for name in SCORED_WITH:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
            "contract": "same command, versions and torch_threads give byte-identical JSON"}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def markdown_report(results: dict[str, Any]) -> str:
    """RMSE per variable by lead (with 95% CIs overall) and the track scores, one row per system.

    Video results (``meta["kind"] == "video"``) get the image-metric tables instead.
    """
    meta = results["meta"]
    if meta.get("kind") == "video":
        return markdown_video_report(results)
    systems = [k for k in results if k != "meta"]
    leads = list(results[systems[0]]["leads"])
    variables = [v for v in results[systems[0]]["overall"] if v != "track"]
    clim = meta.get("climatology", {}).get("source", "unknown")
    if meta.get("evaluation_only"):
        lines = [f"# climode evaluation: {meta['model']} on {meta['data']} (evaluation-only record)", "",
                 f"{meta['n_windows']} windows: {meta['protocol']}; {meta['n_storms']} distinct truth lows "
                 f"({meta['n_storm_times']} truth centre-times); scored on {meta['scored_cells']}; 95% bootstrap "
                 f"intervals over windows ({meta['bootstrap']} resamples); no ACC (no training climatology).", ""]
    else:
        lines = [f"# climode evaluation: {meta['model']} on {meta['data']} ({meta['split']})", "",
                 f"{meta['n_windows']} windows, {meta['n_storms']} distinct truth storms ({meta['n_storm_times']} "
                 f"truth storm-times over all windows and valid times), seeds {meta['seeds']}; "
                 f"95% bootstrap intervals over windows ({meta['bootstrap']} resamples); ACC against the {clim}.", ""]
    for v in variables:
        lines += [f"## {v}: latitude-weighted RMSE", "",
                  "| system | " + " | ".join(f"+{h} h" for h in leads) + " | overall | 95% CI | ACC |",
                  "|---" * (len(leads) + 4) + "|"]
        for s in systems:
            row = [_fmt(results[s]["leads"][h][v]["rmse"]) for h in leads]
            ci = meta["ci95"][s][v]["rmse"]
            lines.append(f"| {s} | " + " | ".join(row) + f" | {_fmt(results[s]['overall'][v]['rmse'])} | "
                         f"[{_fmt(ci[0])}, {_fmt(ci[1])}] | {_fmt(results[s]['overall'][v]['acc'])} |")
        lines.append("")
    if "track" in results[systems[0]]["overall"]:
        lines += ["## Cyclone tracks (matched within 300 km; misses counted in POD)", "",
                  "| system | track error km | 95% CI | POD | FAR | min PSL error hPa | max 850 hPa wind error m/s | "
                  + " | ".join(f"track km +{h} h" for h in leads) + " |",
                  "|---" * (7 + len(leads)) + "|"]
        for s in systems:
            t = results[s]["overall"]["track"]
            wind = meta.get("intensity", {}).get(s, {}).get("overall", {}).get("max_wind_error_ms")
            ci = meta["ci95"][s]["track"]["track_error_km"]
            per = [_fmt(results[s]["leads"][h]["track"]["track_error_km"]) for h in leads]
            lines.append(f"| {s} | {_fmt(t['track_error_km'])} | [{_fmt(ci[0])}, {_fmt(ci[1])}] | {_fmt(t['pod'])} | "
                         f"{_fmt(t['far'])} | {_fmt(t['min_psl_error_hpa'])} | {_fmt(wind)} | " + " | ".join(per) + " |")
        lines.append("")
    if meta.get("paired"):
        lines += ["## RMSE ratio to persistence (paired bootstrap, 95% CI)", "", "| system | " + " | ".join(variables) + " |",
                  "|---" * (len(variables) + 1) + "|"]
        for s, per in meta["paired"].items():
            lines.append(f"| {s} | " + " | ".join(
                f"[{_fmt(per[v]['rmse_ratio_to_persistence_ci95'][0])}, {_fmt(per[v]['rmse_ratio_to_persistence_ci95'][1])}]"
                for v in variables) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown_video_report(results: dict[str, Any]) -> str:
    """The paper's Tables 1-3 layout: one row per system, then SSIM and PSNR per lead frame."""
    meta = results["meta"]
    systems = [k for k in results if k != "meta"]
    metrics = meta["metrics"]
    leads = list(results[systems[0]]["leads"])
    arrows = {m: "↑" if HIGHER_IS_BETTER[m] else "↓" for m in metrics}
    task = meta.get("task", "extrapolation")
    lead_word = "frame after the previous input" if task.startswith("interpolation") else "lead frame"
    lines = [f"# climode evaluation: {meta['model']} on {meta['data']} ({meta['split']}), {task}", "",
             f"{meta['n_windows']} windows from {meta['n_clips']} clips at {meta['frame_size']}x{meta['frame_size']}, "
             f"window seed {meta['window_seed']}; {meta['scoring']}; 95% bootstrap intervals over windows "
             f"({meta['bootstrap']} resamples).", "",
             "| system | " + " | ".join(f"{m.upper()} {arrows[m]} [95% CI]" for m in metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for s in systems:
        cells = []
        for m in metrics:
            lo, hi = meta["ci95"][s][m]
            cells.append(f"{_fmt(results[s]['overall'][m], 4)} [{_fmt(lo, 4)}, {_fmt(hi, 4)}]")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    for m in ("ssim", "psnr"):
        lines += [f"## {m.upper()} per {lead_word}", "", "| system | " + " | ".join(f"+{h}" for h in leads) + " |",
                  "|---" * (len(leads) + 1) + "|"]
        for s in systems:
            lines.append(f"| {s} | " + " | ".join(_fmt(results[s]["leads"][h].get(m, math.nan), 4) for h in leads) + " |")
        lines.append("")
    return "\n".join(lines)
