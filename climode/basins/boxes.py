"""Basin boxes: IBTrACS basins, aliases, user boxes and seam-aware subsetting.

Conventions (see ``docs/basins.md``):

- A :class:`Region` stores longitudes in degrees east, ``0 <= lon_min < 360``
  and ``0 < lon_max <= 360``.  When ``lon_min > lon_max`` the box crosses the
  0/360 seam (``region.wraps``).  Both bounds are inclusive, like
  ``xarray``'s label slices.
- :func:`subset` of a wrapping box returns one contiguous domain whose
  longitude coordinate keeps increasing past 360 (``lon=350:20`` gives
  ``350 .. 359, 360 .. 380``), so the coordinate stays monotonic.  Map it back
  with :func:`to_0_360`.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import xarray as xr

from climode.errors import ConfigError, DataError
from climode.grid import is_global_lon

log = logging.getLogger(__name__)

BOX_SYNTAX = "lat=MIN:MAX,lon=MIN:MAX (e.g. lat=5:60,lon=255:359 or lon=-105:-1; lon=350:20 crosses 0/360)"

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")

XrObj = TypeVar("XrObj", xr.DataArray, xr.Dataset)


@dataclass(frozen=True)
class Region:
    """A lat/lon box; longitudes are normalised to 0..360 on creation."""

    name: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    description: str = ""

    def __post_init__(self) -> None:
        lat_min, lat_max = _check_lat(self.lat_min, self.lat_max, self.name)
        lon_min, lon_max = _normalise_lon(self.lon_min, self.lon_max, self.name)
        object.__setattr__(self, "lat_min", lat_min)
        object.__setattr__(self, "lat_max", lat_max)
        object.__setattr__(self, "lon_min", lon_min)
        object.__setattr__(self, "lon_max", lon_max)

    @property
    def wraps(self) -> bool:
        """True if the box crosses the 0/360 seam."""
        return self.lon_min > self.lon_max

    @property
    def lon_max_unwrapped(self) -> float:
        """Eastern bound, plus 360 if the box wraps (so it exceeds ``lon_min``)."""
        return self.lon_max + 360.0 if self.wraps else self.lon_max

    @property
    def lon_span(self) -> float:
        """Longitudinal width in degrees."""
        return self.lon_max_unwrapped - self.lon_min

    @property
    def lat_span(self) -> float:
        """Latitudinal height in degrees."""
        return self.lat_max - self.lat_min

    @property
    def spec(self) -> str:
        """The box in user syntax; ``resolve_region(r.spec)`` gives the same box."""
        return f"lat={_fmt(self.lat_min)}:{_fmt(self.lat_max)},lon={_fmt(self.lon_min)}:{_fmt(self.lon_max)}"

    def contains(self, lat, lon) -> np.ndarray:
        """Whether points (any longitude convention) lie inside the closed box."""
        lat = np.asarray(lat, dtype=float)
        v = np.mod(np.asarray(lon, dtype=float), 360.0)
        in_lat = (lat >= self.lat_min) & (lat <= self.lat_max)
        if self.lon_span >= 360.0:
            in_lon = np.ones_like(v, dtype=bool)
        elif self.wraps:
            in_lon = (v >= self.lon_min) | (v <= self.lon_max)
        else:
            # lon_max == 360 must also accept v == 0 (the same meridian)
            in_lon = ((v >= self.lon_min) & (v <= self.lon_max)) | (
                (self.lon_max == 360.0) & (v == 0.0)
            )
        return in_lat & in_lon

    def __str__(self) -> str:
        return f"{self.name} ({self.spec})"


def _fmt(x: float) -> str:
    """Short, and exact: ``resolve_region(region.spec)`` gives back the same numbers."""
    return np.format_float_positional(float(x), trim="-")  # shortest exact digits, never an exponent


def _check_lat(lo, hi, name: str) -> tuple[float, float]:
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ConfigError(f"region {name!r}: latitudes must be numbers, got {lo!r}:{hi!r}; use {BOX_SYNTAX}") from None
    if not (-90.0 <= lo <= 90.0 and -90.0 <= hi <= 90.0):
        raise ConfigError(f"region {name!r}: latitude {_fmt(lo)}:{_fmt(hi)} is outside -90..90; use {BOX_SYNTAX}")
    if not lo < hi:
        raise ConfigError(f"region {name!r}: latitude min {_fmt(lo)} must be below max {_fmt(hi)}; use {BOX_SYNTAX}")
    return lo, hi


def _normalise_lon(lo, hi, name: str) -> tuple[float, float]:
    """Map a longitude range from -180..360 to 0 <= lo < 360, 0 < hi <= 360."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ConfigError(f"region {name!r}: longitudes must be numbers, got {lo!r}:{hi!r}; use {BOX_SYNTAX}") from None
    if not all(math.isfinite(v) and -360.0 <= v <= 720.0 for v in (lo, hi)):
        raise ConfigError(
            f"region {name!r}: longitude {_fmt(lo)}:{_fmt(hi)} must lie in -180..360 degrees east; use {BOX_SYNTAX}"
        )
    if hi - lo > 360.0:
        raise ConfigError(
            f"region {name!r}: longitude {_fmt(lo)}:{_fmt(hi)} is wider than 360 degrees; use {BOX_SYNTAX}"
        )
    if hi - lo == 360.0:  # the whole circle, e.g. lon=-180:180 or lon=0:360
        return 0.0, 360.0
    nlo, nhi = lo % 360.0, hi % 360.0
    if nhi == 0.0 and hi != lo:
        nhi = 360.0  # eastern bound on the 0/360 meridian
    if nlo == nhi:
        raise ConfigError(f"region {name!r}: longitude range {_fmt(lo)}:{_fmt(hi)} is empty; use {BOX_SYNTAX}")
    return nlo, nhi


