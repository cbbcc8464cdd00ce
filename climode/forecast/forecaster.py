"""The Forecaster: a checkpoint plus canonical xarray fields in, a CF forecast out.

A forecast runs in stages: input selection (:mod:`climode.forecast.inputs`),
the model's grid (regridding here, padding to the encoder stride), the model
(:mod:`climode.models.base`), the limits of what it may give
(:mod:`climode.forecast.limits`) and CF output (:mod:`climode.forecast.output`).
The model comes from a checkpoint (:mod:`climode.forecast.checkpoint`).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode._version import __version__
from climode.errors import ClimodeError, DataError
from climode.forecast.checkpoint import load_checkpoint_model
from climode.forecast.inputs import choose_inputs, observed_steps, open_inputs, stack_fields, static_channels
from climode.forecast.limits import beyond_trained_horizon, check_decoder_steps, mask_non_physical
from climode.forecast.output import (
    cf_forecast,
    check_output,
    field_dataset,
    input_paths,
    model_attributes,
    write_forecast,
)
from climode.forecast.progress import ForecastProgress
from climode.forecast.times import parse_times
from climode.grid import check_regrid_method, is_global_lon, regrid
from climode.models.checkpoint_meta import CheckpointMeta
from climode.time import add_hours, format_time, hours_since

log = logging.getLogger(__name__)


@dataclass
class ForecastInfo:
    """What a forecast was made from, for tables and JSON output."""

    input_times: list[Any]
    valid_times: list[Any]
    lead_hours: list[float]
    notes: list[str] = field(default_factory=list)
    nfe_encoder: int = 0
    nfe_decoder: int = 0


class Forecaster:
    """A trained model (a :class:`~climode.models.base.ForecastModel`) with its config, variables,
    normalisation and grid."""

    def __init__(self, model, meta: CheckpointMeta, path: Path | None = None, device=None):
        from climode.data.normalize import Normalizer

        self.model = model.eval()
        self.meta = meta
        self.path = path
        self.device = device
        self.variables: list[str] = list(meta.variables or [])
        self.normalizer = Normalizer.from_dict(meta.normalization or {})
        self.static: list[str] = list(meta.static)
        self.grid: dict[str, Any] = dict(meta.grid)
        protocol = meta.protocol
        self.n_inputs = int(protocol.get("n_inputs", 5))
        #: the longest lead after the last input the model was trained on (``time_unit``), None if unknown
        self.max_lead = meta.max_lead
        self.name = meta.model or "vidode"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = "auto", *,
                        video: bool = False, precision: str | None = None) -> "Forecaster":
        """Load a checkpoint; ``video=True`` also accepts models of video frames (for evaluation).

        The model runs in the precision it was trained in (the sidecar's
        ``training.precision``) unless ``precision`` ("float32" or "bfloat16") says otherwise.
        """
        loaded = load_checkpoint_model(path, device, video=video, precision=precision)
        return cls(loaded.model, loaded.meta, loaded.path, loaded.device)

    @property
    def description(self) -> str:
        if self.meta.description is not None:
            return self.meta.description
        return f"{self.name} trained on {self.meta.trained_on or 'unknown data'}"

    # ------------------------------------------------------------------ predict
    def predict(self, data=None, times="+3h,+6h", *, basin=None, inputs=None, init=None,
                members: int | None = None, units: dict[str, str] | None = None,
                regrid_method: str = "bilinear", variables: dict[str, str] | None = None,
                progress: bool | None = False) -> xr.Dataset:
        """Fields at ``times`` (see :mod:`climode.forecast.times`) from the observations in ``data``.

        ``variables`` maps the model's variables to the data's names (``{'PSL': 'slp'}``);
        ``units`` gives the units of variables that carry none or wrong ones (``{'PSL': 'hPa'}``,
        see :func:`climode.open_dataset`).  ``progress``: a progress bar of the decoder steps
        (True; None: only on a terminal) that appears once the forecast takes over
        ``$CLIMODE_PROGRESS_DELAY`` seconds (2).  Longitudes come back in the data's own
        convention (0..360 or -180..180, see :func:`climode.basins.to_convention`).
        ``regrid_method`` (``bilinear`` or ``conservative``) is how data on another grid spacing
        go to the model's grid and the forecast back (see :func:`regrid`).
        :meth:`predict_with_info` also tells what the forecast was made from.
        """
        return self.predict_with_info(data, times, basin=basin, inputs=inputs, init=init, members=members,
                                      units=units, regrid_method=regrid_method, variables=variables,
                                      progress=progress)[0]

    def predict_with_info(self, data=None, times="+3h,+6h", *, basin=None, inputs=None, init=None,
                          members: int | None = None, units: dict[str, str] | None = None,
                          regrid_method: str = "bilinear", variables: dict[str, str] | None = None,
                          progress: bool | None = False) -> tuple[xr.Dataset, ForecastInfo]:
        """:meth:`predict`'s forecast and what it was made from (inputs used, leads, notes, NFE)."""
        from climode.basins import subset
        from climode.basins.boxes import contiguous_lon, to_convention
        from climode.basins.tiles import pad_dataset_with_nan
        from climode.data.open import LON_CONVENTION_ATTR

        check_regrid_method(regrid_method)
        ds = open_inputs(data, self.variables, self.path.name if self.path else "the bundled model", units, variables)
        convention = ds.attrs.get(LON_CONVENTION_ATTR, "0..360")
        ds = contiguous_lon(subset(ds, basin))  # never a seam inside the domain that is not on the globe
        idx, notes = choose_inputs(ds, self.n_inputs, inputs, init)
        window = ds.isel(time=idx)[self.variables].load()  # only the input steps are read
        values = stack_fields(window, self.variables)  # [T, C, H, W]
        observed = observed_steps(values)
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
            raise ClimodeError(f"requested time {request.hours[0]:g} h is before the first input "
                               f"({format_time(first_obs)}); climode predicts at or after the first observation")
        check_decoder_steps(float(getattr(self.model.config, "decoder_step", 0.0) or 0.0), in_hours[observed],
                            request.hours, init_hours)
        beyond = beyond_trained_horizon(self.max_lead, request.hours, init_hours)
        # the model's grid: regrid if the spacing differs, pad to the encoder stride with NaN
        original = window
        regridded = self.regrid_needed(window)
        bar = ForecastProgress(self.model, request.hours, in_hours[observed], progress)
        if regridded:
            bar.stage("regridding")
            window = self._model_grid(window, regrid_method)
            values = stack_fields(window, self.variables)
        stride = getattr(self.model.config, "stride", 1)
        padded, crop = pad_dataset_with_nan(window, stride)
        if padded is not window:
            values = stack_fields(padded, self.variables)
        pred, nfe = self._run_model(values, observed, in_hours, request.hours, window, padded, members, bar)
        bar.stage("regridding back" if regridded else "writing fields")
        masked = mask_non_physical(pred, self.variables)
        fields = crop(field_dataset(pred, self.variables, padded["lat"].values, padded["lon"].values, members,
                                    self.meta.units, ds))
        if regridded:
            fields = self._to_data_grid(fields, original, observed, regrid_method)
        leads = [h - init_hours for h in request.hours]
        history = history_line(call_text("Forecaster.predict", _data_label(data), times=times, basin=basin,
                                         inputs=inputs, init=init, members=members,
                                         regrid_method=_unless(regrid_method, "bilinear")))
        result = cf_forecast(fields, [add_hours(first_obs, h) for h in request.hours], leads, init_time, members,
                             ds, model_attributes(self.name, self.path, self.meta), history)
        result = to_convention(result, convention)
        bar.close()
        result.attrs["climode_notes"] = "; ".join(notes) if notes else ""
        if beyond:
            result.attrs["climode_beyond_trained_horizon"] = beyond
        if masked:
            result.attrs["climode_non_physical_masked"] = masked
        for note in notes:
            log.info("%s", note)
        return result, ForecastInfo(list(times_in[observed]), list(result["time"].values), leads, notes, *nfe)

    def _run_model(self, values: np.ndarray, observed: np.ndarray, in_hours: np.ndarray, hours: list[float],
                   window: xr.Dataset, padded: xr.Dataset, members: int | None,
                   bar: ForecastProgress) -> tuple[np.ndarray, tuple[int, int]]:
        """The model's fields [N, K, C, H, W] at ``hours`` from ``values`` [T, C, H, W] on the padded
        model grid, in physical units and missing where no input saw the cell, and its (encoder, decoder) NFE."""
        import torch

        from climode.models.periodic import is_periodic_grid, periodic_longitude

        valid = np.isfinite(values[observed]).any(axis=0)  # [C, H, W]: seen in at least one input
        normed = self.normalizer.normalize(values, channel_axis=1)
        normed = np.where(np.isfinite(normed), normed, 0.0).astype(np.float32)
        device = self.device or torch.device("cpu")
        n = members or 1
        batch = torch.from_numpy(normed)[None].expand(n, *normed.shape).to(device)
        static = static_channels(self.static, padded["lat"].values, padded["lon"].values)
        static_t = None if static is None else torch.from_numpy(static)[None].expand(n, *static.shape).to(device)
        stochastic = bool(getattr(self.model.config, "sample_z0", False))
        if members and not stochastic:
            raise ClimodeError(f"--members needs a stochastic model; {self.name} is deterministic "
                               "(train an ELBO model such as latent_ode for ensembles)")
        # members sample z0 ~ q(z0 | inputs); a single forecast of a stochastic model uses the mean of q
        sample = bool(members) if stochastic else None
        # a global grid wraps in longitude inside every spatial layer (climode.models.periodic)
        periodic = is_periodic_grid(window["lon"].values, padded.sizes["lon"])
        if periodic:
            log.debug("global grid: the model's convolutions and warping wrap round in longitude")
        with torch.no_grad(), bar.decoding(), periodic_longitude(self.model, periodic):
            out = self.model(batch, torch.from_numpy(in_hours)[None].expand(n, -1),
                             torch.tensor(hours, dtype=torch.float64)[None].expand(n, -1),
                             torch.from_numpy(observed.astype(np.float32))[None].expand(n, -1),
                             static_t, **({"sample_z0": sample} if sample is not None else {}))
        nfe = (int(getattr(out, "nfe_encoder", 0)), int(getattr(out, "nfe_decoder", 0)))
        pred = out.frames.float().cpu().numpy()  # [N, K, C, H, W]
        pred = self.normalizer.denormalize(pred, channel_axis=2)
        return np.where(valid[None, None], pred, np.nan), nfe

    # ------------------------------------------------------------------ the model's grid
    def regrid_needed(self, ds: xr.Dataset) -> bool:
        """True when ``ds``'s grid spacing differs from the model's training grid (by more than 1%)."""
        dlat, dlon = self.grid.get("dlat"), self.grid.get("dlon")
        if not dlat or not dlon or ds.sizes["lat"] < 2 or ds.sizes["lon"] < 2:
            return False
        have_lat = float(np.diff(ds["lat"].values).mean())
        have_lon = float(np.diff(ds["lon"].values).mean())
        return abs(have_lat - dlat) > 0.01 * dlat or abs(have_lon - dlon) > 0.01 * dlon

    def _model_grid(self, ds: xr.Dataset, method: str = "bilinear") -> xr.Dataset:
        """Regridding onto the training grid spacing, over the same domain (see :func:`regrid`)."""
        dlat, dlon = self.grid["dlat"], self.grid["dlon"]
        # cover the whole domain: the last row and column may reach a little past it
        lat = np.arange(float(ds.lat[0]), float(ds.lat[-1]) + dlat - 1e-6, dlat)
        if is_global_lon(ds["lon"].values):  # once round the globe, no duplicated seam column
            lon = float(ds.lon[0]) + dlon * np.arange(int(round(360.0 / dlon)))
        else:
            lon = np.arange(float(ds.lon[0]), float(ds.lon[-1]) + dlon - 1e-6, dlon)
        log.info("regridding (%s) from %.3g x %.3g to the model's %.3g x %.3g degrees", method,
                 float(np.diff(ds.lat).mean()), float(np.diff(ds.lon).mean()), dlat, dlon)
        return regrid(ds, lat, lon, method=method)

    def _to_data_grid(self, fields: xr.Dataset, original: xr.Dataset, observed: np.ndarray,
                      method: str = "bilinear") -> xr.Dataset:
        """The forecast ``fields`` regridded back to the data's grid (``original``, the input window),
        missing exactly where the observed inputs never had a value."""
        back = regrid(fields, original["lat"].values, original["lon"].values, keep_missing=False, method=method)
        for var in self.variables:
            seen = np.isfinite(original[var].values[observed]).any(axis=0)
            back[var] = back[var].where(xr.DataArray(seen, dims=("lat", "lon")))
            back[var].attrs = fields[var].attrs
        return back


