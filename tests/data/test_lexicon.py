"""The variable lexicon: names, units and vertical axes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from climode.data import lexicon
from climode.errors import ConfigError


@pytest.mark.parametrize(
    "units, canonical, factor",
    [
        ("Pa", "Pa", 1.0),
        ("hPa", "Pa", 100.0),
        ("  MB ", "Pa", 100.0),
        ("millibars", "Pa", 100.0),
        ("m s-1", "m/s", 1.0),
        ("m  s**-1", "m/s", 1.0),
        ("knots", "m/s", 1852.0 / 3600.0),
        ("kt", "m/s", 1852.0 / 3600.0),
        ("km/h", "m/s", 1.0 / 3.6),
    ],
)
def test_conversion_factor(units, canonical, factor):
    assert lexicon.conversion_factor(units, canonical) == pytest.approx(factor)


def test_unknown_units_and_names():
    assert lexicon.conversion_factor("K", "Pa") is None
    assert lexicon.conversion_factor("m/s", "Pa") is None
    with pytest.raises(ConfigError, match="unknown variable 'T850': climode knows U850, V850, PSL"):
        lexicon.get("T850")


def _ds(**data_vars):
    coords = {
        "time": [0, 1],
        "lat": [0.0, 1.0],
        "lon": [0.0, 1.0],
        "plev": ("plev", [85000.0, 50000.0], {"units": "Pa"}),
    }
    return xr.Dataset(data_vars, coords=coords)


def test_candidates_need_a_level_for_generic_wind_names():
    z3 = np.zeros((2, 2, 2))
    z4 = np.zeros((2, 2, 2, 2))
    ds = _ds(u=(("time", "lat", "lon"), z3), ua=(("time", "plev", "lat", "lon"), z4))
    # a bare 'u' may be a 10 m wind: only 'ua' on a pressure axis is taken
    assert lexicon.candidates(ds, "U850") == [("ua", True)]
    ds = _ds(U850=(("time", "lat", "lon"), z3), ua=(("time", "plev", "lat", "lon"), z4))
    assert lexicon.candidates(ds, "U850")[0] == ("U850", False)
    scalar = xr.Dataset(
        {"v": (("time", "lat", "lon"), z3)},
        coords={"time": [0, 1], "lat": [0.0, 1.0], "lon": [0.0, 1.0], "isobaricInhPa": 850.0},
    )
    assert lexicon.candidates(scalar, "V850") == [("v", True)]


def test_surface_pressure_never_matches_psl():
    z3 = np.zeros((2, 2, 2))
    ds = _ds(PS=(("time", "lat", "lon"), z3), sp=(("time", "lat", "lon"), z3))
    assert lexicon.candidates(ds, "PSL") == []
    ds = _ds(PS=(("time", "lat", "lon"), z3), mslp=(("time", "lat", "lon"), z3))
    assert lexicon.candidates(ds, "PSL") == [("mslp", False)]
    ds = _ds(pressure_msl=(("time", "lat", "lon"), z3, {"standard_name": "air_pressure_at_mean_sea_level"}))
    assert lexicon.candidates(ds, "PSL") == [("pressure_msl", False)]


def test_vertical_kind():
    ds = xr.Dataset(
        coords={
            "plev": ("plev", [1000.0, 850.0], {"units": "hPa"}),
            "isobaricInhPa": [1000.0, 850.0],
            "lev": ("lev", [300.0, 900.0], {"units": "level", "long_name": "hybrid level at midpoints (1000*(A+B))"}),
            "height": ("height", [10.0], {"units": "m"}),
        }
    )
    assert lexicon.vertical_kind(ds, "plev") == "pressure"
    assert lexicon.vertical_kind(ds, "isobaricInhPa") == "pressure"
    assert lexicon.vertical_kind(ds, "lev") == "hybrid"
    assert lexicon.vertical_kind(ds, "height") is None
    assert lexicon.pressure_units_factor({}, "isobaricInhPa", [1000.0]) == 100.0
    assert lexicon.pressure_units_factor({}, "level", [100000.0, 85000.0]) == 1.0
    assert lexicon.pressure_units_factor({"units": "mbar"}, "level", [1000.0]) == 100.0
