"""A physical synthetic world: dinosaur's Held-Suarez atmosphere with tropical cyclones.

The dry primitive equations of Google's spectral dynamical core ``dinosaur``
(the dycore of NeuralGCM) under Held and Suarez (1994) forcing: Newtonian
relaxation towards a zonally symmetric radiative-equilibrium temperature and
Rayleigh friction in the boundary layer.  This idealised climate has westerly
jets and travelling baroclinic cyclones in both hemispheres.  There is no
topography, land, moisture or season, so the surface pressure *is* the
sea-level pressure, and there are no tropical cyclones of its own: analytic
Holland vortices (those of :mod:`climode.data.synthetic.hurricanes`) are born in
both hemispheres' tropics, steered by the model's 850 hPa wind plus a beta drift,
and superposed on the fields (see docs/data.md, "The physical world").

Output: 3-hourly U850, V850 and PSL on the regular (equiangular) latitude-longitude
grid of the spectral truncation (T21: 64 x 32, T31: 96 x 48, T42: 128 x 64), global,
CF-1.8, written to a zarr store chunk by chunk.  The run keeps its state in a
file beside the store, so an interrupted run resumes where its last complete
chunk ended, and a seed gives the same world however often it was interrupted.

Needs the optional extra ``pip install 'climode[physics]'`` (jax and dinosaur).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import xarray as xr

from climode.errors import ConfigError, DataError, MissingDependencyError

log = logging.getLogger(__name__)

RESOLUTIONS = ("T21", "T31", "T42")
#: default time step (minutes) per truncation: stable with 20 sigma levels
DEFAULT_DT_MINUTES = {"T21": 30.0, "T31": 20.0, "T42": 15.0}
STATE_SUFFIX = ".climode-state.npz"
DAYS_PER_YEAR = 365.0  # noleap calendar
_DEG = math.pi / 180.0
_DYCORE_FIELDS = ("vorticity", "divergence", "temperature_variation", "log_surface_pressure")
_TRACK_FIELDS = ("cyclone_id", "cyclone_lat", "cyclone_lon", "cyclone_dp")


@dataclass(frozen=True)
class AtmosphereConfig:
    """Parameters of the physical world (all have working defaults).

    ``spinup_days`` of model time are run and discarded before the first output
    frame.  The run starts at rest from the Held-Suarez radiative-equilibrium
    temperature plus seeded noise of ``noise_kelvin`` (rms), which reaches a
    statistically steady state in about 40 days (an isothermal start takes
    about 200).  ``cyclones_per_day`` is the global genesis rate of tropical
    cyclones, split evenly between the hemispheres.
    """

    seed: int = 0
    days: float = 365.0
    resolution: str = "T42"
    layers: int = 20
    dt_minutes: float | None = None
    spinup_days: float = 120.0
    output_hours: int = 3
    noise_kelvin: float = 0.5
    chunk_days: float = 10.0
    start: str = "2000-01-01"
    cyclones_per_day: float = 0.4
    genesis_lat: tuple[float, float] = (8.0, 20.0)
    max_cyclones: int = 24

    def __post_init__(self):
        if self.resolution not in RESOLUTIONS:
            raise ConfigError(f"resolution {self.resolution!r} is not supported; use one of {', '.join(RESOLUTIONS)}")
        if self.dt_minutes is None:
            object.__setattr__(self, "dt_minutes", DEFAULT_DT_MINUTES[self.resolution])
        object.__setattr__(self, "genesis_lat", tuple(float(v) for v in self.genesis_lat))
        for name in ("days", "dt_minutes", "chunk_days", "output_hours", "layers", "max_cyclones"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        for name in ("spinup_days", "noise_kelvin", "cyclones_per_day", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        steps = self.output_hours * 60.0 / self.dt_minutes
        if abs(steps - round(steps)) > 1e-9:
            raise ConfigError(f"output_hours={self.output_hours} must be a whole number of dt_minutes={self.dt_minutes}")
        for name in ("spinup_days", "chunk_days"):
            frames = getattr(self, name) * 24.0 / self.output_hours
            if abs(frames - round(frames)) > 1e-9:
                raise ConfigError(f"{name}={getattr(self, name)} must be a whole number of output steps "
                                  f"({self.output_hours} h)")
        if self.n_frames < 1:
            raise ConfigError(f"days={self.days} is shorter than one output step of {self.output_hours} h")
        lo, hi = self.genesis_lat
        if not 0 < lo < hi < 40:
            raise ConfigError(f"genesis_lat={self.genesis_lat} must satisfy 0 < low < high < 40 (degrees from the equator)")
        from climode.data.synthetic.hurricanes import _parse_start

        _parse_start(self.start)

    @property
    def n_frames(self) -> int:
        return int(math.floor(self.days * 24.0 / self.output_hours + 1e-9))

    @property
    def inner_steps(self) -> int:
        return int(round(self.output_hours * 60.0 / self.dt_minutes))

    @property
    def chunk_frames(self) -> int:
        return int(round(self.chunk_days * 24.0 / self.output_hours))

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def require_physics():
    """Import jax and dinosaur, or fail with the extra to install.

    Compiled model steps are cached on disk (``$CLIMODE_CACHE/jax``, default
    ``~/.cache/climode/jax``), so a resumed or repeated run skips the compile.
    """
    try:
        import dinosaur  # noqa: F401
        import jax
    except ImportError as exc:
        raise MissingDependencyError(
            f"the physical world needs jax and dinosaur ({exc.name} is missing); "
            "install them with: pip install 'climode[physics]'"
        ) from None
    if jax.config.jax_compilation_cache_dir is None:
        from climode.data.normalize import stats_cache_dir

        jax.config.update("jax_compilation_cache_dir", str(stats_cache_dir().with_name("jax")))
    return jax


# --------------------------------------------------------------------------- the dynamical core


class HeldSuarezModel:
    """dinosaur's primitive equations with Held-Suarez forcing, sampled at 850 hPa on a regular grid."""

    def __init__(self, cfg: AtmosphereConfig):
        jax = require_physics()
        import jax.numpy as jnp
        from dinosaur import (coordinate_systems, held_suarez, primitive_equations, primitive_equations_states,
                              scales, sigma_coordinates, spherical_harmonic, time_integration,
                              vertical_interpolation, xarray_utils)

        self.cfg = cfg
        units = scales.units
        grid = getattr(spherical_harmonic.Grid, cfg.resolution)
        self.coords = coords = coordinate_systems.CoordinateSystem(
            grid(), sigma_coordinates.SigmaCoordinates.equidistant(cfg.layers))
        # the same spectral truncation evaluated on a regular grid: exact spectral interpolation
        self.output_grid = out = grid(latitude_spacing="equiangular")
        self.specs = specs = primitive_equations.PrimitiveEquationsSpecs.from_si()
        init_fn, aux = primitive_equations_states.isothermal_rest_atmosphere(coords, specs, p0=1e5 * units.pascal)
        self._rest = init_fn(rng_key=jax.random.PRNGKey(cfg.seed))
        self.ref_temps = ref = aux[xarray_utils.REF_TEMP_KEY]
        orography = primitive_equations.truncated_modal_orography(aux[xarray_utils.OROGRAPHY], coords)
        dt = specs.nondimensionalize(cfg.dt_minutes * units.minute)
        self.forcing = held_suarez.HeldSuarezForcing(coords=coords, physics_specs=specs, reference_temperature=ref)
        equation = time_integration.compose_equations(
            [primitive_equations.PrimitiveEquations(ref, orography, coords, specs), self.forcing])
        step = time_integration.step_with_filters(
            time_integration.imex_rk_sil3(equation, dt),
            [time_integration.exponential_step_filter(coords.horizontal, dt)])
        self._step = step
        pressure = vertical_interpolation.PressureCoordinates(np.array([specs.nondimensionalize(85000 * units.pascal)]))

        def at_850(state):
            """U850, V850 and surface pressure on the regular grid, nondimensional, (lon, lat)."""
            cos_u, cos_v = spherical_harmonic.get_cos_lat_vector(state.vorticity, state.divergence, out, clip=False)
            u = out.to_nodal(cos_u) / out.cos_lat
            v = out.to_nodal(cos_v) / out.cos_lat
            ps = jnp.exp(out.to_nodal(state.log_surface_pressure))
            u850, v850 = vertical_interpolation.interp_sigma_to_pressure((u, v), pressure, coords.vertical, ps)
            return u850[0], v850[0], ps[0]

        self._trajectory = {}
        self._at_850 = at_850
        self._time_integration = time_integration
        self._jax = jax
        self.pascal = float(specs.dimensionalize(1.0, units.pascal).m)
        self.metre_per_second = float(specs.dimensionalize(1.0, units.meter / units.second).m)
        lon, sin_lat = out.nodal_axes
        self.lon = np.round(np.degrees(np.asarray(lon, dtype=np.float64)), 6)
        self.lat = np.degrees(np.arcsin(np.asarray(sin_lat, dtype=np.float64)))
        self._lat_order = np.argsort(self.lat)
        self.lat = np.round(self.lat[self._lat_order], 6)

    def initial_state(self):
        """At rest, with the radiative-equilibrium temperature plus seeded noise (rms ``noise_kelvin``)."""
        import jax.numpy as jnp
        from dinosaur import primitive_equations, scales

        grid = self.coords.horizontal
        rest = self._rest
        ps = jnp.exp(grid.to_nodal(rest.log_surface_pressure))
        teq = self.forcing.equilibrium_temperature(ps) - self.ref_temps[:, None, None]
        rng = np.random.default_rng([self.cfg.seed, 11])
        noise = grid.to_modal(rng.normal(0.0, 1.0, self.coords.nodal_shape).astype(np.float32))
        rms = float(np.std(np.asarray(grid.to_nodal(noise)))) or 1.0
        kelvin = self.specs.nondimensionalize(self.cfg.noise_kelvin / rms * scales.units.degK)
        return primitive_equations.State(
            vorticity=rest.vorticity, divergence=rest.divergence,
            temperature_variation=rest.temperature_variation + grid.to_modal(teq) + kelvin * noise,
            log_surface_pressure=rest.log_surface_pressure)

    def advance(self, state, frames: int):
        """Run ``frames`` output steps: the new state and U850, V850, PSL [T, lat, lon] (SI) at the steps' starts.

        One compiled function per number of frames (spin-up and output share it).
        """
        if frames not in self._trajectory:
            ti = self._time_integration
            self._trajectory[frames] = self._jax.jit(ti.trajectory_from_step(
                self._step, frames, self.cfg.inner_steps, start_with_input=True, post_process_fn=self._at_850))
        state, out = self._trajectory[frames](state)
        u, v, ps = (np.asarray(a, dtype=np.float64)[:, :, self._lat_order].transpose(0, 2, 1) for a in out)
        return state, (u * self.metre_per_second, v * self.metre_per_second, ps * self.pascal)

    def state_arrays(self, state) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(state, name)) for name in _DYCORE_FIELDS}

    def state_from_arrays(self, arrays) -> object:
        import jax.numpy as jnp
        from dinosaur import primitive_equations

        return primitive_equations.State(**{name: jnp.asarray(arrays[name]) for name in _DYCORE_FIELDS})