def history_line(command: str) -> str:
    """A CF ``history`` entry: UTC timestamp, package version and the command or call."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ} climode {__version__}: {command}"


def call_text(function: str, data=None, **kwargs) -> str:
    """``function(data, key=value, ...)`` of the arguments that were given, for ``history``."""
    args = [str(data)] if data is not None else []
    args += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"{function}({', '.join(args)})"


def _data_label(data) -> str | None:
    """How ``history`` names the data: a path or catalog name, ``<xarray.Dataset>``, or None (the sample)."""
    if data is None:
        return None
    return repr(str(data)) if isinstance(data, (str, Path)) else f"<xarray.{type(data).__name__}>"


def _unless(value, default):
    """``value``, or None when it is the default (keeps ``history`` short)."""
    return None if value == default else value


def load_model(path: str | Path | None = None, device: str | None = "auto", *, video: bool = False,
               precision: str | None = None) -> Forecaster:
    """The forecaster of a checkpoint (the bundled hurricane model by default).

    ``video=True`` also loads models trained on video benchmarks (``climode evaluate``);
    forecasting gridded data needs a model of climate variables.  ``precision``
    ("float32" or "bfloat16") overrides the precision the model was trained in.
    """
    return Forecaster.from_checkpoint(path, device, video=video, precision=precision)


def run_forecast(data=None, times="+3h,+6h", *, checkpoint=None, basin=None, inputs=None, init=None, members=None,
                 device="auto", output=None, overwrite: bool = False, regrid_method="bilinear",
                 variables: dict[str, str] | None = None, units: dict[str, str] | None = None,
                 progress: bool | None = False) -> xr.Dataset:
    """The function behind ``climode forecast``: predict and optionally write ``output`` (.nc or .zarr).

    ``output`` may not be one of the inputs, and may not exist unless ``overwrite=True``;
    both are checked before anything runs.  ``variables``/``units``: see :meth:`Forecaster.predict`.
    """
    if output is not None:
        check_output(output, inputs=input_paths(data, checkpoint), overwrite=overwrite)
    model = load_model(checkpoint, device)
    result = model.predict(data, times, basin=basin, inputs=inputs, init=init, members=members,
                           regrid_method=regrid_method, variables=variables, units=units, progress=progress)
    result.attrs["history"] = history_line(call_text(
        "climode.run_forecast", _data_label(data),
        times=times, checkpoint=None if checkpoint is None else str(checkpoint), basin=basin, inputs=inputs,
        init=init, members=members, regrid_method=_unless(regrid_method, "bilinear"), variables=variables,
        units=units, output=None if output is None else str(output), overwrite=_unless(overwrite, False)))
    if output is not None:
        write_forecast(result, output)
    return result


def forecast(*args, **kwargs) -> xr.Dataset:
    """Deprecated name of :func:`run_forecast` (``climode.forecast`` is the package, not a function)."""
    warnings.warn("climode.forecast.forecast is deprecated; call climode.run_forecast", DeprecationWarning,
                  stacklevel=2)
    return run_forecast(*args, **kwargs)
