"""Storm centres in a forecast: the table ``climode forecast`` prints."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from climode.metrics.cyclones import Centre, DetectionParams, detect_centres
from climode.time import format_time

#: tropical-cyclone centres: a PSL minimum below 1005 hPa closed by a 2 hPa contour within 5 degrees
STORM_PARAMS = DetectionParams(max_psl=100_500.0, closed_contour_hpa=2.0, closed_contour_radius_deg=5.0)


def storm_centres(ds: xr.Dataset, params: DetectionParams = STORM_PARAMS) -> list[list[Centre]]:
    """Centres per valid time of a forecast (or truth) dataset with PSL (Pa) and, if present, winds."""
    out = []
    for t in range(ds.sizes["time"]):
        frame = ds.isel(time=t)
        psl = frame["PSL"].values
        if "member" in frame.dims:
            psl = frame["PSL"].mean("member").values
        has_wind = "U850" in frame and "V850" in frame and "member" not in frame.dims
        u = frame["U850"].values if has_wind else None
        v = frame["V850"].values if has_wind else None
        if not np.isfinite(psl).any():
            out.append([])
            continue
        out.append(detect_centres(np.where(np.isfinite(psl), psl, np.nanmax(psl)), frame["lat"].values,
                                  frame["lon"].values, u, v, params))
    return out


def storm_table(ds: xr.Dataset) -> list[dict[str, Any]]:
    """One row per valid time: its lead and the storms (lat, lon, min PSL hPa, max wind m/s)."""
    rows = []
    lead = ds["forecast_period"].values / np.timedelta64(1, "h") if "forecast_period" in ds.coords else [None] * ds.sizes["time"]
    for t, centres in enumerate(storm_centres(ds)):
        rows.append({
            "valid_time": format_time(ds["time"].values[t]),
            "lead_hours": None if lead[t] is None else float(lead[t]),
            "storms": [
                {"lat": round(c.lat, 2), "lon": round(c.lon, 2), "min_psl_hpa": round(c.min_psl / 100.0, 1),
                 "max_wind_ms": None if not np.isfinite(c.max_wind) else round(float(c.max_wind), 1)}
                for c in centres
            ],
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The human-readable table of :func:`storm_table` rows."""
    lines = []
    for row in rows:
        lead = "" if row["lead_hours"] is None else f" ({row['lead_hours']:+g} h)"
        lines.append(f"{row['valid_time']}{lead}")
        if not row["storms"]:
            lines.append("  no storm centre found")
            continue
        lines.append(f"  {'lat':>7} {'lon':>8} {'min PSL hPa':>12} {'max wind m/s':>13}")
        for s in row["storms"]:
            wind = "" if s["max_wind_ms"] is None else f"{s['max_wind_ms']:.1f}"
            lon = s["lon"] if s["lon"] <= 180 else s["lon"] - 360
            lon_txt = f"{abs(lon):.2f}{'E' if lon >= 0 else 'W'}"
            lat_txt = f"{abs(s['lat']):.2f}{'N' if s['lat'] >= 0 else 'S'}"
            lines.append(f"  {lat_txt:>7} {lon_txt:>8} {s['min_psl_hpa']:>12.1f} {wind:>13}")
    return "\n".join(lines)
