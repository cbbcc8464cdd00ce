"""Open gridded fields in climode's canonical form.

:func:`open_dataset` reads a path, a glob, a list of paths, a zarr store, an
open :class:`xarray.Dataset` or a catalog name and returns ``U850``, ``V850``
and ``PSL`` (or the variables asked for) on dims ``(time, lat, lon)``, latitude
ascending, longitude in ``[0, 360)`` ascending, units m/s and Pa, with CF
attributes and the source name in ``original_name``.  Files are opened lazily
(dask) one by one, each is brought to the canonical form, and the pieces are
combined along time (the same thing :func:`xarray.open_mfdataset` does, but
with every error naming its file).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from climode.data import lexicon
from climode.data.mapping import units_hint, variable_hint
from climode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Attribute of an opened dataset naming its source's longitude convention ("0..360" or "-180..180").
LON_CONVENTION_ATTR = "climode_lon_convention"
#: Where a time axis without units counts from a reference time, its unit by default.
DEFAULT_OFFSET_UNITS = "hours"


@dataclass(frozen=True)
class OpenSpec:
    """What to extract from a source: canonical name -> source name (None: use the lexicon)."""

    variables: Mapping[str, str | None]
    units: Mapping[str, str] = field(default_factory=dict)  # overrides the files
    fallback_units: Mapping[str, str] = field(default_factory=dict)  # only where files have none
    calendar: str | None = None  # only where files do not say
    keep_extra: bool = False  # keep non-grid variables (truth tracks of synthetic data)


def open_dataset(
    source: Any,
    variables: Sequence[str] | Mapping[str, str] | str | None = None,
    *,
    split: str | None = None,
    seed: int | None = None,
    chunks: Any = "auto",
    units: Mapping[str, str] | None = None,
    min_times: int = 2,
    validate: bool = True,
    catalog: Any = None,
) -> xr.Dataset:
    """Open ``source`` as a canonical climode dataset.

    ``source``: a NetCDF path, a glob, a list of paths, a zarr store, an
    ``xarray.Dataset``, or a name of the data catalog.  ``variables``: canonical
    names (default ``U850, V850, PSL``) or a mapping canonical -> source name.
    ``split``/``seed`` pick a realisation of a synthetic catalog entry.
    ``chunks`` is passed to xarray (``None`` reads eagerly).  ``units`` gives the
    units of variables whose files have none (or wrong ones).  ``min_times``: the
    fewest time steps accepted.  ``validate`` reads the data once, chunk by chunk,
    to reject variables that are missing at every time step (pass False to skip
    that pass on very large archives).  ``catalog``: a catalog path or object.
    """
    from climode.data.catalog import Catalog, load_catalog

    wanted = _wanted_variables(variables)
    user_units = dict(units or {})
    if (split is not None or seed is not None) and not (isinstance(source, str) and is_catalog_name(source)):
        raise ConfigError("split= and seed= apply only to synthetic datasets of the data catalog")

    if isinstance(source, xr.Dataset):
        spec = OpenSpec(variables=wanted, units=user_units)
        ds = _canonical_file(source, spec, "<xarray.Dataset>")
        label = "<xarray.Dataset>"
    elif isinstance(source, str) and is_catalog_name(source):
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        if source not in cat:
            raise DataError(
                f"{source!r} is neither a file nor a dataset of the catalog {cat.path}; known: {', '.join(cat.names)}"
            )
        entry = cat.get(source)
        label = f"catalog entry {entry.name!r}"
        mapping = {k: v for k, v in wanted.items()}
        for name in mapping:
            if mapping[name] is None and name in entry.variables:
                mapping[name] = entry.variables[name]
        if mapping.get("PSL") is not None and mapping["PSL"] == entry.variables.get("PSL"):
            _refuse_surface_pressure(xr.Dataset(), mapping["PSL"], f"catalog {cat.path}, entry {entry.name!r}")
        spec = OpenSpec(
            variables=mapping,
            units=user_units,
            fallback_units=dict(entry.units),
            calendar=entry.calendar,
            keep_extra=entry.driver == "synthetic",
        )
        if entry.driver == "video":
            raise DataError(
                f"{entry.name!r} is a video dataset: video datasets are opened with climode.data.video, not open_dataset"
            )
        if entry.driver == "synthetic":
            if seed is None and split is None and entry.splits:
                log.info("no split or seed given for %s: using seed 0", entry.name)
            chosen = entry.seed_for(split, seed)
            generate = entry.load_generator()
            log.info("generating %s with seed %d", entry.name, chosen)
            raw = generate(seed=chosen, **dict(entry.args))
            if not isinstance(raw, xr.Dataset):
                raise DataError(
                    f"generator {entry.generator} of {entry.name!r} returned {type(raw).__name__}, not an xarray.Dataset"
                )
            ds = _canonical_file(raw, spec, f"{entry.name} (seed {chosen})")
            ds.attrs["climode_seed"] = chosen
            if split is not None:
                ds.attrs["climode_split"] = split
        else:
            paths = _entry_files(entry, label)
            ds = _open_files(paths, spec, chunks=chunks, zarr=entry.driver == "zarr")
    else:
        label = _label(source)
        paths = _expand_sources(source, label)
        spec = OpenSpec(variables=wanted, units=user_units)
        ds = _open_files(paths, spec, chunks=chunks, zarr=None)

    ds = _finish(ds, wanted, label, min_times)
    ds.attrs["climode_source"] = label
    if validate:
        from climode.data.validate import check_values

        check_values(ds, label)
    return ds


# ------------------------------------------------------------------ sources


def _wanted_variables(variables) -> dict[str, str | None]:
    if variables is None:
        return {name: None for name in lexicon.CANONICAL}
    if isinstance(variables, str):
        variables = [variables]
    if isinstance(variables, Mapping):
        out = {str(k): (None if v is None else str(v)) for k, v in variables.items()}
    else:
        out = {str(v): None for v in variables}
    if not out:
        raise ConfigError("variables= is empty: ask for at least one of " + ", ".join(lexicon.CANONICAL))
    for name in out:
        lexicon.get(name)
    return out


def is_catalog_name(text: str) -> bool:
    """Whether ``text`` names a catalog entry rather than a file: a bare name, no such path, no file suffix."""
    return (
        bool(re.fullmatch(r"[A-Za-z0-9_.-]+", text))
        and not os.path.exists(text)
        and not text.endswith((".nc", ".nc4", ".cdf", ".zarr", ".netcdf", ".h5"))
    )


def _label(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    items = list(source)
    return f"{items[0]} (+{len(items) - 1} more)" if len(items) > 1 else str(items[0])


def _expand_sources(source, label: str) -> list[str]:
    """Paths and globs -> existing files or stores, in order; errors name what is missing."""
    if isinstance(source, (str, os.PathLike)):
        items = [os.fspath(source)]
    else:
        try:
            items = [os.fspath(s) for s in source]
        except TypeError:
            raise DataError(
                f"cannot open {source!r}: give a path, a glob, a list of paths, a zarr store, "
                "an xarray.Dataset or a catalog name"
            ) from None
    if not items:
        raise DataError("no paths given to open")
    out: list[str] = []
    for item in items:
        item = os.path.expanduser(item)
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise DataError(f"no files match {item} ({label}): check the path or the environment variable")
            out.extend(matches)
        elif os.path.exists(item):
            out.append(item)
        else:
            raise DataError(f"file not found: {item}")
    return out


def _entry_files(entry, label: str) -> list[str]:
    """The files of a netcdf/zarr catalog entry; if they are absent, the error says how to obtain them."""
    try:
        return _expand_sources(entry.expanded_paths(), label)
    except DataError as exc:
        how = entry.obtain_text()
        raise DataError(f"{exc}; to obtain {entry.name}: {how}" if how else str(exc)) from None


def resolve_files(source: Any, catalog: Any = None) -> list[str]:
    """The files or stores :func:`open_dataset` would read for ``source`` (none for in-memory or synthetic data)."""
    from climode.data.catalog import Catalog, load_catalog

    if isinstance(source, xr.Dataset):
        return []
    if isinstance(source, str) and is_catalog_name(source):
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        entry = cat.get(source)
        if entry.driver in ("synthetic", "video"):
            return []
        return _entry_files(entry, f"catalog entry {entry.name!r}")
    return _expand_sources(source, _label(source))


def _is_zarr(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".zarr" or (
        p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zgroup", ".zmetadata"))
    )


def _open_raw(path: str, chunks, zarr: bool | None) -> xr.Dataset:
    """Open one file lazily, times undecoded; a one-line DataError if it cannot be read."""
    use_zarr = _is_zarr(path) if zarr is None else zarr
    kwargs: dict[str, Any] = dict(decode_times=False, decode_timedelta=False)
    if use_zarr:
        kwargs["engine"] = "zarr"
    try:
        if isinstance(chunks, Mapping) and set(chunks) & {"time", "lat", "lon"}:
            with xr.open_dataset(path, chunks=None, **kwargs) as peek:  # metadata only
                chunks = _file_chunks(peek, chunks)
        return xr.open_dataset(path, chunks=chunks, **kwargs)
    except Exception:  # backends raise many types for a bad file: say what the file is instead
        raise DataError(f"cannot read {path}: {describe_unreadable(path, use_zarr)}; {READABLE}") from None


#: What :func:`open_dataset` reads, for error messages.
READABLE = "climode reads NetCDF-3 and NetCDF-4/HDF5 files (.nc) and zarr stores (.zarr)"
_MAGIC = ((b"CDF\x01", "a NetCDF-3 file"), (b"CDF\x02", "a NetCDF-3 (64-bit offset) file"),
          (b"CDF\x05", "a NetCDF-3 (64-bit data) file"), (b"\x89HDF\r\n\x1a\n", "a NetCDF-4/HDF5 file"),
          (b"GRIB", "a GRIB file"), (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip archive"))


def describe_unreadable(path: str, zarr: bool = False) -> str:
    """What the file or directory at ``path`` is, in a few words (it could not be opened)."""
    p = Path(path)
    if p.is_dir():
        return ("a directory without zarr metadata (.zgroup/zarr.json)" if zarr
                else "a directory, not a file: give the files in it (e.g. 'DIR/*.nc') or a zarr store")
    try:
        with open(p, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or type(exc).__name__})"
    if not head:
        return "an empty file (0 bytes)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"{what} that the reader rejects (truncated or corrupt?)" if "NetCDF" in what else what
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not NetCDF or HDF5 ({p.stat().st_size} bytes of another binary format)"
    return "a text file, not NetCDF"


def _file_chunks(raw: xr.Dataset, chunks: Mapping[str, Any]) -> dict[str, Any]:
    """``chunks`` keyed by canonical dims (time, lat, lon) -> keyed by this file's own dims.

    A size smaller than the file's stored chunks (zarr, chunked NetCDF-4) is
    rounded up to a multiple of them: a stored chunk is read whole anyway.
    """
    own: dict[str, str] = {}
    tname, _ = _find_time(raw)
    if tname is not None and raw[tname].ndim == 1:
        own["time"] = str(raw[tname].dims[0])
    for dim, names, units, standard in (("lat", lexicon.LAT_NAMES, lexicon.LAT_UNITS, "latitude"),
                                        ("lon", lexicon.LON_NAMES, lexicon.LON_UNITS, "longitude")):
        name = _find_coord(raw, names, units, standard)
        if name is not None and raw[name].ndim == 1:
            own[dim] = str(raw[name].dims[0])
    out: dict[str, Any] = {}
    for key, size in chunks.items():
        dim = own.get(str(key), str(key))
        stored = _stored_chunk(raw, dim)
        if isinstance(size, int) and size > 0 and stored and size % stored:
            size = stored * -(-size // stored)
        out[dim] = size
    return out


def _stored_chunk(raw: xr.Dataset, dim: str) -> int | None:
    """The on-disk chunk length along ``dim`` of the file's data variables, if they are chunked."""
    for var in raw.data_vars.values():
        preferred = var.encoding.get("preferred_chunks") or {}
        if dim in preferred and var.encoding.get("contiguous") is not True:
            return int(preferred[dim])
    return None


