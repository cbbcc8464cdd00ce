"""Input selection: the data opened for a model's variables, the observation steps a forecast
starts from (``--inputs``, ``--init``), their fields as arrays and the static channels."""

from __future__ import annotations

import numpy as np
import xarray as xr

from climode.errors import DataError
from climode.time import format_time, hours_since


def open_inputs(data, model_variables: list[str], checkpoint_label: str, units: dict[str, str] | None = None,
                variables: dict[str, str] | None = None) -> xr.Dataset:
    """``data`` (the embedded sample for None) opened lazily with ``model_variables``.

    ``variables`` maps the model's variables to the data's names and ``units``
    gives units (see :func:`climode.open_dataset`); ``checkpoint_label`` names
    the checkpoint when the data lack one of its variables.
    """
    from climode.data.mapping import check_units, check_variables, option
    from climode.data.open import open_dataset

    if data is None:
        from climode.forecast.sample import default_sample

        data = default_sample()
    wanted = list(model_variables)
    if variables:
        names = check_variables(variables, option("variables"), allowed=model_variables)
        wanted = {v: names.get(v) for v in model_variables}
    if units:
        units = check_units(units, option("units"))
    try:
        return open_dataset(data, wanted, min_times=1, validate=False, units=units)
    except DataError as exc:
        if any(f"no {v}" in str(exc) or f", {v} found" in str(exc) for v in model_variables):
            raise DataError(f"{exc}; the checkpoint ({checkpoint_label}) forecasts {', '.join(model_variables)}: "
                            "give data with those variables or a checkpoint trained on the data's") from exc
        raise


def choose_inputs(ds: xr.Dataset, n_inputs: int, inputs, init) -> tuple[np.ndarray, list[str]]:
    """Indices of the input time steps (the newest ``n_inputs`` at or before ``init`` by default) and notes."""
    from climode.forecast.times import parse_times

    hours = hours_since(ds["time"].values)
    first = ds["time"].values[0]
    limit = None
    if init is not None:
        limit = parse_times([init], first_input=first, init_hours=float(hours[-1])).hours[0]
        candidates = np.flatnonzero(hours <= limit + 1e-6)
        if candidates.size == 0:
            raise DataError(f"no data at or before --init {init}; the data start at {format_time(first)}")
    else:
        candidates = np.arange(len(hours))
    if inputs is not None:
        idx = explicit_inputs(ds, hours, inputs, float(hours[candidates[-1]]), init, limit)
    else:
        idx = candidates[-n_inputs:]
    if idx.size < 2:
        raise DataError(f"the forecast needs at least 2 observations but the window has {idx.size}; "
                        "give data with more time steps or choose --inputs")
    notes = []
    if limit is not None and abs(hours[idx[-1]] - limit) > 1e-3:
        notes.append(f"--init {init} is not an observation time: the forecast starts from the last observation "
                     f"before it, {format_time(ds['time'].values[idx[-1]])}, and +N h leads count from there")
    return idx, notes


def explicit_inputs(ds: xr.Dataset, hours: np.ndarray, inputs, init_hours: float, init, limit) -> np.ndarray:
    """Indices of the observation times listed in ``inputs``; none may be after ``--init``."""
    from climode.forecast.times import parse_times

    first = ds["time"].values[0]
    req = parse_times(inputs, first_input=first, init_hours=init_hours)
    chosen = []
    for h in req.hours:
        hit = np.flatnonzero(np.abs(hours - h) < 1e-3)
        if hit.size == 0:
            raise DataError(f"no data at input time {h:g} h after {format_time(first)}; the data have "
                            f"{len(hours)} steps from 0 to {hours[-1]:g} h")
        if limit is not None and h > limit + 1e-6:
            raise DataError(f"input time {format_time(ds['time'].values[hit[0]])} is after --init {init}; "
                            "inputs must be at or before the forecast reference time: drop it or move --init")
        chosen.append(int(hit[0]))
    return np.array(chosen)


def stack_fields(ds: xr.Dataset, variables: list[str]) -> np.ndarray:
    """The fields of ``variables`` as one float32 array [T, C, H, W]."""
    return np.stack([ds[v].values for v in variables], axis=1).astype(np.float32)


def observed_steps(values: np.ndarray) -> np.ndarray:
    """Which input steps [T] of ``values`` [T, C, H, W] are observed: a step where any variable is
    entirely missing is unobserved."""
    return np.array([all(np.isfinite(values[t, c]).any() for c in range(values.shape[1]))
                     for t in range(values.shape[0])])


def static_channels(names: list[str], lat: np.ndarray, lon: np.ndarray) -> np.ndarray | None:
    """The static channels [S, H, W] a checkpoint lists (``cos_lat``, ``land_sea``) on ``lat`` x ``lon``."""
    layers = []
    if "cos_lat" in names:
        layers.append(np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], (len(lat), len(lon))))
    if "land_sea" in names:
        from climode.data.synthetic.hurricanes import land_sea_mask

        layers.append(np.nan_to_num(land_sea_mask(lat, lon).values))
    return np.stack(layers).astype(np.float32) if layers else None
