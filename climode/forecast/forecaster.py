"""The Forecaster: a checkpoint plus canonical xarray fields in, a CF forecast out."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode._version import __version__
from climode.errors import CheckpointError, ClimodeError, DataError

log = logging.getLogger(__name__)

ZOO = Path(__file__).resolve().parent.parent / "zoo"
BUNDLED = ZOO / "hurricanes_cpu.json"  # climode/zoo, see climode.zoo
STANDARD_NAMES = {
    "U850": ("eastward_wind", "Zonal wind at 850 hPa"),
    "V850": ("northward_wind", "Meridional wind at 850 hPa"),
    "PSL": ("air_pressure_at_mean_sea_level", "Sea-level pressure"),
}


@dataclass
class ForecastInfo:
    """What a forecast was made from, for tables and JSON output."""

    input_times: list[Any]
    valid_times: list[Any]
    lead_hours: list[float]
    notes: list[str] = field(default_factory=list)


def _resolve_device(name: str | None):
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClimodeError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


class Forecaster:
    """A trained model with its config, variables, normalisation and grid."""

    def __init__(self, model, meta: dict[str, Any], path: Path | None = None, device=None):
        from climode.data.normalize import Normalizer

        self.model = model.eval()
        self.meta = meta
        self.path = path
        self.device = device
        self.variables: list[str] = list(meta["variables"])
        self.normalizer = Normalizer.from_dict(meta["normalization"])
        self.static: list[str] = list(meta.get("static", []))
        self.grid: dict[str, Any] = dict(meta.get("grid", {}))
        protocol = meta.get("protocol", {})
        self.n_inputs = int(protocol.get("n_inputs", 5))
        self.name = meta.get("model", "vidode")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = "auto") -> "Forecaster":
        from climode.models.registry import get_model
        from climode.training.checkpoint import load_checkpoint

        source = Path(path) if path is not None else BUNDLED
        if path is None and not BUNDLED.exists():
            raise CheckpointError("the bundled model is missing from this installation; pass --checkpoint")
        ckpt = load_checkpoint(source)
        meta = ckpt.meta
        for key in ("model", "config", "variables", "normalization"):
            if key not in meta:
                raise CheckpointError(f"checkpoint {ckpt.path} has no {key!r} in its sidecar; it is not a climode forecast model")
        torch_device = _resolve_device(device)
        model = get_model(meta["model"], meta["config"])
        try:
            model.load_state_dict(ckpt.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {ckpt.path} does not match its own config: {str(exc).splitlines()[0]}") from exc
        model.to(torch_device)
        return cls(model, meta, ckpt.path, torch_device)

    @property
    def description(self) -> str:
        return self.meta.get("description", f"{self.name} trained on {self.meta.get('trained_on', 'unknown data')}")

    # ------------------------------------------------------------------ inputs
    def _open(self, data, units=None) -> xr.Dataset:
        from climode.data.open import open_dataset

        if data is None:
            from climode.forecast.sample import default_sample

            data = default_sample()
        try:
            return open_dataset(data, self.variables, min_times=1, validate=False, units=units)
        except DataError as exc:
            if "no " in str(exc) and any(v in str(exc) for v in self.variables):
                raise DataError(f"{exc} (the model {self.name} needs {', '.join(self.variables)})") from exc
            raise

    def _choose_inputs(self, ds: xr.Dataset, inputs, init) -> tuple[np.ndarray, list[str]]:
        """Indices of the input time steps (the newest n_inputs at or before init by default)."""
        from climode.data.loader import hours_since
        from climode.forecast.times import parse_times

        hours = hours_since(ds["time"].values)
        notes: list[str] = []
        first = ds["time"].values[0]
        if init is not None:
            req = parse_times([init], first_input=first, init_hours=float(hours[-1]))
            limit = req.hours[0]
            candidates = np.flatnonzero(hours <= limit + 1e-6)
            if candidates.size == 0:
                raise DataError(f"no data at or before --init {init}; the data start at {first}")
        else:
            candidates = np.arange(len(hours))
        if inputs is not None:
            req = parse_times(inputs, first_input=first, init_hours=float(hours[candidates[-1]]))
            chosen = []
            for h in req.hours:
                hit = np.flatnonzero(np.abs(hours - h) < 1e-3)
                if hit.size == 0:
                    raise DataError(f"no data at input time {h:g} h after {first}; the data have "
                                    f"{len(hours)} steps from 0 to {hours[-1]:g} h")
                chosen.append(int(hit[0]))
            idx = np.array(chosen)
        else:
            idx = candidates[-self.n_inputs:]
        if idx.size < 2:
            raise DataError(f"the forecast needs at least 2 observations but the window has {idx.size}; "
                            "give data with more time steps or choose --inputs")
        return idx, notes

    def _regrid_needed(self, ds: xr.Dataset) -> bool:
        dlat, dlon = self.grid.get("dlat"), self.grid.get("dlon")
        if not dlat or not dlon or ds.sizes["lat"] < 2 or ds.sizes["lon"] < 2:
            return False
        have_lat = float(np.diff(ds["lat"].values).mean())
        have_lon = float(np.diff(ds["lon"].values).mean())
        return abs(have_lat - dlat) > 0.01 * dlat or abs(have_lon - dlon) > 0.01 * dlon

    def _model_grid(self, ds: xr.Dataset) -> xr.Dataset:
        """Bilinear regridding (xarray/scipy) onto the training grid spacing, over the same domain.

        Missing cells do not fray the field: values are extended into them by
        nearest-neighbour filling before interpolating, and a target cell is
        missing only where its nearest source cell is.
        """
        dlat, dlon = self.grid["dlat"], self.grid["dlon"]
        # cover the whole domain: the last row and column may reach a little past it
        lat = np.arange(float(ds.lat[0]), float(ds.lat[-1]) + dlat - 1e-6, dlat)
        lon = np.arange(float(ds.lon[0]), float(ds.lon[-1]) + dlon - 1e-6, dlon)
        log.info("regridding from %.3g x %.3g to the model's %.3g x %.3g degrees",
                 float(np.diff(ds.lat).mean()), float(np.diff(ds.lon).mean()), dlat, dlon)
        return regrid(ds, lat, lon)

    def _static(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray | None:
        layers = []
        if "cos_lat" in self.static:
            layers.append(np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], (len(lat), len(lon))))
        if "land_sea" in self.static:
            from climode.data.synthetic.hurricanes import land_sea_mask

            layers.append(np.nan_to_num(land_sea_mask(lat, lon).values))
        return np.stack(layers).astype(np.float32) if layers else None

    # ------------------------------------------------------------------ predict
    def predict(self, data=None, times="+3h,+6h", *, basin=None, inputs=None, init=None,
                members: int | None = None, units: dict[str, str] | None = None) -> xr.Dataset:
        """Fields at ``times`` (see :mod:`climode.forecast.times`) from the observations in ``data``.

        ``units`` gives the units of variables that carry none (see :func:`climode.open_dataset`).
        """
        import torch

        from climode.basins import subset
        from climode.basins.tiles import pad_dataset_with_nan
        from climode.data.loader import hours_since
        from climode.forecast.times import parse_times

        ds = self._open(data, units)
        ds = subset(ds, basin)
        idx, notes = self._choose_inputs(ds, inputs, init)
        window = ds.isel(time=idx)[self.variables].load()  # only the input steps are read
        values = np.stack([window[v].values for v in self.variables], axis=1).astype(np.float32)  # [T, C, H, W]
        # a step where any variable is entirely missing is unobserved
        observed = np.array([all(np.isfinite(values[t, c]).any() for c in range(values.shape[1]))
                             for t in range(values.shape[0])])
        if not observed.any():
            raise DataError("no data in the input window: every input time step has a variable entirely missing")
        dropped = int((~observed).sum())
        if dropped:
            notes.append(f"{dropped} input step(s) with a variable entirely missing were treated as unobserved")
        times_in = window["time"].values
        first_obs = times_in[observed][0]
        init_time = times_in[observed][-1]
        in_hours = hours_since(times_in, first_obs)
        init_hours = float(in_hours[observed][-1])
        request = parse_times(times, first_input=first_obs, init_hours=init_hours)
        notes += request.notes
        if request.hours[0] < 0:
            raise ClimodeError(f"requested time {request.hours[0]:g} h is before the first input ({first_obs}); "
                               "climode predicts at or after the first observation")
        # the model's grid: regrid if the spacing differs, pad to the encoder stride with NaN
        original = window
        regridded = self._regrid_needed(window)
        if regridded:
            window = self._model_grid(window)
            values = np.stack([window[v].values for v in self.variables], axis=1).astype(np.float32)
        stride = getattr(self.model.config, "stride", 1)
        padded, crop = pad_dataset_with_nan(window, stride)
        if padded is not window:
            values = np.stack([padded[v].values for v in self.variables], axis=1).astype(np.float32)
        valid = np.isfinite(values[observed]).any(axis=0)  # [C, H, W]: seen in at least one input
        normed = self.normalizer.normalize(values, channel_axis=1)
        normed = np.where(np.isfinite(normed), normed, 0.0).astype(np.float32)
        device = self.device or torch.device("cpu")
        n = members or 1
        batch = torch.from_numpy(normed)[None].expand(n, *normed.shape).to(device)
        static = self._static(padded["lat"].values, padded["lon"].values)
        static_t = None if static is None else torch.from_numpy(static)[None].expand(n, *static.shape).to(device)
        sample = None
        if members:
            if not getattr(self.model.config, "sample_z0", False):
                raise ClimodeError(f"--members needs a stochastic model; {self.name} is deterministic "
                                   "(train an ELBO model such as latent_ode for ensembles)")
            sample = True
        with torch.no_grad():
            out = self.model(batch, torch.from_numpy(in_hours)[None].expand(n, -1),
                             torch.tensor(request.hours, dtype=torch.float64)[None].expand(n, -1),
                             torch.from_numpy(observed.astype(np.float32))[None].expand(n, -1),
                             static_t, **({"sample_z0": sample} if sample is not None else {}))
        pred = out.frames.float().cpu().numpy()  # [N, K, C, H, W]
        pred = self.normalizer.denormalize(pred, channel_axis=2)
        pred = np.where(valid[None, None], pred, np.nan)
        result = self._to_dataset(pred, padded, crop, original if regridded else None, first_obs, init_time,
                                  request.hours, init_hours, ds, members, observed)
        result.attrs["climode_notes"] = "; ".join(notes) if notes else ""
        for note in notes:
            log.info("%s", note)
        self.last_info = ForecastInfo(list(times_in[observed]), list(result["time"].values),
                                      [h - init_hours for h in request.hours], notes)
        return result

    def _to_dataset(self, pred, padded, crop, regrid_back, first_obs, init_time, hours, init_hours, source, members,
                    observed):
        valid_times = [_add_hours(first_obs, h) for h in hours]
        period = np.array([h - init_hours for h in hours]) * np.timedelta64(3600, "s")
        data_vars = {}
        for c, var in enumerate(self.variables):
            dims = ("member", "time", "lat", "lon") if members else ("time", "lat", "lon")
            arr = pred[:, :, c] if members else pred[0, :, c]
            da = xr.DataArray(arr.astype(np.float32), dims=dims,
                              coords={"lat": padded["lat"].values, "lon": padded["lon"].values})
            standard, long_name = STANDARD_NAMES.get(var, (None, var))
            da.attrs = {"units": self.meta.get("units", {}).get(var, source[var].attrs.get("units", "")),
                        "long_name": long_name}
            if standard:
                da.attrs["standard_name"] = standard
            if "original_name" in source[var].attrs:
                da.attrs["original_name"] = source[var].attrs["original_name"]
            data_vars[var] = da
        out = xr.Dataset(data_vars)
        out = crop(out)
        if regrid_back is not None:
            back = regrid(out, regrid_back["lat"].values, regrid_back["lon"].values, keep_missing=False)
            for var in self.variables:  # NaN exactly where the original inputs never had a value
                seen = np.isfinite(regrid_back[var].values[observed]).any(axis=0)
                back[var] = back[var].where(xr.DataArray(seen, dims=("lat", "lon")))
                back[var].attrs = out[var].attrs
            out = back
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
        sha = self.meta.get("sha256", "")
        trained_on = self.meta.get("trained_on", "")
        out.attrs = {
            "Conventions": "CF-1.8",
            "title": f"climode {self.name} forecast",
            "institution": "climode",
            "source": f"climode {__version__}, model {self.name}",
            "history": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ} climode {__version__} forecast",
            "climode_model": self.name,
            "climode_checkpoint": str(self.path.name if self.path else ""),
            "climode_checkpoint_sha256": sha,
            "climode_version": __version__,
            "climode_trained_on": trained_on,
            "climode_disclaimer": self.meta.get("disclaimer", ""),
        }
        return out


def _fill_nearest(values: np.ndarray) -> np.ndarray:
    """Fill NaN cells of the last two axes with their nearest finite neighbour (scipy.ndimage)."""
    from scipy import ndimage

    out = np.array(values, dtype=np.float64, copy=True)
    flat = out.reshape(-1, *out.shape[-2:])
    for field_ in flat:
        bad = ~np.isfinite(field_)
        if bad.any() and not bad.all():
            _, (iy, ix) = ndimage.distance_transform_edt(bad, return_indices=True)
            field_[bad] = field_[iy[bad], ix[bad]]
    return out


def regrid(ds: xr.Dataset, lat: np.ndarray, lon: np.ndarray, keep_missing: bool = True) -> xr.Dataset:
    """Bilinear regridding of every (..., lat, lon) variable that does not fray missing cells.

    Values are extended into missing cells by nearest neighbours and
    interpolated bilinearly with ``scipy.ndimage.map_coordinates``; target cells
    beyond the source grid take the edge values.  With ``keep_missing`` a target
    cell is missing where its nearest source cell is.
    """
    from scipy import ndimage

    src_lat, src_lon = ds["lat"].values.astype(np.float64), ds["lon"].values.astype(np.float64)
    iy = np.interp(lat, src_lat, np.arange(len(src_lat)))
    ix = np.interp(lon, src_lon, np.arange(len(src_lon)))
    gy, gx = np.meshgrid(iy, ix, indexing="ij")
    ny_idx, nx_idx = np.rint(gy).astype(int), np.rint(gx).astype(int)
    out = {}
    for name, da in ds.data_vars.items():
        if "lat" not in da.dims or "lon" not in da.dims:
            continue
        da = da.transpose(..., "lat", "lon")
        filled = _fill_nearest(da.values)
        flat = filled.reshape(-1, *filled.shape[-2:])
        result = np.stack([ndimage.map_coordinates(f, [gy, gx], order=1, mode="nearest") for f in flat])
        result = result.reshape(*filled.shape[:-2], len(lat), len(lon))
        if keep_missing:
            missing = np.isnan(da.values)[..., ny_idx, nx_idx]
            result = np.where(missing, np.nan, result)
        coords = {d: da[d].values for d in da.dims[:-2] if d in da.coords}
        coords.update(lat=lat, lon=lon)
        out[name] = xr.DataArray(result.astype(da.dtype), dims=da.dims, coords=coords, attrs=da.attrs)
    return xr.Dataset(out, attrs=ds.attrs)


def _add_hours(t0, hours: float):
    if isinstance(t0, np.datetime64):
        return t0 + np.timedelta64(int(round(hours * 3600)), "s")
    return t0 + dt.timedelta(hours=float(hours))


def load_model(path: str | Path | None = None, device: str | None = "auto") -> Forecaster:
    """The forecaster of a checkpoint (the bundled hurricane model by default)."""
    return Forecaster.from_checkpoint(path, device)


def forecast(data=None, times="+3h,+6h", *, checkpoint=None, basin=None, inputs=None, init=None, members=None,
             device="auto", output=None) -> xr.Dataset:
    """The function behind ``climode forecast``: predict and optionally write ``output`` (.nc or .zarr)."""
    model = load_model(checkpoint, device)
    result = model.predict(data, times, basin=basin, inputs=inputs, init=init, members=members)
    if output is not None:
        from climode.io import write_dataset

        write_dataset(result, output)
    return result