def _open_files(paths: list[str], spec: OpenSpec, *, chunks, zarr: bool | None) -> xr.Dataset:
    pieces: list[xr.Dataset] = []
    found: dict[str, list[str]] = {}
    for path in paths:
        raw = _open_raw(path, chunks, zarr)
        found[path] = [str(v) for v in raw.data_vars]
        piece = _canonical_file(raw, spec, path, partial=len(paths) > 1)
        if piece.data_vars:
            pieces.append((path, piece))
    missing = [n for n in spec.variables if not any(n in p.data_vars for _, p in pieces)]
    if missing:
        listing = "; ".join(f"{Path(p).name}: {', '.join(v) or 'nothing'}" for p, v in found.items())
        raise DataError(
            f"{_missing_text(missing)} in {len(paths)} files ({listing}); "
            f"map them with {variable_hint(missing[0], 'name')}"
        )
    return _combine([p for _, p in pieces], [path for path, _ in pieces])


def _missing_text(missing: list[str]) -> str:
    return f"no {', '.join(missing)} found"


# ------------------------------------------------------- one file -> canonical


def _canonical_file(
    raw: xr.Dataset, spec: OpenSpec, label: str, *, partial: bool = False
) -> xr.Dataset:
    """Bring one source dataset to canonical names, dims and units.

    With ``partial`` a file may hold only some of the variables (multi-file sets);
    otherwise a missing variable is an error listing what was found.
    """
    ds = _normalise_grid(raw, label)
    ds, bounds = _normalise_time(ds, label, spec.calendar)
    out: dict[str, xr.DataArray] = {}
    missing: list[str] = []
    for name, source_name in spec.variables.items():
        da = _extract(ds, name, source_name, label, spec, required=not partial)
        if da is None:
            missing.append(name)
        else:
            out[name] = da
    if missing and not partial:
        raise DataError(_missing_message(ds, missing, label))
    result = xr.Dataset(out)
    if spec.keep_extra:
        for v in ds.data_vars:
            if v not in spec.variables and "lat" not in ds[v].dims and "lon" not in ds[v].dims:
                result[v] = ds[v]
    result = _apply_time_bounds(result, list(out), bounds, label)
    result.attrs.update(
        {k: v for k, v in raw.attrs.items() if isinstance(k, str) and not k.startswith("_")}
    )
    return result


