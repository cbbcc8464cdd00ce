"""CF output: forecast fields as a CF-1.8 dataset with its provenance, checked and written.

:func:`field_dataset` and :func:`cf_forecast` build the dataset a forecast
returns; :func:`check_output` refuses a bad output before anything runs and
:func:`write_forecast` writes one (.nc or .zarr) atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode._version import __version__
from climode.errors import ClimodeError
from climode.models.checkpoint_meta import CheckpointMeta

STANDARD_NAMES = {
    "U850": ("eastward_wind", "Zonal wind at 850 hPa"),
    "V850": ("northward_wind", "Meridional wind at 850 hPa"),
    "PSL": ("air_pressure_at_mean_sea_level", "Sea-level pressure"),
}
OUTPUT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".zarr")  # what climode.io.write_dataset writes


# --------------------------------------------------------------------------- the dataset
def field_dataset(pred: np.ndarray, variables: list[str], lat: np.ndarray, lon: np.ndarray, members: int | None,
                  units: dict[str, str], source: xr.Dataset) -> xr.Dataset:
    """Forecast fields ``pred`` [N, K, C, H, W] as variables (member, time, lat, lon), each with CF names.

    Without ``members`` the member axis is dropped.  Units come from ``units``
    (the checkpoint's) or else the ``source`` data's, as does ``original_name``.
    """
    data_vars = {}
    for c, var in enumerate(variables):
        dims = ("member", "time", "lat", "lon") if members else ("time", "lat", "lon")
        arr = pred[:, :, c] if members else pred[0, :, c]
        da = xr.DataArray(arr.astype(np.float32), dims=dims, coords={"lat": lat, "lon": lon})
        standard, long_name = STANDARD_NAMES.get(var, (None, var))
        da.attrs = {"units": units.get(var, source[var].attrs.get("units", "")), "long_name": long_name}
        if standard:
            da.attrs["standard_name"] = standard
        if "original_name" in source[var].attrs:
            da.attrs["original_name"] = source[var].attrs["original_name"]
        data_vars[var] = da
    return xr.Dataset(data_vars)


def cf_forecast(out: xr.Dataset, valid_times: list[Any], lead_hours: list[float], init_time, members: int | None,
                source: xr.Dataset, model_attrs: dict[str, str], history: str) -> xr.Dataset:
    """``out`` with CF coordinates (valid ``time``, ``forecast_period``, ``forecast_reference_time``,
    ``member``), the ``source`` data's lat/lon attributes and the global attributes (``model_attrs``:
    :func:`model_attributes`; ``history``: how the forecast was made)."""
    # whole seconds, rounded (5.9 h * 3600 is 21239.999... in floating point, not 5:53:59)
    period = np.round(np.array(lead_hours) * 3600).astype(np.int64) * np.timedelta64(1, "s")
    out = out.assign_coords(
        time=("time", np.array(valid_times, dtype=object) if not isinstance(valid_times[0], np.datetime64)
              else np.array(valid_times)),
        forecast_period=("time", period),
        forecast_reference_time=((), init_time),
    )
    if members:
        out = out.assign_coords(member=("member", np.arange(members)))
        out["member"].attrs = {"standard_name": "realization"}
    for name in ("lat", "lon"):
        out[name].attrs = dict(source[name].attrs) or {
            "lat": {"units": "degrees_north", "standard_name": "latitude"},
            "lon": {"units": "degrees_east", "standard_name": "longitude"}}[name]
    out["time"].attrs = {"standard_name": "time", "long_name": "valid time"}
    out["forecast_period"].attrs = {"standard_name": "forecast_period"}
    out["forecast_reference_time"].attrs = {"standard_name": "forecast_reference_time",
                                            "long_name": "time of the last observation used"}
    out.attrs = {
        "Conventions": "CF-1.8",
        "title": f"climode {model_attrs['name']} forecast",
        "institution": "climode",
        "source": f"climode {__version__}, model {model_attrs['name']}",
        "history": history,
        "climode_model": model_attrs["name"],
        "climode_checkpoint": model_attrs["checkpoint"],
        "climode_checkpoint_sha256": model_attrs["sha256"],
        "climode_version": __version__,
        "climode_trained_on": model_attrs["trained_on"],
        "climode_disclaimer": model_attrs["disclaimer"],
    }
    return out


def model_attributes(name: str, path: Path | None, meta: CheckpointMeta) -> dict[str, str]:
    """What the output says about the model: its name, checkpoint file, sha256, training data, disclaimer."""
    return {"name": name, "checkpoint": str(path.name if path else ""), "sha256": meta.sha256 or "",
            "trained_on": meta.trained_on or "", "disclaimer": meta.disclaimer or ""}


# --------------------------------------------------------------------------- writing
def _check_suffix(path) -> Path:
    target = Path(path)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ClimodeError(f"cannot write {target}: use a .nc or .zarr file name")
    return target


def check_output(path, *, inputs=(), overwrite: bool = False, flag: str = "output=",
                 overwrite_hint: str = "overwrite=True") -> Path:
    """Refuse, before any work is done, an output :func:`write_forecast` cannot or must not write:
    a name that is not .nc/.zarr, one of ``inputs``, an existing file (unless ``overwrite``), an
    existing directory, a place that is not writable (see :func:`climode.io.check_output_path`)."""
    from climode.io import check_output_path

    target = _check_suffix(path)
    return check_output_path(target, inputs=inputs, overwrite=overwrite, flag=flag, overwrite_hint=overwrite_hint)


def input_paths(data=None, checkpoint=None) -> list[str]:
    """The files and stores a forecast reads (data and checkpoint), which no output may replace."""
    from climode.data.open import resolve_files

    paths: list[str] = []
    if isinstance(data, xr.Dataset):
        source = data.encoding.get("source")
        paths += [source] if source else []
    elif data is not None:
        paths += resolve_files(data)
    if checkpoint is not None:
        base = Path(checkpoint)
        paths += [str(p) for p in (base, base.with_suffix(".json"), base.with_suffix(".safetensors")) if p.exists()]
    return paths


def cf_encoded(ds: xr.Dataset) -> xr.Dataset:
    """The forecast as it is stored: CF coordinates without _FillValue, forecast_period in hours.

    CF forbids missing values in coordinates, so none gets a ``_FillValue``;
    ``forecast_period`` is written as float hours with ``units: hours`` (xarray
    would add a non-CF ``dtype`` attribute to a timedelta64 variable).
    """
    out = ds.copy()
    if "forecast_period" in out.coords and np.issubdtype(out["forecast_period"].dtype, np.timedelta64):
        attrs = dict(out["forecast_period"].attrs, units="hours")
        hours = out["forecast_period"].values / np.timedelta64(1, "h")
        out = out.assign_coords(forecast_period=("time", hours.astype(np.float64), attrs))
    for name in out.coords:
        out[name].encoding["_FillValue"] = None
    return out


def write_forecast(ds: xr.Dataset, path) -> Path:
    """Write a forecast to ``path`` (.nc or .zarr) atomically, CF-encoded (:func:`cf_encoded`).

    zarr stores are written in zarr format 2, whose spec includes the consolidated
    metadata xarray writes (in format 3 it is an extension, and zarr warns).
    """
    import zarr

    from climode.io import write_dataset

    _check_suffix(path)
    with zarr.config.set({"default_zarr_format": 2}):
        return write_dataset(cf_encoded(ds), path)
