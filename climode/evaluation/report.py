"""Markdown tables of an evaluation, like the papers' tables, and its strict JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


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
        from climode.evaluation.video import markdown_video_report

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
