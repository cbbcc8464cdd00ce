"""The Forecaster: a checkpoint plus canonical xarray fields in, a CF forecast out."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode._version import __version__
from climode.errors import CheckpointError, ClimodeError, DataError, HorizonWarning
from climode.forecast.times import parse_times
from climode.grid import check_regrid_method, is_global_lon, regrid
from climode.time import add_hours, format_time, hours_since

log = logging.getLogger(__name__)

ZOO = Path(__file__).resolve().parent.parent / "zoo"
BUNDLED = ZOO / "hurricanes_cpu.json"  # climode/zoo, see climode.zoo
#: The most decoder steps (of the model's ``decoder_step``) a requested time may lie after the
#: observation before it: the decoder keeps every step's latent state, so memory and run
#: time grow with the lead (3072 h for the bundled model's 3 h step, far past any skill).
MAX_DECODER_STEPS = 1024
#: Leads (after the last observation) beyond this many times the checkpoint's trained ``max_lead``
#: are refused: far past the training horizon the recursion drifts into non-physical fields.
HARD_LIMIT_FACTOR = 8
#: Physical bounds of forecast fields (canonical units); values outside are masked (NaN) with a warning.
PHYSICAL_BOUNDS = {"PSL": (85_000.0, 110_000.0), "U850": (-150.0, 150.0), "V850": (-150.0, 150.0)}
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
    nfe_encoder: int = 0
    nfe_decoder: int = 0


def _resolve_device(name: str | None):
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClimodeError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


PRECISIONS = ("float32", "bfloat16")


def set_precision(model, precision: str | None, *, asked: bool = False) -> None:
    """Run ``model`` in ``precision``: "float32", or "bfloat16" autocast (None: as its config says).

    A precision the user ``asked`` for applies on every device; one recorded at
    training time turns bf16 on for GPUs only (``amp``), and the CPU keeps its
    ``amp_cpu`` switch.  A checkpoint without a recorded precision keeps its config.
    """
    config = getattr(model, "config", None)
    if precision is None or config is None:
        return
    if precision not in PRECISIONS:
        raise ClimodeError(f"precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    bf16 = precision == "bfloat16"
    if hasattr(config, "amp"):
        config.amp = bf16
    if hasattr(config, "amp_cpu") and (asked or not bf16):
        config.amp_cpu = bf16


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
        #: the longest lead after the last input the model was trained on (``time_unit``), None if unknown
        self.max_lead = float(meta["max_lead"]) if meta.get("max_lead") is not None else None
        self.name = meta.get("model", "vidode")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = "auto", *,
                        video: bool = False, precision: str | None = None) -> "Forecaster":
        """Load a checkpoint; ``video=True`` also accepts models of video frames (for evaluation).

        The model runs in the precision it was trained in (the sidecar's
        ``training.precision``) unless ``precision`` ("float32" or "bfloat16") says otherwise.
        """
        from climode.models.registry import get_model
        from climode.training.checkpoint import load_checkpoint

        source = Path(path) if path is not None else BUNDLED
        if path is None and not BUNDLED.exists():
            raise CheckpointError("the bundled model is missing from this installation; pass --checkpoint")
        if not any(p.exists() for p in (source, source.with_suffix(".json"), source.with_suffix(".safetensors"))):
            raise CheckpointError(f"checkpoint {source} not found: give a model .json/.safetensors file or a run "
                                  "directory, or omit --checkpoint for the bundled model")
        ckpt = load_checkpoint(source)
        meta = ckpt.meta
        for key in ("model", "config", "variables", "normalization"):
            if key not in meta:
                raise CheckpointError(f"checkpoint {ckpt.path} has no {key!r} in its sidecar; it is not a climode forecast model")
        if not (video and meta.get("time_unit") == "frame"):
            _check_variables(meta["variables"], ckpt.path, meta.get("time_unit") == "frame")
        torch_device = _resolve_device(device)
        model = get_model(meta["model"], meta["config"])
        try:
            model.load_state_dict(ckpt.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {ckpt.path} does not match its own config: {str(exc).splitlines()[0]}") from exc
        set_precision(model, precision or meta.get("training", {}).get("precision"), asked=precision is not None)
        model.to(torch_device)
        return cls(model, meta, ckpt.path, torch_device)

    @property
    def description(self) -> str:
        return self.meta.get("description", f"{self.name} trained on {self.meta.get('trained_on', 'unknown data')}")

    # ------------------------------------------------------------------ inputs
    def _open(self, data, units=None, variables=None) -> xr.Dataset:
        from climode.data.mapping import check_units, check_variables, option
        from climode.data.open import open_dataset

        if data is None:
            from climode.forecast.sample import default_sample

            data = default_sample()
        wanted = list(self.variables)
        if variables:
            names = check_variables(variables, option("variables"), allowed=self.variables)
            wanted = {v: names.get(v) for v in self.variables}
        if units:
            units = check_units(units, option("units"))
        try:
            return open_dataset(data, wanted, min_times=1, validate=False, units=units)
        except DataError as exc:
            if any(f"no {v}" in str(exc) or f", {v} found" in str(exc) for v in self.variables):
                source = self.path.name if self.path else "the bundled model"
                raise DataError(f"{exc}; the checkpoint ({source}) forecasts {', '.join(self.variables)}: give data "
                                "with those variables or a checkpoint trained on the data's") from exc
            raise

    def _choose_inputs(self, ds: xr.Dataset, inputs, init) -> tuple[np.ndarray, list[str]]:
        """Indices of the input time steps (the newest n_inputs at or before init by default)."""
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
            idx = self._explicit_inputs(ds, hours, inputs, float(hours[candidates[-1]]), init, limit)
        else:
            idx = candidates[-self.n_inputs:]
        if idx.size < 2:
            raise DataError(f"the forecast needs at least 2 observations but the window has {idx.size}; "
                            "give data with more time steps or choose --inputs")
        notes = []
        if limit is not None and abs(hours[idx[-1]] - limit) > 1e-3:
            notes.append(f"--init {init} is not an observation time: the forecast starts from the last observation "
                         f"before it, {format_time(ds['time'].values[idx[-1]])}, and +N h leads count from there")
        return idx, notes

    @staticmethod
    def _explicit_inputs(ds: xr.Dataset, hours: np.ndarray, inputs, init_hours: float, init, limit) -> np.ndarray:
        """Indices of the observation times listed in ``inputs``; none may be after ``--init``."""
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

    def _regrid_needed(self, ds: xr.Dataset) -> bool:
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
        """
        import torch

        from climode.basins import subset
        from climode.basins.boxes import contiguous_lon, to_convention
        from climode.basins.tiles import pad_dataset_with_nan
        from climode.data.open import LON_CONVENTION_ATTR
        from climode.models.periodic import is_periodic_grid, periodic_longitude

        check_regrid_method(regrid_method)
        ds = self._open(data, units, variables)
        convention = ds.attrs.get(LON_CONVENTION_ATTR, "0..360")
        ds = contiguous_lon(subset(ds, basin))  # never a seam inside the domain that is not on the globe
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
            raise ClimodeError(f"requested time {request.hours[0]:g} h is before the first input "
                               f"({format_time(first_obs)}); climode predicts at or after the first observation")
        self._check_horizon(in_hours[observed], request.hours, init_hours)
        beyond = self._beyond_trained_horizon(request.hours, init_hours)
        # the model's grid: regrid if the spacing differs, pad to the encoder stride with NaN
        original = window
        regridded = self._regrid_needed(window)
        bar = ForecastProgress(self.model, request.hours, in_hours[observed], progress)
        if regridded:
            bar.stage("regridding")
            window = self._model_grid(window, regrid_method)
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
                             torch.tensor(request.hours, dtype=torch.float64)[None].expand(n, -1),
                             torch.from_numpy(observed.astype(np.float32))[None].expand(n, -1),
                             static_t, **({"sample_z0": sample} if sample is not None else {}))
        nfe = (int(getattr(out, "nfe_encoder", 0)), int(getattr(out, "nfe_decoder", 0)))
        pred = out.frames.float().cpu().numpy()  # [N, K, C, H, W]
        pred = self.normalizer.denormalize(pred, channel_axis=2)
        pred = np.where(valid[None, None], pred, np.nan)
        bar.stage("regridding back" if regridded else "writing fields")
        masked = self._mask_non_physical(pred)
        result = self._to_dataset(pred, padded, crop, original if regridded else None, first_obs, init_time,
                                  request.hours, init_hours, ds, members, observed, regrid_method)
        result = to_convention(result, convention)
        bar.close()
        result.attrs["climode_notes"] = "; ".join(notes) if notes else ""
        if beyond:
            result.attrs["climode_beyond_trained_horizon"] = beyond
        if masked:
            result.attrs["climode_non_physical_masked"] = masked
        result.attrs["history"] = history_line(call_text("Forecaster.predict", _data_label(data),
                                                         times=times, basin=basin, inputs=inputs, init=init,
                                                         members=members, regrid_method=_unless(regrid_method,
                                                                                                "bilinear")))
        for note in notes:
            log.info("%s", note)
        self.last_info = ForecastInfo(list(times_in[observed]), list(result["time"].values),
                                      [h - init_hours for h in request.hours], notes, *nfe)
        return result

    def _check_horizon(self, obs_hours: np.ndarray, hours: list[float], init_hours: float) -> None:
        """Refuse times more than MAX_DECODER_STEPS decoder steps after the observation before them.

        The decoder recursion (Eq. 2) runs in steps of the model's ``decoder_step``
        from that observation to the requested time and keeps every step.
        """
        step = float(getattr(self.model.config, "decoder_step", 0.0) or 0.0)
        if step <= 0:
            return
        req = np.asarray(hours, dtype=np.float64)
        anchor = obs_hours[np.clip(np.searchsorted(obs_hours, req + 1e-6, side="right") - 1, 0, None)]
        steps = np.floor((req - anchor) / step + 1e-6)
        worst = int(np.argmax(steps))
        if steps[worst] > MAX_DECODER_STEPS:
            lead = req[worst] - init_hours
            raise ClimodeError(
                f"requested time {lead:+.10g} h needs {int(steps[worst])} decoder steps of {step:g} h; climode allows "
                f"at most {MAX_DECODER_STEPS} ({MAX_DECODER_STEPS * step:g} h after the observation before it) "
                "because memory and run time grow with every step: ask for earlier times")

    def _beyond_trained_horizon(self, hours: list[float], init_hours: float) -> str:
        """Refuse leads past HARD_LIMIT_FACTOR x ``max_lead``; warn (once) about leads past ``max_lead``.

        Returns the warning text ('' when every lead is within the trained horizon).
        """
        if self.max_lead is None:
            return ""
        leads = np.asarray(hours, dtype=np.float64) - init_hours
        limit = HARD_LIMIT_FACTOR * self.max_lead
        if leads.max() > limit + 1e-6:
            raise ClimodeError(
                f"lead {leads.max():+.10g} h is past {limit:g} h, {HARD_LIMIT_FACTOR}x the longest lead this model "
                f"was trained on (+{self.max_lead:g} h): ask for leads up to +{limit:g} h")
        far = leads > self.max_lead + 1e-6
        if not far.any():
            return ""
        text = (f"{int(far.sum())} requested time(s) (up to {leads.max():+.10g} h) are beyond the longest lead this "
                f"model was trained on (+{self.max_lead:g} h after the last input): expect little skill there")
        _warn(text)
        return text

    def _mask_non_physical(self, pred: np.ndarray) -> str:
        """Set values outside PHYSICAL_BOUNDS to NaN in ``pred`` [N, K, C, H, W]; warn and describe what was masked."""
        parts = []
        for c, var in enumerate(self.variables):
            if var not in PHYSICAL_BOUNDS:
                continue
            lo, hi = PHYSICAL_BOUNDS[var]
            field_ = pred[:, :, c]
            bad = np.isfinite(field_) & ((field_ < lo) | (field_ > hi))
            if bad.any():
                field_[bad] = np.nan
                parts.append(f"{var} {int(bad.sum())} cell(s) outside [{lo:g}, {hi:g}]")
        if not parts:
            return ""
        text = "non-physical values masked (NaN): " + ", ".join(parts)
        _warn(text)
        return text

    def _to_dataset(self, pred, padded, crop, regrid_back, first_obs, init_time, hours, init_hours, source, members,
                    observed, regrid_method="bilinear"):
        valid_times = [add_hours(first_obs, h) for h in hours]
        # whole seconds, rounded (5.9 h * 3600 is 21239.999... in floating point, not 5:53:59)
        period = np.round(np.array([h - init_hours for h in hours]) * 3600).astype(np.int64) * np.timedelta64(1, "s")
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
            back = regrid(out, regrid_back["lat"].values, regrid_back["lon"].values, keep_missing=False,
                          method=regrid_method)
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
            "history": history_line("forecast"),
            "climode_model": self.name,
            "climode_checkpoint": str(self.path.name if self.path else ""),
            "climode_checkpoint_sha256": sha,
            "climode_version": __version__,
            "climode_trained_on": trained_on,
            "climode_disclaimer": self.meta.get("disclaimer", ""),
        }
        return out