def _missing_message(ds: xr.Dataset, missing: list[str], label: str) -> str:
    names = [str(v) for v in ds.data_vars]
    msg = f"{label}: {_missing_text(missing)}; found {', '.join(names) if names else 'no data variables'}"
    surface = [v for v in names if v in lexicon.SURFACE_PRESSURE_NAMES
               or ds[v].attrs.get("standard_name") == "surface_air_pressure"]
    if "PSL" in missing and surface:
        msg += f" ({', '.join(surface)} is surface pressure, not sea-level pressure, and is never used as PSL)"
    loose = [
        v for v in names
        if any(v in lexicon.VARIABLES[m].on_levels for m in missing if m in lexicon.VARIABLES)
    ]
    if loose:
        msg += f" ({', '.join(loose)} has no pressure level: map it explicitly, e.g. {variable_hint(missing[0], loose[0])}, if it is the right field)"
    else:
        msg += f"; map names with {variable_hint(missing[0])}"
    return msg


def _find_coord(ds: xr.Dataset, names: Sequence[str], units: Sequence[str], standard_name: str):
    for name in names:
        if name in ds.variables:
            return name
    for name, var in ds.variables.items():
        attrs = var.attrs
        if attrs.get("standard_name") == standard_name:
            return name
        if lexicon.normalise_units(attrs.get("units", "")) in units and name not in ds.data_vars:
            return name
    return None


