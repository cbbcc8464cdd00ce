"""Checks on the values of a canonical dataset, and the summary that ``climode data inspect`` prints.

These read the data (one pass, chunk by chunk, through dask); the structural
checks happen lazily in :func:`climode.data.open.open_dataset`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from climode.errors import DataError
from climode.time import hours_since

log = logging.getLogger(__name__)

#: Plausible ranges of the mean of each variable, to catch mislabelled units.
PLAUSIBLE_MEAN = {"PSL": (50_000.0, 120_000.0), "U850": (-100.0, 100.0), "V850": (-100.0, 100.0)}


@dataclass(frozen=True)
class ValueReport:
    """Missing values per variable: overall fraction, and the steps missing entirely."""

    missing_fraction: dict[str, float]
    missing_steps: dict[str, list]
    mean: dict[str, float] = field(default_factory=dict)


def value_report(ds) -> ValueReport:
    """Compute missing fractions, fully missing steps and means of every gridded variable in one pass."""
    import dask

    names = [str(v) for v in ds.data_vars if {"time", "lat", "lon"} <= set(ds[v].dims)]
    lazy = []
    for v in names:
        null = ds[v].isnull()
        lazy += [null.mean(), null.all(("lat", "lon")), ds[v].mean(skipna=True)]
    values = dask.compute(*[x.data for x in lazy]) if lazy else []
    times = ds["time"].values
    fraction, steps, mean = {}, {}, {}
    for i, v in enumerate(names):
        frac, all_missing, avg = values[3 * i : 3 * i + 3]
        fraction[v] = float(frac)
        steps[v] = [times[k] for k in np.flatnonzero(np.asarray(all_missing))]
        mean[v] = float(avg)
    return ValueReport(missing_fraction=fraction, missing_steps=steps, mean=mean)


def check_values(ds, label: str = "dataset") -> ValueReport:
    """Reject variables missing at every step; warn about implausible means (probably wrong units)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN slice
        report = value_report(ds)
    empty = [v for v, frac in report.missing_fraction.items() if frac >= 1.0]
    if empty:
        raise DataError(
            f"{label}: {', '.join(empty)} is missing (NaN or fill value) at every grid point and time step"
        )
    for v, (lo, hi) in PLAUSIBLE_MEAN.items():
        m = report.mean.get(v)
        if m is not None and np.isfinite(m) and not lo <= m <= hi:
            log.warning(
                "%s: mean %s is %.4g %s, outside %g..%g: are its units right?",
                label, v, m, ds[v].attrs.get("units", ""), lo, hi,
            )
    for v, steps in report.missing_steps.items():
        if steps:
            log.info("%s: %s entirely missing at %d time step(s)", label, v, len(steps))
    return report


def _resolution(values) -> str:
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return "n/a"
    d = np.diff(values)
    if np.allclose(d, d[0], rtol=1e-4, atol=1e-6):
        return f"{d[0]:g}"
    return f"{d.min():g}..{d.max():g} (irregular)"


def _calendar(times) -> str:
    first = times.flat[0] if times.size else None
    if first is None:
        return "n/a"
    if isinstance(first, np.datetime64):
        return "standard"
    return str(getattr(first, "calendar", type(first).__name__))


def _time_text(t) -> str:
    if isinstance(t, np.datetime64):
        return str(np.datetime_as_string(t, unit="m")).replace("T", " ")
    return t.strftime("%Y-%m-%d %H:%M") if hasattr(t, "strftime") else str(t)


def _step_text(times) -> str:
    if times.size < 2:
        return "n/a"
    hours = np.unique(np.diff(hours_since(times))).tolist()
    if len(hours) == 1:
        return f"{hours[0]:g} h"
    return f"{min(hours):g}..{max(hours):g} h (irregular)"


def summarize(ds, report: ValueReport | None = None) -> str:
    """A short human-readable summary of a canonical dataset (reads the data once for missing values)."""
    report = report or value_report(ds)
    times = ds["time"].values
    lines = [f"source: {ds.attrs.get('climode_source', 'dataset')}"]
    lines.append("variables:")
    for v in ds.data_vars:
        if v not in report.missing_fraction:
            lines.append(f"  {v:<6} dims ({', '.join(map(str, ds[v].dims))})")
            continue
        orig = ds[v].attrs.get("original_name")
        src = f" (from {orig!r})" if orig and orig != v else ""
        lines.append(
            f"  {v:<6} {ds[v].attrs.get('units', '?'):<4} missing {100 * report.missing_fraction[v]:.1f}%{src}"
        )
    lines.append(
        f"grid: {ds.sizes['lat']} lat x {ds.sizes['lon']} lon, resolution {_resolution(ds['lat'].values)} x "
        f"{_resolution(ds['lon'].values)} degrees"
    )
    lines.append(f"lat: {float(ds['lat'].min()):g} .. {float(ds['lat'].max()):g} degrees_north")
    lines.append(f"lon: {float(ds['lon'].min()):g} .. {float(ds['lon'].max()):g} degrees_east")
    lines.append(
        f"time: {_time_text(times[0])} .. {_time_text(times[-1])}, {times.size} steps, every {_step_text(times)}, "
        f"calendar {_calendar(times)}"
    )
    gaps = {v: s for v, s in report.missing_steps.items() if s}
    if gaps:
        lines.append("steps with a variable entirely missing:")
        for v, steps in gaps.items():
            shown = ", ".join(_time_text(t) for t in steps[:6]) + (" ..." if len(steps) > 6 else "")
            lines.append(f"  {v}: {len(steps)} ({shown})")
    else:
        lines.append("steps with a variable entirely missing: none")
    return "\n".join(lines)