class ForecastProgress:
    """A tqdm bar over a forecast: its stages (regridding, regridding back) and the decoder's steps
    (forward calls of its Conv-Decoder G), counted by a forward hook.

    ``progress`` False: none; None: only when stderr is a terminal.  The bar shows only once
    the forecast has run ``$CLIMODE_PROGRESS_DELAY`` seconds (default 2), so short forecasts
    stay silent.
    """

    def __init__(self, model, hours, obs_hours, progress: bool | None):
        self.model = model
        self.bar = None
        if progress is False or not hasattr(getattr(model, "decoder", None), "register_forward_hook"):
            return
        import os

        from tqdm.auto import tqdm

        step = float(getattr(getattr(model, "config", None), "decoder_step", 0.0) or 0.0)
        total = int(np.ceil((max(hours) - min(obs_hours)) / step)) + len(hours) if step > 0 else None
        self.bar = tqdm(total=total, desc="climode forecast", unit="step", leave=False,
                        delay=float(os.environ.get("CLIMODE_PROGRESS_DELAY", "2")),
                        disable=None if progress is None else False)

    def stage(self, text: str) -> None:
        """Name the stage now running (shown if the bar is, once its delay has passed)."""
        if self.bar is not None:
            self.bar.set_description_str(f"climode forecast: {text}", refresh=False)
            if not self.bar.disable and self.bar.format_dict["elapsed"] >= self.bar.delay:
                self.bar.refresh()

    @contextlib.contextmanager
    def decoding(self):
        """Count the decoder's steps while the block runs."""
        if self.bar is None:
            yield
            return
        self.stage("encoding and decoding")

        def count(*_) -> None:  # a forward hook's return value would replace the module's output
            self.bar.update(1)

        handle = self.model.decoder.register_forward_hook(count)
        try:
            yield
        finally:
            handle.remove()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _warn(text: str) -> None:
    """A HorizonWarning shown on every call (no once-per-location registry), and logged."""
    warnings.warn_explicit(text, HorizonWarning, __file__, 0, module=__name__, registry=None)
    log.debug("%s", text)