_MODELS: dict[tuple, HeldSuarezModel] = {}


def model_for(cfg: AtmosphereConfig) -> HeldSuarezModel:
    """The (compiled) model of a config, reused by runs that differ only in length, spin-up or chunking."""
    key = (cfg.resolution, cfg.layers, cfg.dt_minutes, cfg.output_hours, cfg.seed, cfg.noise_kelvin)
    if key not in _MODELS:
        _MODELS.clear()  # keep one: a T42 model holds its compiled functions
        _MODELS[key] = HeldSuarezModel(cfg)
    return _MODELS[key]


# --------------------------------------------------------------------------- tropical cyclones


@dataclass
class Cyclones:
    """Live tropical cyclones (arrays over storms) and the next storm id."""

    id: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    dp: np.ndarray  # Pa
    age: np.ndarray  # s
    next_id: int = 0

    @classmethod
    def empty(cls) -> "Cyclones":
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), z, z.copy(), z.copy(), z.copy())

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"cyclones_{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self) if f.name != "next_id"}
        out["cyclones_next_id"] = np.asarray(self.next_id)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "Cyclones":
        return cls(**{f.name: np.asarray(arrays[f"cyclones_{f.name}"]) for f in fields(cls) if f.name != "next_id"},
                   next_id=int(arrays["cyclones_next_id"]))

    def select(self, keep: np.ndarray) -> None:
        for name in ("id", "lat", "lon", "dp", "age"):
            setattr(self, name, getattr(self, name)[keep])