def _normalise_grid(ds: xr.Dataset, label: str) -> xr.Dataset:
    """Rename latitude/longitude to ``lat``/``lon`` dims; reject curvilinear and unstructured grids."""
    lat = _find_coord(ds, lexicon.LAT_NAMES, lexicon.LAT_UNITS, "latitude")
    lon = _find_coord(ds, lexicon.LON_NAMES, lexicon.LON_UNITS, "longitude")
    if lat is None or lon is None:
        what = "latitude" if lat is None else "longitude"
        raise DataError(
            f"{label}: no {what} coordinate found (looked for {', '.join(lexicon.LAT_NAMES if lat is None else lexicon.LON_NAMES)} "
            f"or units degrees_north/east); variables are {', '.join(map(str, ds.variables))}"
        )
    la, lo = ds[lat], ds[lon]
    if la.ndim != 1 or lo.ndim != 1:
        raise DataError(
            f"{label}: curvilinear grid (2-D {lat!r} on dims {', '.join(map(str, la.dims))}); "
            "regrid to a regular lat/lon grid first (e.g. cdo remapbil or xESMF)"
        )
    if la.dims == lo.dims:
        raise DataError(
            f"{label}: unstructured grid ({lat!r} and {lon!r} share dim {la.dims[0]!r}); "
            "regrid to a regular lat/lon grid first (e.g. cdo remapbil or ncremap)"
        )
    renames: dict[str, str] = {}
    for name, new in ((lat, "lat"), (lon, "lon")):
        dim = ds[name].dims[0]
        if dim != name:  # e.g. lat(y): make lat the dimension coordinate
            ds = ds.swap_dims({dim: name})
        if name != new:
            renames[name] = new
    for other in ("lat", "lon"):
        if other in ds.variables and other not in (lat, lon) and other not in renames:
            ds = ds.drop_vars(other)
    if renames:
        ds = ds.rename(renames)
    return ds


# ------------------------------------------------------------------- time


def _find_time(ds: xr.Dataset) -> tuple[str | None, bool]:
    """The time coordinate's name, and whether it counts offsets from a reference time."""
    if "valid_time" in ds.variables and ds["valid_time"].ndim == 1:
        return "valid_time", False  # ERA5/cfgrib: 'time' may be the initialisation time
    for name in lexicon.TIME_NAMES:
        if name in ds.variables:
            return name, False
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == "time" or var.attrs.get("axis") == "T":
            return str(name), False
    for name in lexicon.OFFSET_TIME_NAMES:
        if name in ds.variables:
            return name, True
    return None, False


def _reference_time(ds: xr.Dataset, tname: str, label: str) -> str:
    """An ISO reference time from a reftime variable or attribute."""
    text = None
    for name in lexicon.REFTIME_NAMES:
        if name in ds.variables:
            value = ds[name].values
            value = value.item() if getattr(value, "ndim", 0) == 0 else b"".join(np.ravel(value))
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            break
        for attrs in (ds[tname].attrs, ds.attrs):
            if name in attrs:
                text = str(attrs[name])
                break
        if text is not None:
            break
    if text is None:
        raise DataError(
            f"{label}: time axis {tname!r} counts offsets but no reference time found "
            f"(looked for a {'/'.join(lexicon.REFTIME_NAMES)} variable or attribute)"
        )
    match = re.search(r"(\d{4})\D+(\d{1,2})\D+(\d{1,2})(?:\D+(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?)?", text)
    if not match:
        raise DataError(f"{label}: cannot read reference time {text.strip()!r} of {tname!r}")
    y, m, d, hh, mm, ss = (int(g) if g else 0 for g in match.groups())
    return f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"


def _decode(values, units: str, calendar: str, label: str, what: str):
    """Decode numeric CF times with xarray (cftime for non-standard calendars)."""
    tmp = xr.Dataset(
        coords={"t": (("t",) + tuple(f"d{i}" for i in range(np.ndim(values) - 1)), np.asarray(values),
                      {"units": units, "calendar": calendar})}
    )
    try:
        return xr.decode_cf(tmp)["t"].values
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{label}: cannot decode {what} with units {units!r}, calendar {calendar!r} ({first})") from None


def _normalise_time(ds: xr.Dataset, label: str, calendar_hint: str | None) -> tuple[xr.Dataset, "TimeBounds | None"]:
    """Name the time dim ``time`` and decode it (calendars, offsets from a reftime); also return its bounds.

    Whether the bounds' midpoints replace the stamps depends on each variable's
    ``cell_methods`` (:func:`uses_bounds_midpoint`), decided once the variables are chosen.
    """
    tname, offsets = _find_time(ds)
    if tname is None:
        raise DataError(
            f"{label}: no time coordinate found (looked for {', '.join(lexicon.TIME_NAMES + lexicon.OFFSET_TIME_NAMES)}); "
            f"dims are {', '.join(map(str, ds.dims))}"
        )
    tvar = ds[tname]
    if tvar.ndim > 1:
        raise DataError(f"{label}: time coordinate {tname!r} has {tvar.ndim} dims; expected one")
    attrs = dict(tvar.attrs)
    calendar = str(attrs.get("calendar") or calendar_hint or "standard")
    units = attrs.get("units")
    values = tvar.values
    if np.issubdtype(values.dtype, np.number):
        if offsets or not (units and "since" in str(units)):
            unit = str(units).strip().lower() if units else DEFAULT_OFFSET_UNITS
            if unit not in ("days", "hours", "minutes", "seconds", "day", "hour", "minute", "second", "h", "hr"):
                raise DataError(
                    f"{label}: time axis {tname!r} has units {units!r}; expected 'UNIT since DATE' or hour offsets with a reftime"
                )
            unit = {"h": "hours", "hr": "hours"}.get(unit, unit if unit.endswith("s") else unit + "s")
            units = f"{unit} since {_reference_time(ds, tname, label)}"
        decoded = _decode(values, str(units), calendar, label, f"time {tname!r}")
    else:
        decoded = values
    bounds = _time_bounds(ds, attrs.get("bounds"), decoded, str(units), calendar, label)
    tdim = tvar.dims[0] if tvar.ndim == 1 else None
    drop = [v for v in ds.variables
            if v in (bounds.name if bounds else None, "time", *lexicon.REFTIME_NAMES) and v != tname]
    ds = ds.drop_vars(drop)
    new_attrs = {k: v for k, v in attrs.items() if k in ("long_name", "standard_name", "axis")}
    new_attrs.setdefault("standard_name", "time")
    if tdim is None:  # a scalar time: one step per file
        ds = ds.drop_vars(tname).expand_dims(time=np.atleast_1d(decoded))
        ds["time"].attrs.update(new_attrs)
        return ds, bounds
    if tdim != tname:
        ds = ds.swap_dims({tdim: tname})
    ds = ds.drop_vars(tname).rename({tname: "time"}) if tname != "time" else ds.drop_vars("time")
    ds = ds.assign_coords(time=("time", decoded, new_attrs))
    return ds, bounds


