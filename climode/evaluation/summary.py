"""One table from several ``climode evaluate --json`` files: the model against persistence, per region.

Run ``climode summarize a.json b.json ...``; each file is one
row (labelled by its region, else its data), with the model's RMSE as a
fraction of persistence's at chosen leads, the worst such ratio over them,
track and intensity errors, and the maximum-wind bias.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from climode.errors import ClimodeError
from climode.evaluation.scorers import lead_key

DEFAULT_LEADS = (3.0, 6.0, 9.0, 12.0, 15.0)


def _rmse(results: dict[str, Any], system: str, lead: float, variable: str) -> float:
    block = results.get(system, {}).get("leads", {}).get(lead_key(lead), {}).get(variable, {})
    value = block.get("rmse")
    return float("nan") if value is None else float(value)


def _track(results: dict[str, Any], system: str, key: str) -> float:
    value = results.get(system, {}).get("overall", {}).get("track", {}).get(key)
    return float("nan") if value is None else float(value)


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _label(meta: dict[str, Any]) -> str:
    """The row's region: the scored basin, with the domain it was forecast on when that was larger."""
    domain = meta.get("region") or meta.get("data")
    scored = meta.get("score_region")
    return f"{scored['region']} (forecast on {domain})" if scored else str(domain)


def summary_row(results: dict[str, Any], leads: Sequence[float] = DEFAULT_LEADS,
                variables: Sequence[str] = ("U850", "V850", "PSL")) -> dict[str, Any]:
    """The model's RMSE ratios to persistence per variable and lead, and its track and intensity figures."""
    meta = results.get("meta", {})
    ratios = {v: [_rmse(results, "model", h, v) / _rmse(results, "persistence", h, v) for h in leads]
              for v in variables}
    finite = [r for rs in ratios.values() for r in rs if math.isfinite(r)]
    bias = meta.get("intensity", {}).get("model", {}).get("overall", {}).get("max_wind_bias_ms")
    return {
        "label": _label(meta),
        "checkpoint": Path(str(meta.get("checkpoint") or "")).stem or "bundled",
        "n_windows": meta.get("n_windows"),
        "n_storms": meta.get("n_storms"),
        "ratios": ratios,
        "worst_ratio": max(finite) if finite else float("nan"),
        "track_km": (_track(results, "model", "track_error_km"), _track(results, "persistence", "track_error_km")),
        "min_psl_error_hpa": (_track(results, "model", "min_psl_error_hpa"),
                              _track(results, "persistence", "min_psl_error_hpa")),
        "max_wind_bias_ms": float("nan") if bias is None else float(bias),
    }


def summary_table(rows: Sequence[dict[str, Any]], leads: Sequence[float] = DEFAULT_LEADS) -> str:
    """Markdown table of :func:`summary_row` rows."""
    first, last = f"+{leads[0]:g}", f"+{leads[-1]:g} h"
    variables = list(rows[0]["ratios"]) if rows else []
    head = (["region", "model", "windows", "storms"] + [f"{v} / persistence {first}, {last}" for v in variables]
            + [f"worst ratio {first}..{last}", "track km (persistence)", "min PSL error hPa (persistence)",
               "max-wind bias m/s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["label"]), str(row["checkpoint"]), str(row["n_windows"]), str(row["n_storms"])]
        cells += [f"{_fmt(row['ratios'][v][0])}, {_fmt(row['ratios'][v][-1])}" for v in variables]
        model_km, pers_km = row["track_km"]
        model_dp, pers_dp = row["min_psl_error_hpa"]
        cells += [_fmt(row["worst_ratio"]), f"{_fmt(model_km, 0)} ({_fmt(pers_km, 0)})",
                  f"{_fmt(model_dp, 1)} ({_fmt(pers_dp, 1)})", _fmt(row["max_wind_bias_ms"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_results(path: str | Path) -> dict[str, Any]:
    """The results of a ``climode evaluate --json`` file; ClimodeError naming the file if it is not one."""
    try:
        results = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ClimodeError(f"{path} not found: give files written by climode evaluate --json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClimodeError(f"{path} is not JSON ({exc}); give files written by climode evaluate --json") from None
    if not isinstance(results, dict) or "model" not in results or "persistence" not in results:
        raise ClimodeError(f"{path} holds no model and persistence scores: give files written by climode "
                           "evaluate --json with persistence among the baselines")
    return results