def _storm_params(seed: int, storm_id: np.ndarray, lat: np.ndarray) -> dict[str, np.ndarray]:
    """Per-storm constants drawn from the hurricane world's ranges, from ``(seed, 1, id)``."""
    from climode.data.synthetic.hurricanes import HurricaneWorldConfig

    hw = HurricaneWorldConfig()
    cols: dict[str, list] = {k: [] for k in ("dp_max", "growth", "life", "rmax", "b", "beta_u", "beta_v")}
    for sid, la in zip(storm_id.tolist(), lat.tolist()):
        rng = np.random.default_rng([seed, 1, int(sid)])
        dpmax = rng.uniform(*hw.dp_max_hpa)
        tau = rng.uniform(*hw.intensification_days) * 86400.0
        cols["dp_max"].append(dpmax * 100.0)
        cols["growth"].append(math.log(19.0 * (dpmax - hw.dp_genesis_hpa) / hw.dp_genesis_hpa) / tau)
        cols["life"].append(rng.uniform(*hw.lifetime_days) * 86400.0)
        cols["rmax"].append(rng.uniform(*hw.rmax_km) * 1000.0)
        cols["b"].append(rng.uniform(*hw.holland_b))
        speed, angle = rng.uniform(*hw.beta_drift_ms), rng.uniform(25.0, 50.0) * _DEG
        cols["beta_u"].append(-speed * math.sin(angle))  # westward ...
        cols["beta_v"].append(math.copysign(speed * math.cos(angle), la))  # ... and poleward in each hemisphere
    return {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}