# IBTrACS basin codes with the STORM boxes (Bloemendaal et al. 2020).
BASINS: dict[str, Region] = {
    r.name: r
    for r in (
        Region("NA", 5.0, 60.0, 255.0, 359.0, "North Atlantic"),
        Region("EP", 5.0, 60.0, 180.0, 285.0, "East Pacific"),
        Region("WP", 5.0, 60.0, 100.0, 180.0, "West Pacific"),
        Region("NI", 5.0, 60.0, 30.0, 100.0, "North Indian"),
        Region("SI", -60.0, -5.0, 10.0, 135.0, "South Indian"),
        Region("SP", -60.0, -5.0, 135.0, 240.0, "South Pacific"),
    )
}

#: Names users type, lower case, mapped to basin codes.
ALIASES: dict[str, str] = {
    "atlantic": "NA",
    "north_atlantic": "NA",
    "east_pacific": "EP",
    "eastern_pacific": "EP",
    "west_pacific": "WP",
    "western_pacific": "WP",
    "north_indian": "NI",
    "south_indian": "SI",
    "south_pacific": "SP",
}

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"^\s*(lat|lon)\s*=\s*({_NUM})\s*:\s*({_NUM})\s*$", re.IGNORECASE)


def list_regions() -> list[Region]:
    """The built-in basins, in IBTrACS order (NA, EP, WP, NI, SI, SP)."""
    return list(BASINS.values())


def _known_names() -> str:
    codes = ", ".join(BASINS)
    aliases = ", ".join(ALIASES)
    return f"basin codes {codes}; aliases {aliases}; or a box {BOX_SYNTAX}"


def parse_box(spec: str) -> Region:
    """Parse ``lat=MIN:MAX,lon=MIN:MAX``; a missing part means the full range."""
    bounds: dict[str, tuple[str, str]] = {}
    for part in spec.split(","):
        m = _PART.match(part)
        if m is None:
            raise ConfigError(f"cannot read box {spec!r}: part {part.strip()!r} is not KEY=MIN:MAX; use {BOX_SYNTAX}")
        key = m.group(1).lower()
        if key in bounds:
            raise ConfigError(f"cannot read box {spec!r}: {key} is given twice; use {BOX_SYNTAX}")
        bounds[key] = (m.group(2), m.group(3))
    lat = bounds.get("lat", ("-90", "90"))
    lon = bounds.get("lon", ("0", "360"))
    return Region("box", float(lat[0]), float(lat[1]), float(lon[0]), float(lon[1]), "user box")


def resolve_region(spec: str | Region | None) -> Region | None:
    """Turn a basin code, alias, box string or Region into a Region (None stays None)."""
    if spec is None or isinstance(spec, Region):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"region must be a string or Region, got {type(spec).__name__}; use {_known_names()}")
    text = spec.strip()
    if not text:
        raise ConfigError(f"empty region; use {_known_names()}")
    if "=" in text:
        return parse_box(text)
    key = re.sub(r"[\s\-]+", "_", text.lower())
    if key.upper() in BASINS:
        return BASINS[key.upper()]
    if key in ALIASES:
        return BASINS[ALIASES[key]]
    raise ConfigError(f"unknown region {spec!r}; use {_known_names()}")


def _find_dim(obj, names: tuple[str, ...], what: str) -> str:
    for n in names:
        if n in obj.dims and n in obj.coords:
            return n
    raise DataError(
        f"data has no {what} coordinate (looked for {', '.join(names)}); "
        "open it with climode.open_dataset to get canonical (time, lat, lon) data"
    )


def _half_step(values: np.ndarray) -> float:
    if values.size < 2:
        return 0.0
    return float(np.median(np.abs(np.diff(np.sort(values))))) / 2.0