@dataclass(frozen=True)
class TimeBounds:
    """A file's time bounds: their name, midpoints, and whether time is stamped at their end (CAM history)."""

    name: str
    midpoints: np.ndarray
    end_stamped: bool


def _time_bounds(ds: xr.Dataset, bname, decoded, units: str, calendar: str, label: str) -> TimeBounds | None:
    """Decode the time bounds variable of ``ds`` (``bounds`` attribute or a usual name), if any."""
    if bname not in ds.variables:
        bname = next((b for b in lexicon.TIME_BOUNDS_NAMES if b in ds.variables), None)
    if bname is None or ds[bname].ndim != 2 or ds[bname].shape[-1] != 2 or np.ndim(decoded) != 1:
        return None
    bounds = ds[bname].values
    if np.issubdtype(bounds.dtype, np.number):
        b_units = ds[bname].attrs.get("units", units)
        b_cal = ds[bname].attrs.get("calendar", calendar)
        bounds = _decode(bounds, str(b_units), str(b_cal), label, f"time bounds {bname!r}")
    if bounds.shape[0] != np.size(decoded):
        raise DataError(f"{label}: {bname} has {bounds.shape[0]} rows but time has {np.size(decoded)} steps")
    lo, hi = bounds[:, 0], bounds[:, 1]
    return TimeBounds(name=str(bname), midpoints=lo + (hi - lo) / 2,
                      end_stamped=bool(np.all(np.asarray(decoded) == hi)))


#: CF cell_methods over time that describe the whole interval of the bounds (all but ``point``).
INTERVAL_METHODS = ("mean", "sum", "maximum", "minimum", "median", "mid_range", "mode",
                    "standard_deviation", "variance", "range", "maximum_absolute_value",
                    "minimum_absolute_value", "mean_absolute_value", "mean_of_upper_decile",
                    "sum_of_squares", "root_mean_square")


def time_method(cell_methods: Any) -> str | None:
    """The method a CF ``cell_methods`` string applies over time (``"mean"``, ``"point"``, ...), or None.

    ``"time: mean"``, ``"lat: lon: mean time: point"``, ``"area: mean time: mean (interval: 1 hour)"``.
    """
    if not cell_methods:
        return None
    text = re.sub(r"\([^)]*\)", " ", str(cell_methods))  # comments and (interval: ...) clauses
    for names, method in re.findall(r"((?:[A-Za-z_][\w]*\s*:\s*)+)([A-Za-z_]\w*)", text):
        if "time" in re.findall(r"([A-Za-z_]\w*)\s*:", names):
            return method
    return None


def uses_bounds_midpoint(cell_methods: Any, end_stamped: bool) -> bool:
    """Whether a field valid over a time interval is stamped at the middle of its bounds.

    ``time: point`` is instantaneous (the stamp stays); ``time: mean``, ``sum`` or
    another statistic over the interval is represented by its midpoint.  Without
    a time entry in ``cell_methods``, a file whose time equals the upper bounds
    (CAM history files, which stamp averages at the interval end) is taken as
    averaged; any other stamp is kept.
    """
    method = time_method(cell_methods)
    if method is None:
        return end_stamped
    return method != "point"


def _apply_time_bounds(result: xr.Dataset, sources: Sequence[str], bounds: TimeBounds | None,
                       label: str) -> xr.Dataset:
    """Move time to the bounds' midpoints when the extracted variables are interval fields."""
    if bounds is None or not sources or "time" not in result.dims:
        return result
    choice = {name: uses_bounds_midpoint(result[name].attrs.get("cell_methods"), bounds.end_stamped)
              for name in sources}
    if len(set(choice.values())) > 1:
        mid = [n for n, c in choice.items() if c]
        point = [n for n, c in choice.items() if not c]
        raise DataError(
            f"{label}: {', '.join(mid)} {'is' if len(mid) == 1 else 'are'} averaged over {bounds.name} but "
            f"{', '.join(point)} {'is' if len(point) == 1 else 'are'} instantaneous (cell_methods), so they are "
            "valid at different times; open them separately (variables=[...])"
        )
    if not any(choice.values()):
        return result
    attrs = dict(result["time"].attrs, comment=f"midpoint of {bounds.name}")
    log.debug("%s: time set to the midpoints of %s", label, bounds.name)
    return result.assign_coords(time=("time", bounds.midpoints, attrs))


# -------------------------------------------------------------- variables