def _sample(field: np.ndarray, lat_axis: np.ndarray, lon_axis: np.ndarray, lat, lon) -> np.ndarray:
    """Bilinear value of a global (lat, lon) field at points (longitude periodic)."""
    from scipy import ndimage

    step = lon_axis[1] - lon_axis[0]
    wrapped = np.concatenate([field, field[:, :1]], axis=1)
    iy = np.interp(lat, lat_axis, np.arange(lat_axis.size))
    ix = np.mod(np.asarray(lon) - lon_axis[0], 360.0) / step
    return ndimage.map_coordinates(wrapped, [np.atleast_1d(iy), np.atleast_1d(ix)], order=1, mode="nearest")


class CycloneTracker:
    """Genesis, steering, intensity and superposition of the tropical cyclones, frame by frame.

    A frame's storms are moved from the previous frame by a Heun step of the
    steering velocity ``steering_factor`` x (model 850 hPa wind at the centre)
    plus the storm's beta drift (poleward and westward), then intensify
    logistically towards their maximum deficit, decay with age and poleward of
    ``cold_lat``; new storms are born by a Poisson process drawn per frame from
    ``(seed, 7, frame)``, so the world does not depend on how it was chunked.
    """

    def __init__(self, cfg: AtmosphereConfig, lat: np.ndarray, lon: np.ndarray):
        from climode.data.synthetic.hurricanes import HurricaneWorldConfig

        self.cfg, self.hw = cfg, HurricaneWorldConfig()
        self.lat, self.lon = lat, lon
        self.dt = cfg.output_hours * 3600.0

    def _velocity(self, u, v, params, lat, lon):
        """Steering velocity (m/s): ``steering_factor`` x the model's wind at the centres plus beta drift."""
        su = _sample(u, self.lat, self.lon, lat, lon)
        sv = _sample(v, self.lat, self.lon, lat, lon)
        k = self.hw.steering_factor
        return k * su + params["beta_u"], k * sv + params["beta_v"]

    def step(self, storms: Cyclones, frame: int, previous, current) -> tuple[Cyclones, dict[str, np.ndarray]]:
        """Storms at ``frame`` from those at ``frame - 1``; ``previous``/``current`` are the model's (U, V) there."""
        from climode.data.synthetic.hurricanes import EARTH_RADIUS

        hw, dt = self.hw, self.dt
        if storms.id.size and previous is not None:
            p = _storm_params(self.cfg.seed, storms.id, storms.lat)
            la, lo = storms.lat, storms.lon
            u1, v1 = self._velocity(*previous, p, la, lo)
            la1 = la + v1 * dt / EARTH_RADIUS / _DEG
            lo1 = lo + u1 * dt / (EARTH_RADIUS * np.cos(la * _DEG)) / _DEG
            u2, v2 = self._velocity(*current, p, la1, lo1)
            u, v = 0.5 * (u1 + u2), 0.5 * (v1 + v2)
            lat = np.clip(la + v * dt / EARTH_RADIUS / _DEG, -89.0, 89.0)
            lon = (lo + u * dt / (EARTH_RADIUS * np.cos(0.5 * (la + lat) * _DEG)) / _DEG) % 360.0
            dp = storms.dp
            for _ in range(self.cfg.output_hours):  # hourly intensity steps
                cold = 1.0 / (1.0 + np.exp(-(np.abs(lat) - hw.cold_lat) / 2.0))
                old = (storms.age > p["life"]).astype(float)
                grow = (1 - cold) * (1 - old) * p["growth"] * dp * (1 - dp / p["dp_max"])
                decay = dp * (cold / (hw.cold_decay_days * 86400.0) + old / (hw.aging_decay_days * 86400.0))
                dp = np.maximum(dp + 3600.0 * (grow - decay), 0.0)
            storms.lat, storms.lon, storms.dp, storms.age = lat, lon, dp, storms.age + dt
            dead = ((storms.age > 12 * 3600.0) & (storms.dp < 150.0)) | (np.abs(storms.lat) > 80.0)
            storms.select(~dead)
        self._genesis(storms, frame)
        return storms, self.track_row(storms)

    def _genesis(self, storms: Cyclones, frame: int) -> None:
        rng = np.random.default_rng([self.cfg.seed, 7, frame])
        n = rng.poisson(self.cfg.cyclones_per_day * self.dt / 86400.0)
        for _ in range(n):
            south = rng.random() < 0.5
            lat = rng.uniform(*self.cfg.genesis_lat) * (-1.0 if south else 1.0)
            lon = rng.uniform(0.0, 360.0)
            if storms.id.size >= self.cfg.max_cyclones:
                log.debug("cyclone genesis skipped at frame %d: %d storms alive", frame, storms.id.size)
                continue
            storms.id = np.append(storms.id, storms.next_id)
            storms.lat = np.append(storms.lat, lat)
            storms.lon = np.append(storms.lon, lon)
            storms.dp = np.append(storms.dp, self.hw.dp_genesis_hpa * 100.0)
            storms.age = np.append(storms.age, 0.0)
            storms.next_id += 1

    def track_row(self, storms: Cyclones) -> dict[str, np.ndarray]:
        """Truth of one frame on ``max_cyclones`` slots (id -1 where a slot is empty)."""
        n = self.cfg.max_cyclones
        row = {"cyclone_id": np.full(n, -1, np.int32), "cyclone_lat": np.full(n, np.nan, np.float32),
               "cyclone_lon": np.full(n, np.nan, np.float32), "cyclone_dp": np.full(n, np.nan, np.float32)}
        k = storms.id.size
        row["cyclone_id"][:k] = storms.id
        row["cyclone_lat"][:k], row["cyclone_lon"][:k], row["cyclone_dp"][:k] = storms.lat, storms.lon, storms.dp
        return row

    def superpose(self, storms: Cyclones, u, v, psl):
        """The fields with the storms' Holland vortices added (deficit, gradient wind, translation asymmetry)."""
        from climode.data.synthetic.hurricanes import _vortex

        if not storms.id.size:
            return u, v, psl
        p = _storm_params(self.cfg.seed, storms.id, storms.lat)
        ut, vt = self._velocity(u, v, p, storms.lat, storms.lon)
        glat, glon = np.meshgrid(self.lat, self.lon, indexing="ij")
        col = lambda x: np.asarray(x, dtype=np.float64)[:, None]  # noqa: E731
        deficit, du, dv = _vortex(self.hw, glat.ravel()[None, :], glon.ravel()[None, :], col(storms.lat),
                                  col(storms.lon), col(storms.dp), col(p["rmax"]), col(p["b"]), col(ut), col(vt))
        shape = psl.shape
        return u + du.reshape(shape), v + dv.reshape(shape), psl - deficit.reshape(shape)


