"""Land-sea mask for the synthetic worlds: GSHHS coastline if installed, analytic fallback.

Two sources, both deterministic:

* ``"gshhs"`` -- the coarse GSHHS level-1 coastline (``GSHHS_c_L1.shp``) shipped
  by Debian's ``python-cartopy-data`` (or found in cartopy's data directories),
  read with :mod:`cartopy.io.shapereader` and queried with :mod:`shapely`.
* ``"analytic"`` -- a crude hand-drawn set of polygons (the Americas, Africa and
  Europe, Greenland, Cuba, Hispaniola, Great Britain) rasterised with a pure
  numpy point-in-polygon test.  Used when cartopy or the shapefile is missing.

``"auto"`` picks ``"gshhs"`` when available, else ``"analytic"``.  Geometries
and masks are cached in memory for the life of the process.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from climode.errors import ConfigError

log = logging.getLogger(__name__)

LAND_SOURCES = ("auto", "gshhs", "analytic")

_GSHHS_REL = Path("shapefiles") / "gshhs" / "c" / "GSHHS_c_L1.shp"
_GSHHS_DIRS = ("/usr/share/cartopy/data", "/usr/share/cartopy", "/usr/share/python-cartopy-data")

# Crude continents, (lon in -180..180, lat) vertices.  Good to a few degrees.
_ANALYTIC_POLYGONS = (
    # North and Central America, with the Gulf of Mexico and Florida carved out.
    ((-168, 66), (-100, 72), (-80, 70), (-62, 60), (-55, 52), (-66, 45), (-70, 42),
     (-75, 39), (-76, 35), (-81, 31), (-80, 27), (-80.5, 25), (-82, 27), (-83, 30),
     (-89, 30), (-94, 29.5), (-97, 27), (-97.5, 22), (-96, 19), (-91, 19), (-90, 21),
     (-87, 21.5), (-88, 16), (-84, 15), (-83, 11), (-79, 9), (-77.5, 8), (-80, 7),
     (-85, 10), (-92, 15), (-105, 20), (-112, 30), (-118, 34), (-124, 40), (-125, 49),
     (-135, 58), (-150, 60), (-165, 60)),
    # South America.
    ((-77.5, 8), (-72, 12), (-62, 10.5), (-50, 2), (-35, -5), (-40, -22), (-70, -55),
     (-75, -45), (-81, -5), (-80, 0), (-77, 4)),
    # Africa and Europe.
    ((-17, 15), (-17, 21), (-10, 30), (-6, 36), (-9, 37), (-9, 43), (-2, 44), (-5, 48),
     (0, 50), (10, 60), (30, 70), (40, 40), (35, 30), (50, 12), (40, -20), (20, -35),
     (12, -15), (9, 4), (-8, 4), (-13, 8)),
    # Greenland, Great Britain, Cuba, Hispaniola.
    ((-73, 78), (-20, 82), (-20, 70), (-43, 59.8), (-55, 64)),
    ((-6, 50), (2, 51.5), (-2, 58.6), (-6, 58)),
    ((-85, 21.8), (-84, 23), (-80, 23.2), (-74, 20.2), (-77.5, 19.8)),
    ((-74.5, 18.3), (-72, 20), (-68.3, 18.6), (-71, 17.6)),
)


def find_gshhs() -> Path | None:
    """Path of the coarse GSHHS level-1 shapefile, or None if it is not installed."""
    dirs = [os.environ.get("CLIMODE_GSHHS_DIR", ""), *_GSHHS_DIRS]
    try:  # cartopy's own data directories, if cartopy is importable
        import cartopy

        dirs += [str(cartopy.config.get(k, "")) for k in ("pre_existing_data_dir", "data_dir")]
    except ImportError:
        pass
    for d in dirs:
        if d and d != "." and (Path(d) / _GSHHS_REL).is_file():
            return Path(d) / _GSHHS_REL
        if d and Path(d).is_file() and d.endswith(".shp"):
            return Path(d)
    return None


def resolve_land_source(source: str = "auto") -> str:
    """Return ``"gshhs"`` or ``"analytic"`` for a requested source."""
    if source not in LAND_SOURCES:
        raise ConfigError(f"land_source={source!r} is unknown; use one of {', '.join(LAND_SOURCES)}")
    if source == "analytic":
        return source
    usable = find_gshhs() is not None
    if usable:
        try:
            import cartopy.io.shapereader  # noqa: F401
            import shapely  # noqa: F401
        except ImportError:
            usable = False
    if usable:
        return "gshhs"
    if source == "gshhs":
        raise ConfigError(
            "land_source='gshhs' needs cartopy, shapely and GSHHS_c_L1.shp "
            "(apt install python-cartopy-data, or set CLIMODE_GSHHS_DIR); or use land_source='analytic'"
        )
    return "analytic"


@functools.lru_cache(maxsize=1)
def _gshhs_geometry():
    import cartopy.io.shapereader as shpreader
    import shapely
    from shapely.ops import unary_union

    path = find_gshhs()
    pyshp_log = logging.getLogger("shapefile")
    level = pyshp_log.level
    pyshp_log.setLevel(logging.ERROR)  # pyshp warns about two hole-only rings; harmless
    try:
        geoms = list(shpreader.Reader(str(path)).geometries())
    finally:
        pyshp_log.setLevel(level)
    land = unary_union(geoms)
    shapely.prepare(land)
    log.debug("loaded %d GSHHS polygons from %s", len(geoms), path)
    return land


def _points_in_polygon(x: np.ndarray, y: np.ndarray, poly) -> np.ndarray:
    """Even-odd ray-casting test, vectorised over points."""
    vx = np.array([p[0] for p in poly], dtype=float)
    vy = np.array([p[1] for p in poly], dtype=float)
    inside = np.zeros(x.shape, dtype=bool)
    for x0, y0, x1, y1 in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1)):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xint)
    return inside


def is_land(lat, lon, source: str = "analytic") -> np.ndarray:
    """Boolean land test at points (any shape; lon in any convention)."""
    lat = np.asarray(lat, dtype=float)
    x = (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0
    x, y = np.broadcast_arrays(x, lat)
    if source == "gshhs":
        import shapely

        return shapely.contains_xy(_gshhs_geometry(), x, y)
    if source != "analytic":
        raise ConfigError(f"land source {source!r} is not resolved; use 'gshhs' or 'analytic'")
    out = np.zeros(x.shape, dtype=bool)
    for poly in _ANALYTIC_POLYGONS:
        out |= _points_in_polygon(x, y, poly)
    return out


def land_fraction_near(lat, lon, source: str, half_width: float = 0.5) -> np.ndarray:
    """Land fraction of a 3x3 stencil (spacing ``half_width`` degrees) around each point."""
    lat = np.asarray(lat, dtype=float)[..., None]
    lon = np.asarray(lon, dtype=float)[..., None]
    o = np.array([-half_width, 0.0, half_width])
    dy = np.repeat(o, 3)
    dx = np.tile(o, 3)
    return is_land(lat + dy, lon + dx / np.maximum(np.cos(np.deg2rad(lat)), 0.2), source).mean(-1)


@functools.lru_cache(maxsize=32)
def _mask_cached(lat: tuple, lon: tuple, source: str, subsamples: int) -> np.ndarray:
    la = np.asarray(lat)
    lo = np.asarray(lon)
    dlat = float(np.median(np.abs(np.diff(la)))) if la.size > 1 else 1.0
    dlon = float(np.median(np.abs(np.diff(lo)))) if lo.size > 1 else 1.0
    off = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    sub_lat = (la[:, None] + off[None, :] * dlat).ravel()
    sub_lon = (lo[:, None] + off[None, :] * dlon).ravel()
    land = is_land(sub_lat[:, None], sub_lon[None, :], source)
    frac = land.reshape(la.size, subsamples, lo.size, subsamples).mean(axis=(1, 3))
    return (frac >= 0.5).astype(np.float32)


def land_sea_mask(lat, lon, source: str = "auto", subsamples: int = 5) -> xr.DataArray:
    """Land-sea mask on a lat/lon grid: 1 where at least half of the cell is land, else 0.

    ``lat``/``lon`` are 1-D cell-centre coordinates (any order, any longitude
    convention).  The land fraction of each cell is estimated from
    ``subsamples x subsamples`` points.  Results are cached per grid.
    """
    la = np.atleast_1d(np.asarray(lat, dtype=float))
    lo = np.atleast_1d(np.asarray(lon, dtype=float))
    if la.ndim != 1 or lo.ndim != 1:
        raise ConfigError("land_sea_mask needs 1-D lat and lon coordinates; pass ds.lat and ds.lon")
    if subsamples < 1:
        raise ConfigError(f"subsamples={subsamples} must be a positive integer")
    resolved = resolve_land_source(source)
    mask = _mask_cached(tuple(la.tolist()), tuple(lo.tolist()), resolved, int(subsamples))
    return xr.DataArray(
        mask.copy(),
        dims=("lat", "lon"),
        coords={"lat": la, "lon": lo},
        name="LANDMASK",
        attrs={
            "units": "1",
            "long_name": "Land-sea mask (1 land, 0 sea)",
            "standard_name": "land_binary_mask",
            "source": resolved,
        },
    )