def _extract(
    ds: xr.Dataset, name: str, source_name: str | None, label: str, spec: OpenSpec, *, required: bool
) -> xr.DataArray | None:
    """Find, reduce to one level, check dims of, and convert units of one canonical variable."""
    var = lexicon.get(name)
    if source_name is not None:
        if name == "PSL":
            _refuse_surface_pressure(ds, source_name, label)
        if source_name not in ds.data_vars:
            if not required:
                return None
            raise DataError(
                f"{label}: variable {source_name!r} (mapped to {name}) not found; found {lexicon.describe_found(ds)}"
            )
        on_levels = any(
            d not in ("time", "lat", "lon") and lexicon.vertical_kind(ds, d) for d in ds[source_name].dims
        )
    else:
        found = lexicon.candidates(ds, name)
        if not found:
            return None
        source_name, on_levels = found[0]
        if len(found) > 1:
            log.debug("%s: %s taken from %r (also found %s)", label, name, source_name, [f[0] for f in found[1:]])
    da = ds[source_name]
    if on_levels and var.level_pa is not None:
        da = _reduce_level(ds, da, var.level_pa, label)
    extra = [d for d in da.dims if d not in ("time", "lat", "lon")]
    for d in extra:
        if da.sizes[d] == 1:
            da = da.isel({d: 0}, drop=True)
    bad = [d for d in da.dims if d not in ("time", "lat", "lon")]
    if bad or set(da.dims) != {"time", "lat", "lon"}:
        raise DataError(
            f"{label}: variable {source_name!r} ({name}) has dims ({', '.join(map(str, da.dims))}); "
            "expected (time, lat, lon) or a pressure/hybrid level axis"
        )
    da = da.transpose("time", "lat", "lon")
    da = da.drop_vars([c for c in da.coords if c not in ("time", "lat", "lon")])
    return _convert_units(da, name, source_name, label, spec)


def _refuse_surface_pressure(ds: xr.Dataset, source_name: str, label: str) -> None:
    """A ConfigError if ``source_name``, asked for as PSL, is surface pressure (by name or standard_name)."""
    surface = {n.lower() for n in lexicon.SURFACE_PRESSURE_NAMES}
    standard = ds[source_name].attrs.get("standard_name") if source_name in ds.variables else None
    if source_name.lower() in surface or standard == "surface_air_pressure":
        raise ConfigError(
            f"{label}: PSL is mapped to {source_name!r}, which is surface pressure, not sea-level pressure; "
            f"map PSL to a sea-level pressure variable (PSL, psl, msl, slp) or reduce {source_name} to sea level "
            "first (e.g. NCL's pslec) and store it as PSL"
        )


def _convert_units(da: xr.DataArray, name: str, source_name: str, label: str, spec: OpenSpec) -> xr.DataArray:
    var = lexicon.get(name)
    file_units = da.attrs.get("units")
    if name in spec.units or source_name in spec.units:
        units = spec.units.get(name, spec.units.get(source_name))
        if file_units is not None and lexicon.conversion_factor(str(file_units), var.units) != lexicon.conversion_factor(units, var.units):
            log.warning("%s: %s units %r overridden by units=%r", label, source_name, file_units, units)
    elif file_units not in (None, ""):
        units = str(file_units)
    else:
        units = spec.fallback_units.get(name, spec.fallback_units.get(source_name))
    if units is None:
        raise DataError(
            f"{label}: variable {source_name!r} ({name}) has no units attribute; "
            f"give them with {units_hint(name, var.units)} (or the units the values are in, e.g. "
            f"{'hPa' if var.units == 'Pa' else 'knots'}; or in the catalog entry)"
        )
    factor = lexicon.conversion_factor(units, var.units)
    if factor is None:
        raise DataError(
            f"{label}: variable {source_name!r} ({name}) has units {units!r}, which cannot be converted to {var.units}; "
            f"known: {', '.join(lexicon.known_units(var.units)[:12])}, ..."
        )
    if da.dtype.kind not in "f" or da.dtype.itemsize < 4:  # float16 would overflow (1000 hPa = 1e5 Pa)
        da = da.astype(np.float32)
    attrs = {k: v for k, v in da.attrs.items() if k not in ("units", "standard_name", "long_name", "_FillValue", "missing_value", "scale_factor", "add_offset", "valid_range", "valid_min", "valid_max")}
    if factor != 1.0:
        da = da * np.asarray(factor, dtype=da.dtype)
        attrs["original_units"] = str(units)
    if da.attrs.get("long_name") and da.attrs.get("long_name") != var.long_name:
        attrs["original_long_name"] = str(da.attrs["long_name"])
    attrs.update(
        units=var.units,
        standard_name=var.standard_name,
        long_name=var.long_name,
        # a file written by climode keeps the name of the first source
        original_name=str(da.attrs.get("original_name", source_name) if source_name == name else source_name),
    )
    da = da.rename(name)
    da.attrs = attrs
    da.encoding = {}  # packing/fill settings of the source no longer fit the converted values
    return da


def _level_pa(ds: xr.Dataset, dim: str, label: str, source: str) -> np.ndarray:
    coord = ds[dim]
    values = np.asarray(coord.values, dtype=float)
    factor = lexicon.pressure_units_factor(coord.attrs, dim, np.atleast_1d(values))
    if factor is None:
        raise DataError(f"{label}: pressure axis {dim!r} of {source!r} has unknown units {coord.attrs.get('units')!r}")
    return values * factor