def _lon_indices(lon: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``lon`` for the region, in east-going order, and their new values."""
    v = np.mod(lon, 360.0)
    if region.lon_span >= 360.0:
        order = np.argsort(v, kind="stable")
        return order, v[order]
    if region.wraps:
        west = np.flatnonzero(v >= region.lon_min)
        east = np.flatnonzero(v <= region.lon_max)
        west = west[np.argsort(v[west], kind="stable")]
        east = east[np.argsort(v[east], kind="stable")]
        return np.concatenate([west, east]), np.concatenate([v[west], v[east] + 360.0])
    idx = np.flatnonzero((v >= region.lon_min) & (v <= region.lon_max))
    # a bound at 360 also takes a point at 0 (the same meridian), placed last as 360
    extra = np.flatnonzero(v == 0.0) if region.lon_max == 360.0 and region.lon_min > 0.0 else np.array([], int)
    idx = idx[np.argsort(v[idx], kind="stable")]
    return np.concatenate([idx, extra]), np.concatenate([v[idx], v[extra] + 360.0])


def _lon_inside(lon: np.ndarray, region: Region) -> bool:
    """Whether the region lies within the data's longitude domain: no grid point of the
    data's spacing could lie in the region beyond the data (less than one step out)."""
    h = 2 * _half_step(lon)
    lo, hi = float(np.min(lon)) - h, float(np.max(lon)) + h
    if hi - lo >= 360.0 - 1e-6:
        return True
    if region.lon_span >= 360.0:
        return False
    for k in range(-2, 3):
        r0, r1 = region.lon_min + 360.0 * k, region.lon_max_unwrapped + 360.0 * k
        if lo + 1e-9 < r0 and r1 < hi - 1e-9:
            return True
    return False


def box_indices(lat: np.ndarray, lon: np.ndarray, region: Region | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column indices of a region's cells in a (lat, lon) grid, and the columns' longitudes.

    The columns run east as one contiguous arc (past 360 for a box across the seam),
    as :func:`subset` cuts them.  Raises DataError when the region has no grid point
    in the grid; a region partly outside is cut to the overlap with a warning.
    """
    resolved = resolve_region(region)
    assert resolved is not None
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    data_lat = f"lat {_fmt(lat.min())}..{_fmt(lat.max())}" if lat.size else "lat (empty)"
    data_lon = f"lon {_fmt(lon.min())}..{_fmt(lon.max())}" if lon.size else "lon (empty)"
    lat_idx = np.flatnonzero((lat >= resolved.lat_min) & (lat <= resolved.lat_max))
    lon_idx, lon_new = _lon_indices(lon, resolved) if lon.size else (np.array([], int), np.array([]))
    if lat_idx.size == 0 or lon_idx.size == 0:
        raise DataError(
            f"region {resolved} does not intersect the data ({data_lat}, {data_lon}); "
            "choose a region inside the data or load a larger domain"
        )
    h = 2 * _half_step(lat)  # less than one grid step beyond the data: nothing is missing
    lat_inside = lat.min() - h + 1e-9 < resolved.lat_min and resolved.lat_max < lat.max() + h - 1e-9
    if not (lat_inside and _lon_inside(lon, resolved)):
        log.warning(
            "region %s is only partly inside the data (%s, %s); cutting it to the overlap",
            resolved,
            data_lat,
            data_lon,
        )
    lon_idx, lon_new = _contiguous(lon, lon_idx, lon_new, f"region {resolved}", data_lon)
    return lat_idx, lon_idx, lon_new


def subset(obj: XrObj, region: Region | str | None) -> XrObj:
    """Cut a Dataset or DataArray to a region; wrapping boxes come back contiguous.

    Longitudes of the result increase monotonically (past 360 for a box across
    the seam; see :func:`to_0_360`).  Raises DataError when the region has no
    grid point in the data; a region partly outside is cut to the overlap with
    a warning.  ``None`` returns the data unchanged.
    """
    region = resolve_region(region)
    if region is None:
        return obj
    lat_dim = _find_dim(obj, LAT_NAMES, "latitude")
    lon_dim = _find_dim(obj, LON_NAMES, "longitude")
    lat = np.asarray(obj[lat_dim].values, dtype=float)
    lon = np.asarray(obj[lon_dim].values, dtype=float)

    lat_idx, lon_idx, lon_new = box_indices(lat, lon, region)
    out = obj.isel({lat_dim: lat_idx, lon_dim: lon_idx})
    # keep the user's values where nothing changed (canonical 0..360 data, no wrap)
    if not np.array_equal(lon_new, lon[lon_idx]):
        out = out.assign_coords({lon_dim: out[lon_dim].copy(data=lon_new.astype(out[lon_dim].dtype, copy=False))})
    out.attrs = {**obj.attrs, "climode_region": region.spec}
    return out


def _contiguous(lon: np.ndarray, idx: np.ndarray, new: np.ndarray, what: str,
                data_lon: str) -> tuple[np.ndarray, np.ndarray]:
    """``idx``/``new`` reordered so the columns are one contiguous arc, east-going, or a DataError.

    Columns more than 1.5 grid steps apart must never end up side by side (the model
    would run across a seam that is not there): a selection that is one arc of the
    circle (also one crossing 0/360) is rolled to start at its western end; one made
    of several arcs (a wrap-around box on data that do not go round the globe) is refused.
    """
    if idx.size < 2:
        return idx, new
    step = 2 * _half_step(lon)
    if not np.any(np.diff(new) > 1.5 * step):
        return idx, new
    order = np.argsort(np.mod(lon[idx], 360.0), kind="stable")
    ring = np.mod(lon[idx], 360.0)[order]
    gaps = np.append(np.diff(ring), ring[0] + 360.0 - ring[-1])
    big = np.flatnonzero(gaps > 1.5 * step)
    if big.size != 1:
        raise DataError(
            f"{what} would put longitudes {_fmt(float(ring[big[0]]))} and {_fmt(float(ring[(big[0] + 1) % ring.size]))} "
            f"side by side, but the data ({data_lon}) do not go round the globe; choose a box inside the data"
        )
    order = np.roll(order, -((big[0] + 1) % ring.size))
    ring = np.mod(lon[idx], 360.0)[order]
    return idx[order], ring[0] + np.mod(ring - ring[0], 360.0)


def contiguous_lon(obj: XrObj) -> XrObj:
    """Data whose columns are one arc crossing 0/360 (e.g. -30..30 read as 0..30, 330..360) rolled to
    run east from their western end (330..390); any other data unchanged."""
    lon_dim = _find_dim(obj, LON_NAMES, "longitude")
    lon = np.asarray(obj[lon_dim].values, dtype=float)
    idx = np.arange(lon.size)
    data_lon = f"lon {_fmt(lon.min())}..{_fmt(lon.max())}" if lon.size else "lon (empty)"
    new_idx, new = _contiguous(lon, idx, lon, "the data", data_lon)
    if np.array_equal(new_idx, idx):
        return obj
    out = obj.isel({lon_dim: new_idx})
    return out.assign_coords({lon_dim: out[lon_dim].copy(data=new.astype(out[lon_dim].dtype, copy=False))})


def in_convention(lon, convention: str) -> np.ndarray:
    """Longitudes in ``convention``: ``0..360`` (0 <= lon < 360) or ``-180..180`` (-180 <= lon < 180)."""
    v = np.mod(np.asarray(lon, dtype=float), 360.0)
    if convention == "-180..180":
        v = np.where(v >= 180.0, v - 360.0, v)
    elif convention != "0..360":
        raise ValueError(f"unknown longitude convention {convention!r}")
    return v


def to_convention(obj: XrObj, convention: str = "0..360") -> XrObj:
    """Longitudes of ``obj`` written in ``convention`` (the source data's), never above 360 or below -180.

    The coordinate stays strictly increasing, as CF requires: a box across the
    convention's own seam (350..380 for 0..360 data) is written in the other
    convention (-10..20); a whole-globe field is rolled to start at the seam.
    """
    lon_dim = _find_dim(obj, LON_NAMES, "longitude")
    lon = np.asarray(obj[lon_dim].values, dtype=float)
    other = "0..360" if convention == "-180..180" else "-180..180"
    for conv in (convention, other):
        v = in_convention(lon, conv)
        if v.size < 2 or np.all(np.diff(v) > 0):
            if conv == other and is_global_lon(lon):
                break  # a global field keeps the data's convention, rolled below
            return obj.assign_coords({lon_dim: obj[lon_dim].copy(data=v.astype(obj[lon_dim].dtype, copy=False))})
    v = in_convention(lon, convention)
    out = obj.assign_coords({lon_dim: obj[lon_dim].copy(data=v.astype(obj[lon_dim].dtype, copy=False))})
    return out.sortby(lon_dim)


def to_0_360(obj):
    """Map longitudes (a number, array, or the lon coordinate of xarray data) into 0..360.

    Undoes the ``> 360`` values of a wrapping :func:`subset`; the order of the
    points is kept, so the coordinate becomes non-monotonic across the seam.
    """
    if isinstance(obj, (xr.DataArray, xr.Dataset)) and any(n in obj.dims for n in LON_NAMES):
        lon_dim = _find_dim(obj, LON_NAMES, "longitude")
        return obj.assign_coords({lon_dim: obj[lon_dim].copy(data=np.mod(obj[lon_dim].values, 360.0))})
    if isinstance(obj, xr.DataArray):
        return obj % 360.0
    return np.mod(obj, 360.0)
