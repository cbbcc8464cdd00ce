"""The variable lexicon: names, units and axes seen in the wild, mapped onto climode's vocabulary.

climode's canonical fields are ``U850`` and ``V850`` (wind at 850 hPa, m/s) and
``PSL`` (sea-level pressure, Pa) on dims ``(time, lat, lon)``.  This module only
knows names and units; :mod:`climode.data.open` uses it to read files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

#: The pressure level, in Pa, of the wind fields.
LEVEL_850_PA = 85000.0


@dataclass(frozen=True)
class Variable:
    """A canonical variable and the names it goes by."""

    name: str
    units: str
    standard_name: str
    long_name: str
    #: names that already mean this field (at 850 hPa, or at sea level)
    direct: tuple[str, ...]
    #: names that mean the same quantity on a vertical axis (reduced to ``level_pa``)
    on_levels: tuple[str, ...] = ()
    #: CF standard names accepted for ``on_levels`` matching
    level_standard_names: tuple[str, ...] = ()
    level_pa: float | None = None


VARIABLES: dict[str, Variable] = {
    "U850": Variable(
        name="U850",
        units="m/s",
        standard_name="eastward_wind",
        long_name="eastward wind at 850 hPa",
        direct=("U850", "u850", "ua850", "U_850", "u_850"),
        on_levels=("U", "u", "ua", "uwnd", "UGRD"),
        level_standard_names=("eastward_wind",),
        level_pa=LEVEL_850_PA,
    ),
    "V850": Variable(
        name="V850",
        units="m/s",
        standard_name="northward_wind",
        long_name="northward wind at 850 hPa",
        direct=("V850", "v850", "va850", "V_850", "v_850"),
        on_levels=("V", "v", "va", "vwnd", "VGRD"),
        level_standard_names=("northward_wind",),
        level_pa=LEVEL_850_PA,
    ),
    "PSL": Variable(
        name="PSL",
        units="Pa",
        standard_name="air_pressure_at_mean_sea_level",
        long_name="sea level pressure",
        direct=("PSL", "psl", "msl", "MSL", "slp", "SLP", "mslp", "MSLP", "prmsl", "PRMSL"),
    ),
}

#: The default variables, in channel order.
CANONICAL: tuple[str, ...] = tuple(VARIABLES)

#: Standard names that mean sea-level pressure.
PSL_STANDARD_NAMES = ("air_pressure_at_mean_sea_level", "air_pressure_at_sea_level")

#: Surface pressure: never sea-level pressure.
SURFACE_PRESSURE_NAMES = ("PS", "ps", "sp", "SP", "psfc", "PSFC", "pressfc", "surface_pressure")

# ---------------------------------------------------------------- coordinates

LAT_NAMES = ("lat", "latitude", "nav_lat", "lats", "XLAT", "y_lat")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons", "XLONG", "x_lon")
TIME_NAMES = ("time", "valid_time", "t", "Time", "times")
#: Integer offset axes that count from a reference time (e.g. NCL's ``timestep`` in hours).
OFFSET_TIME_NAMES = ("timestep", "time_step", "step", "forecast_hour", "fhour")
#: Names of a reference time, as a variable or an attribute.
REFTIME_NAMES = ("reftime", "ref_time", "reference_time", "forecast_reference_time", "init_time")
TIME_BOUNDS_NAMES = ("time_bnds", "time_bounds", "time_bnd")

LAT_UNITS = ("degrees_north", "degree_north", "degree_n", "degrees_n", "degreesn", "degreen")
LON_UNITS = ("degrees_east", "degree_east", "degree_e", "degrees_e", "degreese", "degreee")

PRESSURE_AXIS_NAMES = (
    "plev", "level", "lev", "levels", "pressure", "pressure_level", "isobaricInhPa",
    "isobaricInPa", "pres", "air_pressure", "levelist", "lv_ISBL0", "p",
)
HYBRID_AXIS_NAMES = ("lev", "ilev", "hybrid", "hyb")
HYBRID_STANDARD_NAMES = (
    "atmosphere_hybrid_sigma_pressure_coordinate",
)

# ---------------------------------------------------------------------- units

_KNOT = 1852.0 / 3600.0

#: Multipliers onto Pa.
PRESSURE_UNITS: dict[str, float] = {
    "pa": 1.0, "pascal": 1.0, "pascals": 1.0, "n m-2": 1.0, "n/m2": 1.0, "n m**-2": 1.0,
    "n/m^2": 1.0, "kg m-1 s-2": 1.0,
    "hpa": 100.0, "hectopascal": 100.0, "hectopascals": 100.0,
    "mb": 100.0, "mbar": 100.0, "millibar": 100.0, "millibars": 100.0,
    "kpa": 1000.0,
}
#: Multipliers onto m/s.
SPEED_UNITS: dict[str, float] = {
    "m/s": 1.0, "m s-1": 1.0, "m s**-1": 1.0, "m s^-1": 1.0, "m.s-1": 1.0, "ms-1": 1.0,
    "m/sec": 1.0, "meter/second": 1.0, "meters/second": 1.0, "metre/second": 1.0,
    "metres/second": 1.0, "m sec-1": 1.0, "mps": 1.0,
    "knots": _KNOT, "knot": _KNOT, "kt": _KNOT, "kts": _KNOT, "kn": _KNOT,
    "km/h": 1.0 / 3.6, "km h-1": 1.0 / 3.6, "km/hr": 1.0 / 3.6, "kph": 1.0 / 3.6,
    "kmh": 1.0 / 3.6, "km h**-1": 1.0 / 3.6,
    "mph": 0.44704, "mi/h": 0.44704,
}
_TABLES = {"Pa": PRESSURE_UNITS, "m/s": SPEED_UNITS}


def normalise_units(units: str) -> str:
    """Lower-case a unit string and collapse its spaces (``"m  s-1"`` -> ``"m s-1"``)."""
    return re.sub(r"\s+", " ", str(units).strip().lower())


def conversion_factor(units: str, canonical: str) -> float | None:
    """The multiplier taking ``units`` onto ``canonical`` (``"Pa"`` or ``"m/s"``), or None if unknown."""
    return _TABLES[canonical].get(normalise_units(units))


def known_units(canonical: str) -> list[str]:
    """Unit spellings accepted for a canonical unit, for error messages."""
    return sorted(_TABLES[canonical])


def get(name: str) -> Variable:
    """The canonical variable called ``name``; a ConfigError names the known ones otherwise."""
    from climode.errors import ConfigError

    try:
        return VARIABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown variable {name!r}: climode knows {', '.join(CANONICAL)}"
        ) from None


def pressure_units_factor(attrs: Mapping, name: str, values) -> float | None:
    """Pa per unit of a pressure axis from its attributes; guessed from the values if absent.

    ``isobaricInhPa`` is hPa by name.  Without units, levels up to 1100 are taken
    as hPa and larger ones as Pa.  Returns None for a non-pressure unit.
    """
    units = attrs.get("units")
    if units is not None:
        return conversion_factor(units, "Pa")
    if name == "isobaricInhPa":
        return 100.0
    if name == "isobaricInPa":
        return 1.0
    import numpy as np

    top = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    return 100.0 if top <= 1100.0 else 1.0


def vertical_kind(ds, dim: str) -> str | None:
    """Classify ``dim`` of ``ds`` as ``"pressure"``, ``"hybrid"`` or None (not a vertical axis)."""
    coord = ds.variables.get(dim)
    attrs = dict(coord.attrs) if coord is not None else {}
    units = attrs.get("units")
    standard_name = str(attrs.get("standard_name", ""))
    long_name = str(attrs.get("long_name", "")).lower()
    if standard_name in HYBRID_STANDARD_NAMES or "hybrid" in long_name:
        return "hybrid"
    if units is not None and conversion_factor(units, "Pa") is not None:
        return "pressure"
    if standard_name == "air_pressure":
        return "pressure"
    if dim in HYBRID_AXIS_NAMES and ("hyam" in ds.variables or "hybm" in ds.variables):
        return "hybrid"
    if dim in PRESSURE_AXIS_NAMES and (units is None or normalise_units(units) in ("", "1")):
        # a bare level axis: pressure if its values look like hPa or Pa levels
        if coord is not None and coord.ndim <= 1 and coord.size and coord.dtype.kind in "fiu":
            return "pressure"
    if dim in HYBRID_AXIS_NAMES:
        return "hybrid"
    return None


def candidates(ds, name: str) -> list[tuple[str, bool]]:
    """Source variables of ``ds`` that may hold canonical ``name``, best first.

    Each item is ``(source_name, on_levels)``; ``on_levels`` means the source must
    be reduced from a vertical axis (or carry a scalar 850 hPa coordinate).
    Surface pressure never matches ``PSL``.
    """
    var = get(name)
    data_vars = [v for v in ds.data_vars if v not in SURFACE_PRESSURE_NAMES]
    found: list[tuple[str, bool]] = []
    for alias in var.direct:
        if alias in data_vars:
            found.append((alias, False))
    for alias in var.on_levels:
        if alias in data_vars and _has_level_info(ds, alias):
            found.append((alias, True))
    for v in data_vars:
        sn = str(ds[v].attrs.get("standard_name", ""))
        if name == "PSL" and sn in PSL_STANDARD_NAMES and (v, False) not in found:
            found.append((v, False))
        if sn in var.level_standard_names and _has_level_info(ds, v) and (v, True) not in found:
            found.append((v, True))
    return found


def _has_level_info(ds, name: str) -> bool:
    """Whether variable ``name`` has a vertical dim or a scalar vertical coordinate."""
    da = ds[name]
    for dim in da.dims:
        if dim not in ("time", "lat", "lon") and vertical_kind(ds, dim) is not None:
            return True
    for cname, coord in da.coords.items():
        if coord.ndim == 0 and cname not in da.dims and vertical_kind(ds, cname) == "pressure":
            return True
    return False


def describe_found(ds) -> str:
    """A short list of the data variables found, for error messages."""
    names = [str(v) for v in ds.data_vars]
    return ", ".join(names) if names else "no data variables"