def _reduce_level(ds: xr.Dataset, da: xr.DataArray, level_pa: float, label: str) -> xr.DataArray:
    """Reduce ``da`` from its vertical axis (pressure or hybrid) to ``level_pa``."""
    name = str(da.name)
    vdims = [d for d in da.dims if d not in ("time", "lat", "lon") and lexicon.vertical_kind(ds, d)]
    if not vdims:  # scalar vertical coordinate: it must be the level asked for
        for cname, coord in da.coords.items():
            if coord.ndim == 0 and lexicon.vertical_kind(ds, cname) == "pressure":
                p = float(_level_pa(ds, cname, label, name))
                if not np.isclose(p, level_pa):
                    raise DataError(f"{label}: {name!r} is at {p / 100:g} hPa, not {level_pa / 100:g} hPa")
                return da.drop_vars(cname)
        return da
    if len(vdims) > 1:
        raise DataError(f"{label}: {name!r} has several vertical dims {vdims}")
    dim = vdims[0]
    kind = lexicon.vertical_kind(ds, dim)
    if kind == "pressure":
        return interp_pressure_levels(da, dim, _level_pa(ds, dim, label, name), level_pa, label=f"{label}: {name!r}")
    missing = [v for v in ("hyam", "hybm", "PS", "P0") if v not in ds.variables]
    if missing:
        raise DataError(
            f"{label}: {name!r} is on the hybrid level axis {dim!r} but {', '.join(missing)} "
            "is missing; hybrid levels need hyam, hybm, PS and P0 to interpolate to 850 hPa"
        )
    ps = ds["PS"]
    ps_factor = lexicon.conversion_factor(str(ps.attrs.get("units", "Pa")), "Pa")
    if ps_factor is None:
        raise DataError(f"{label}: PS has units {ps.attrs.get('units')!r}; expected Pa or hPa")
    p0 = float(ds["P0"].values)
    p0 *= lexicon.conversion_factor(str(ds["P0"].attrs.get("units", "Pa")), "Pa") or 1.0
    return interp_hybrid_levels(da, dim, ds["hyam"], ds["hybm"], ps * ps_factor, p0, level_pa)


def interp_pressure_levels(
    da: xr.DataArray, dim: str, levels_pa: Iterable[float], target_pa: float, *, label: str = ""
) -> xr.DataArray:
    """``da`` at ``target_pa``: the level itself if present, else linear in log-pressure between neighbours.

    Lazy for dask-backed arrays; a target outside the levels is an error (no extrapolation).
    """
    p = np.asarray(list(levels_pa), dtype=float)
    exact = np.flatnonzero(np.isclose(p, target_pa, rtol=0, atol=1e-3))
    if exact.size:
        return da.isel({dim: int(exact[0])}, drop=True)
    below = p[p < target_pa]
    above = p[p > target_pa]
    if not below.size or not above.size:
        raise DataError(
            f"{label}: pressure levels span {p.min() / 100:g}-{p.max() / 100:g} hPa and do not bracket "
            f"{target_pa / 100:g} hPa; climode does not extrapolate"
        )
    i_lo = int(np.flatnonzero(p == below.max())[0])
    i_hi = int(np.flatnonzero(p == above.min())[0])
    w = (np.log(target_pa) - np.log(p[i_lo])) / (np.log(p[i_hi]) - np.log(p[i_lo]))
    a = da.isel({dim: i_lo}, drop=True)
    b = da.isel({dim: i_hi}, drop=True)
    out = a + (b - a) * np.asarray(w, dtype=da.dtype if da.dtype.kind == "f" else float)
    out.attrs = dict(da.attrs)
    out.name = da.name
    log.debug("%s: interpolated to %g hPa between %g and %g hPa (weight %.4f)", label, target_pa / 100, p[i_lo] / 100, p[i_hi] / 100, w)
    return out


def interp_hybrid_levels(
    da: xr.DataArray, dim: str, hyam: xr.DataArray, hybm: xr.DataArray, ps: xr.DataArray, p0: float, target_pa: float
) -> xr.DataArray:
    """``da`` on hybrid sigma-pressure levels at ``target_pa``, per column, linear in log-pressure.

    ``p = hyam * p0 + hybm * ps`` at every column.  Lazy elementwise xarray
    arithmetic (no per-column loop); columns where ``target_pa`` lies below the
    lowest model level (under ground) or above the top are NaN.
    """
    hyam = hyam.rename({hyam.dims[0]: dim}) if hyam.dims[0] != dim else hyam
    hybm = hybm.rename({hybm.dims[0]: dim}) if hybm.dims[0] != dim else hybm
    hyam = hyam.drop_vars([c for c in hyam.coords])
    hybm = hybm.drop_vars([c for c in hybm.coords])
    da = da.drop_vars([c for c in da.coords if dim in da[c].dims])
    ps = ps.drop_vars([c for c in ps.coords if c not in ("time", "lat", "lon")])
    logp = np.log(hyam * p0 + hybm * ps)  # (dim, time, lat, lon)
    if "time" in logp.dims:
        logp = logp.transpose("time", dim, ...)
    n = da.sizes[dim]
    lo = slice(0, n - 1)
    hi = slice(1, n)
    lp_lo = logp.isel({dim: lo}).assign_coords({dim: np.arange(n - 1)})
    lp_hi = logp.isel({dim: hi}).assign_coords({dim: np.arange(n - 1)})
    v_lo = da.isel({dim: lo}).assign_coords({dim: np.arange(n - 1)})
    v_hi = da.isel({dim: hi}).assign_coords({dim: np.arange(n - 1)})
    # pressure may increase or decrease along the axis: order each pair
    lp_min = np.minimum(lp_lo, lp_hi)
    lp_max = np.maximum(lp_lo, lp_hi)
    target = float(np.log(target_pa))
    last = xr.DataArray(np.arange(n - 1) == n - 2, dims=[dim], coords={dim: np.arange(n - 1)})
    inside = (lp_min <= target) & ((target < lp_max) | (last & (target <= lp_max)))
    weight = (target - lp_lo) / (lp_hi - lp_lo)
    value = v_lo + (v_hi - v_lo) * weight
    out = value.where(inside).sum(dim, min_count=1)
    out = out.astype(da.dtype) if da.dtype.kind == "f" else out
    out.attrs = dict(da.attrs)
    out.name = da.name
    return out


