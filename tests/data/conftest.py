"""Builders of small source files in the formats climode must read."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

NCL_DIR = "/usr/share/ncarg/data/cdf"


def _field(nt: int, nlat: int, nlon: int, offset: float, scale: float = 1.0) -> np.ndarray:
    """A deterministic field whose every value differs: offset + scale * (t*100 + i*10 + j)/10."""
    t, i, j = np.meshgrid(np.arange(nt), np.arange(nlat), np.arange(nlon), indexing="ij")
    return (offset + scale * (t * 100 + i * 10 + j) / 10.0).astype("float32")


@pytest.fixture
def field():
    return _field


@pytest.fixture
def cam_like():
    """A CAM-like history dataset: U850, V850, PSL (Pa) on a regular grid with a noleap calendar."""

    def build(nt=4, nlat=5, nlon=6, start=0.0, step_hours=6.0, calendar="noleap", psl_units="Pa"):
        hours = start + step_hours * np.arange(nt)
        time = xr.Variable(("time",), hours, {"units": "hours since 2000-01-01 00:00:00", "calendar": calendar})
        lat = np.linspace(-20, 20, nlat)
        lon = np.linspace(0, 360, nlon, endpoint=False)
        return xr.Dataset(
            {
                "U850": (("time", "lat", "lon"), _field(nt, nlat, nlon, 1.0), {"units": "m/s", "long_name": "Zonal wind at 850 mbar pressure surface"}),
                "V850": (("time", "lat", "lon"), _field(nt, nlat, nlon, -2.0), {"units": "m/s"}),
                "PSL": (("time", "lat", "lon"), _field(nt, nlat, nlon, 100000.0, 10.0), {"units": psl_units}),
            },
            coords={
                "time": time,
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"}),
            },
        )

    return build