def _check_variables(variables: list[str], path, video: bool = False) -> None:
    """A checkpoint whose variables climode cannot read from data is refused at load time."""
    from climode.data.lexicon import CANONICAL

    unsupported = [v for v in variables if v not in CANONICAL]
    if unsupported and video:
        raise CheckpointError(f"checkpoint {path} is a video model (frames, not {', '.join(CANONICAL)}): score it "
                              "with climode evaluate --data <video benchmark>, or use a climate checkpoint")
    if unsupported:
        raise CheckpointError(
            f"checkpoint {path} forecasts {', '.join(variables)}, but climode reads only {', '.join(CANONICAL)} "
            f"from data ({', '.join(unsupported)} not supported): use a checkpoint trained on those, or omit "
            "--checkpoint for the bundled model")


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


OUTPUT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".zarr")  # what climode.io.write_dataset writes


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


def forecast(data=None, times="+3h,+6h", *, checkpoint=None, basin=None, inputs=None, init=None, members=None,
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
        "climode.forecast", _data_label(data),
        times=times, checkpoint=None if checkpoint is None else str(checkpoint), basin=basin, inputs=inputs,
        init=init, members=members, regrid_method=_unless(regrid_method, "bilinear"), variables=variables,
        units=units, output=None if output is None else str(output), overwrite=_unless(overwrite, False)))
    if output is not None:
        write_forecast(result, output)
    return result