# --------------------------------------------------------------------------- the resumable run


def state_path(output: str | os.PathLike) -> Path:
    """Where the run keeps its state: beside the store."""
    out = Path(output)
    return out.with_name(out.name + STATE_SUFFIX)


def _save_state(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_state(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        return json.loads(str(data["meta"])), arrays


def _frames_dataset(cfg: AtmosphereConfig, model: HeldSuarezModel, first: int, fields_, tracks) -> xr.Dataset:
    import cftime

    from climode.data.synthetic.hurricanes import _parse_start

    start = _parse_start(cfg.start)
    units = f"hours since {start.year:04d}-01-01 00:00:00"
    h0 = cftime.date2num(start, units, calendar="noleap")
    n = fields_[0].shape[0]
    times = cftime.num2date(h0 + (first + np.arange(n)) * cfg.output_hours, units, calendar="noleap")
    data_vars = {}
    described = (
        ("U850", "m/s", "Zonal wind at 850 hPa", "eastward_wind"),
        ("V850", "m/s", "Meridional wind at 850 hPa", "northward_wind"),
        ("PSL", "Pa", "Sea level pressure (the model's surface pressure: no topography)",
         "air_pressure_at_mean_sea_level"),
    )
    for arr, (name, unit, long_name, std) in zip(fields_, described):
        data_vars[name] = xr.Variable(("time", "lat", "lon"), arr.astype(np.float32),
                                      {"units": unit, "long_name": long_name, "standard_name": std})
    track_attrs = {
        "cyclone_id": {"long_name": "tropical cyclone id in this slot (-1: empty slot)"},
        "cyclone_lat": {"units": "degrees_north", "long_name": "tropical cyclone centre latitude"},
        "cyclone_lon": {"units": "degrees_east", "long_name": "tropical cyclone centre longitude"},
        "cyclone_dp": {"units": "Pa", "long_name": "Holland pressure deficit of the tropical cyclone"},
    }
    for name in _TRACK_FIELDS:
        data_vars[name] = xr.Variable(("time", "cyclone_slot"), np.stack([t[name] for t in tracks]), track_attrs[name])
    ds = xr.Dataset(data_vars, coords={
        "time": ("time", times, {"standard_name": "time", "long_name": "time", "axis": "T"}),
        "lat": ("lat", model.lat, {"units": "degrees_north", "long_name": "latitude", "standard_name": "latitude",
                                   "axis": "Y"}),
        "lon": ("lon", model.lon, {"units": "degrees_east", "long_name": "longitude", "standard_name": "longitude",
                                   "axis": "X"}),
    })
    ds["time"].encoding.update({"units": units, "calendar": "noleap", "dtype": "float64", "_FillValue": None})
    for name in ("lat", "lon"):
        ds[name].encoding["_FillValue"] = None
    ds["cyclone_id"].encoding["_FillValue"] = None
    return ds


def _attributes(cfg: AtmosphereConfig) -> dict:
    import dinosaur

    from climode._version import __version__

    return {
        "title": "Physical synthetic world: Held-Suarez atmosphere with tropical cyclones (U850, V850, PSL)",
        "source": (f"dinosaur {getattr(dinosaur, '__version__', '')} dry primitive equations, {cfg.resolution} "
                   f"L{cfg.layers} sigma levels, {cfg.dt_minutes:g}-minute IMEX SIL3 steps, Held and Suarez (1994) "
                   "forcing; Holland (1980) vortices superposed (climode.data.synthetic.atmosphere)"),
        "institution": "climode",
        "Conventions": "CF-1.8",
        "comment": ("No topography: the surface pressure is the sea-level pressure, so PSL is the model's surface "
                    "pressure. U850 and V850 are interpolated from sigma levels to 850 hPa with "
                    "dinosaur.vertical_interpolation.interp_sigma_to_pressure and evaluated on a regular grid by "
                    "exact spectral interpolation. No land, moisture or seasons. Tropical cyclones are analytic "
                    "vortices steered by the model's 850 hPa wind; the dynamics never feel them."),
        "history": f"climode {__version__}: climode data synth atmosphere",
        "references": "Held and Suarez (1994) BAMS 75, 1825-1830; Holland (1980) MWR 108, 1212-1218; docs/data.md",
        "seed": int(cfg.seed),
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "spinup_days": float(cfg.spinup_days),
    }


def _truncate_store(store: Path, n_frames: int) -> None:
    """Cut every time-dimensioned array of a zarr store back to ``n_frames`` (a chunk half-appended when stopped)."""
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    for name, array in group.arrays():
        dims = array.attrs.get("_ARRAY_DIMENSIONS", [])
        if dims and dims[0] == "time" and array.shape[0] != n_frames:
            array.resize((n_frames, *array.shape[1:]))
    zarr.consolidate_metadata(str(store))


def generate_atmosphere(output: str | os.PathLike, config: AtmosphereConfig | None = None,
                        progress: bool = True) -> Path:
    """Run the physical world into the zarr store ``output``, resuming an interrupted run of the same config."""
    import zarr
    from tqdm.auto import tqdm

    cfg = config or AtmosphereConfig()
    store = Path(output)
    if store.suffix.lower() != ".zarr":
        raise ConfigError(f"cannot write {store}: the physical world is written to a zarr store (FILE.zarr), "
                          "which it extends chunk by chunk")
    state_file = state_path(store)
    # a longer run of the same world resumes too: everything but the length must match
    fingerprint = json.dumps({k: v for k, v in cfg.to_dict().items() if k != "days"}, sort_keys=True)
    model = model_for(cfg)
    tracker = CycloneTracker(cfg, model.lat, model.lon)
    if state_file.exists():
        meta, arrays = _load_state(state_file)
        if meta["fingerprint"] != fingerprint:
            raise ConfigError(f"{state_file} belongs to a run with other settings ({meta['config']}); resume with "
                              "the same settings, or remove the store and its state file to start again")
        state = model.state_from_arrays(arrays)
        storms = Cyclones.from_arrays(arrays)
        spun, written = float(meta["spun_days"]), int(meta["frames"])
        previous = (arrays["previous_u"], arrays["previous_v"]) if written else None
        log.info("resuming %s: %g spin-up days and %d frames done", store, spun, written)
        if written:
            _truncate_store(store, written)
        elif store.exists():
            raise DataError(f"{store} exists but its state file says nothing was written; remove both to start again")
    else:
        if store.exists():
            raise DataError(f"{store} already exists and has no state file to resume from; remove it or choose "
                            "another --output")
        state, storms, spun, written, previous = model.initial_state(), Cyclones.empty(), 0.0, 0, None

    def save() -> None:
        arrays = {**model.state_arrays(state), **storms.arrays()}
        if previous is not None:
            arrays["previous_u"], arrays["previous_v"] = previous
        _save_state(state_file, {"fingerprint": fingerprint, "config": cfg.to_dict(), "spun_days": spun,
                                 "frames": written}, arrays)

    total_days = cfg.spinup_days + cfg.n_frames * cfg.output_hours / 24.0
    done_days = spun + written * cfg.output_hours / 24.0
    bar = tqdm(total=round(total_days, 6), initial=round(done_days, 6), unit="day", desc="held-suarez",
               disable=not progress)
    chunk = cfg.chunk_frames
    try:
        while spun < cfg.spinup_days - 1e-9:
            frames = min(chunk, int(round((cfg.spinup_days - spun) * 24.0 / cfg.output_hours)))
            state, _ = model.advance(state, frames)
            spun += frames * cfg.output_hours / 24.0
            save()
            bar.update(frames * cfg.output_hours / 24.0)
        while written < cfg.n_frames:
            frames = min(chunk, cfg.n_frames - written)
            state_next, (u, v, psl) = model.advance(state, frames)
            out_u, out_v, out_p, tracks = [], [], [], []
            for k in range(frames):
                storms, row = tracker.step(storms, written + k, previous, (u[k], v[k]))
                previous = (u[k], v[k])
                fu, fv, fp = tracker.superpose(storms, u[k], v[k], psl[k])
                out_u.append(fu), out_v.append(fv), out_p.append(fp), tracks.append(row)
            ds = _frames_dataset(cfg, model, written, (np.stack(out_u), np.stack(out_v), np.stack(out_p)), tracks)
            ds.attrs.update(_attributes(cfg))  # every chunk: appending rewrites the store's attributes
            with zarr.config.set({"default_zarr_format": 2}):
                if written == 0:
                    encoding = {name: {"chunks": (chunk, *ds[name].shape[1:])} for name in ds.data_vars}
                    ds.to_zarr(store, mode="w", encoding=encoding, consolidated=True)
                else:
                    ds.to_zarr(store, append_dim="time", consolidated=True)
            state = state_next
            written += frames
            save()
            bar.update(frames * cfg.output_hours / 24.0)
    finally:
        bar.close()
    log.info("wrote %s: %d frames of %s after %g spin-up days", store, written, cfg.resolution, cfg.spinup_days)
    return store


def generate(seed: int = 0, output: str | os.PathLike | None = None, progress: bool = False, **params) -> xr.Dataset:
    """The physical world as a Dataset (written to ``output``, or to a temporary store that is read back)."""
    import tempfile

    allowed = {f.name for f in fields(AtmosphereConfig)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"unknown physical-world parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    cfg = AtmosphereConfig(seed=seed, **params)
    if output is not None:
        return xr.open_zarr(generate_atmosphere(output, cfg, progress))
    with tempfile.TemporaryDirectory() as tmp:
        return xr.open_zarr(generate_atmosphere(Path(tmp) / "world.zarr", cfg, progress)).load()


__all__ = ["AtmosphereConfig", "HeldSuarezModel", "CycloneTracker", "generate", "generate_atmosphere",
           "require_physics", "state_path"]