# ---------------------------------------------------------------- combine


def _combine(pieces: list[xr.Dataset], paths: list[str]) -> xr.Dataset:
    """Concatenate files with the same variables along time, then merge the groups."""
    if len(pieces) == 1:
        return pieces[0]
    ref = pieces[0]
    for piece, path in zip(pieces[1:], paths[1:]):
        if piece.sizes.get("lat") != ref.sizes.get("lat") or piece.sizes.get("lon") != ref.sizes.get("lon") or not (
            np.allclose(piece["lat"].values, ref["lat"].values) and np.allclose(piece["lon"].values, ref["lon"].values)
        ):
            raise DataError(
                f"{path}: its lat/lon grid ({piece.sizes.get('lat')} x {piece.sizes.get('lon')}) differs from "
                f"{paths[0]} ({ref.sizes.get('lat')} x {ref.sizes.get('lon')}); regrid the files to one grid"
            )
    groups: dict[tuple[str, ...], list[xr.Dataset]] = {}
    for piece in pieces:
        piece = piece.assign_coords(lat=ref["lat"].values, lon=ref["lon"].values)
        groups.setdefault(tuple(sorted(map(str, piece.data_vars))), []).append(piece)
    combined = []
    for group in groups.values():
        if len(group) == 1:
            combined.append(group[0])
            continue
        try:
            combined.append(
                xr.concat(group, dim="time", data_vars="minimal", coords="minimal", compat="override",
                          join="override", combine_attrs="drop_conflicts")
            )
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DataError(f"cannot concatenate {len(group)} files along time ({paths[0]}, ...): {first}") from None
    if len(combined) == 1:
        return combined[0]
    # different variables in different files: sort and de-duplicate each before aligning
    combined = [_sort_dedupe(c, "files") for c in combined]
    try:
        return xr.merge(combined, join="outer", compat="override", combine_attrs="drop_conflicts")
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot combine {len(paths)} files ({paths[0]}, ...): {first}") from None


# ----------------------------------------------------------------- finish


def _finish(ds: xr.Dataset, wanted: Mapping[str, str | None], label: str, min_times: int) -> xr.Dataset:
    """Sort time/lat/lon, de-duplicate time, wrap longitudes to [0, 360), check the number of steps."""
    ds = _sort_dedupe(ds, label)
    lon = np.asarray(ds["lon"].values, dtype=float)
    wrapped = np.mod(lon, 360.0)
    # the source's longitude convention: forecasts are written back in it
    ds.attrs[LON_CONVENTION_ATTR] = "-180..180" if lon.size and float(np.min(lon)) < 0 else "0..360"
    ds = ds.assign_coords(lon=wrapped, lat=np.asarray(ds["lat"].values, dtype=float))
    if np.unique(wrapped).size != wrapped.size:
        raise DataError(f"{label}: longitudes repeat after wrapping to 0..360 (e.g. both -180 and 180); drop the duplicate column")
    if np.unique(ds["lat"].values).size != ds.sizes["lat"]:
        raise DataError(f"{label}: latitudes repeat")
    ds = ds.sortby(["lat", "lon"])
    ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"}
    ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"}
    if ds.sizes.get("time", 0) < min_times:
        raise DataError(
            f"{label}: {ds.sizes.get('time', 0)} time step(s), but at least {min_times} are needed for a sequence"
        )
    order = [n for n in wanted] + [v for v in ds.data_vars if v not in wanted]
    return ds[order]


def _sort_dedupe(ds: xr.Dataset, label: str) -> xr.Dataset:
    """Sort by time; drop repeated steps with identical data, reject repeated steps whose data differ."""
    times = ds["time"].values
    order = np.argsort(times, kind="stable")
    if not np.array_equal(order, np.arange(times.size)):
        log.info("%s: time steps were out of order; sorted", label)
        ds = ds.isel(time=order)
        times = times[order]
    if times.size < 2:
        return ds
    same = times[1:] == times[:-1]
    if not np.any(same):
        return ds
    keep = np.ones(times.size, dtype=bool)
    for i in np.flatnonzero(same) + 1:
        j = i - 1
        while not keep[j]:
            j -= 1
        for v in ds.data_vars:
            if "time" not in ds[v].dims:
                continue
            a = np.asarray(ds[v].isel(time=j).values)
            b = np.asarray(ds[v].isel(time=i).values)
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                raise DataError(
                    f"{label}: time {times[i]} appears twice with different {v} data; remove one of the duplicates"
                )
        keep[i] = False
    log.info("%s: dropped %d duplicated time step(s)", label, int((~keep).sum()))
    return ds.isel(time=np.flatnonzero(keep))
