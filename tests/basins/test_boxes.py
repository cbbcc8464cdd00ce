"""Basin boxes, aliases, user boxes, seam handling and subsetting."""

import logging

import numpy as np
import pytest
import xarray as xr

from climode.basins import BASINS, Region, list_regions, resolve_region, subset, to_0_360
from climode.errors import ClimodeError, ConfigError, DataError


def _grid(dlat=1.0, dlon=1.0, lon0=0.0):
    lat = np.arange(-90 + dlat / 2, 90, dlat)
    lon = np.arange(lon0, lon0 + 360, dlon)
    data = lat[:, None] * 1000.0 + np.mod(lon, 360.0)[None, :]  # value encodes its own lat/lon
    da = xr.DataArray(
        np.stack([data, data + 0.5]), dims=("time", "lat", "lon"), coords={"time": [0, 1], "lat": lat, "lon": lon}
    )
    return xr.Dataset({"PSL": da, "U850": -da})


def test_basin_table():
    assert [r.name for r in list_regions()] == ["NA", "EP", "WP", "NI", "SI", "SP"]
    na = BASINS["NA"]
    assert (na.lat_min, na.lat_max, na.lon_min, na.lon_max) == (5, 60, 255, 359)
    si = BASINS["SI"]
    assert (si.lat_min, si.lat_max, si.lon_min, si.lon_max) == (-60, -5, 10, 135)
    assert not any(r.wraps for r in list_regions())


@pytest.mark.parametrize(
    "spec, code",
    [
        ("atlantic", "NA"),
        ("North_Atlantic", "NA"),
        ("north atlantic", "NA"),
        ("na", "NA"),
        ("EP", "EP"),
        ("east_pacific", "EP"),
        ("WEST_PACIFIC", "WP"),
        ("north-indian", "NI"),
        ("south_indian", "SI"),
        (" South_Pacific ", "SP"),
        ("sp", "SP"),
    ],
)
def test_aliases(spec, code):
    assert resolve_region(spec) is BASINS[code]


def test_none_and_region_pass_through():
    assert resolve_region(None) is None
    r = Region("mine", 0, 10, 20, 30)
    assert resolve_region(r) is r
    ds = _grid(10, 10)
    assert subset(ds, None) is ds


def test_user_box_and_negative_longitudes():
    r = resolve_region("lat=5:60,lon=255:359")
    assert (r.lat_min, r.lat_max, r.lon_min, r.lon_max) == (5, 60, 255, 359)
    neg = resolve_region("lat=5:60, lon=-105:-1")
    assert (neg.lon_min, neg.lon_max) == (255, 359) and not neg.wraps
    swapped = resolve_region("LON=-10:20,lat=-5.5:7.25")
    assert (swapped.lat_min, swapped.lat_max) == (-5.5, 7.25)
    assert (swapped.lon_min, swapped.lon_max) == (350, 20) and swapped.wraps
    assert swapped.lon_span == 30 and swapped.lon_max_unwrapped == 380
    assert resolve_region(swapped.spec) == swapped
    full = resolve_region("lat=-30:30")
    assert (full.lon_min, full.lon_max, full.lon_span) == (0, 360, 360)
    assert resolve_region("lat=0:1,lon=-180:180").lon_span == 360
    assert resolve_region("lat=0:1,lon=300:360").lon_max == 360


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("lat=5:95,lon=0:10", "-90..90"),
        ("lat=60:5,lon=0:10", "below"),
        ("lat=5:5,lon=0:10", "below"),
        ("lat=5:60,lon=10:10", "empty"),
        ("lat=5:60,lon=0:400", "wider than 360"),
        ("lat=5:60;lon=0:10", "lat=MIN:MAX,lon=MIN:MAX"),
        ("lat=5-60,lon=0:10", "lat=MIN:MAX,lon=MIN:MAX"),
        ("lat=5:60,lat=0:10", "twice"),
        ("lat=a:b", "lat=MIN:MAX,lon=MIN:MAX"),
    ],
)
def test_bad_boxes(spec, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        resolve_region(spec)
    assert "\n" not in str(info.value)


def test_unknown_basin_lists_choices():
    with pytest.raises(ConfigError) as info:
        resolve_region("mediterranean")
    msg = str(info.value)
    for word in ("NA", "SP", "north_atlantic", "south_pacific", "lat=MIN:MAX,lon=MIN:MAX"):
        assert word in msg
    with pytest.raises(ConfigError):
        resolve_region(42)
    with pytest.raises(ConfigError):
        Region("bad", -91, 0, 0, 10)


def test_subset_basin():
    ds = _grid()
    out = subset(ds, "NA")
    assert isinstance(out, xr.Dataset)
    assert out.lat.values[0] == 5.5 and out.lat.values[-1] == 59.5
    np.testing.assert_array_equal(out.lon.values, np.arange(255, 360))
    np.testing.assert_array_equal(out.PSL.values[0], ds.PSL.values[0][95:150, 255:360])
    assert out.attrs["climode_region"] == "lat=5:60,lon=255:359"
    da = subset(ds.PSL, BASINS["SI"])
    assert isinstance(da, xr.DataArray) and da.dims == ("time", "lat", "lon")
    assert da.lon.values[0] == 10 and da.lon.values[-1] == 135


def test_subset_across_seam_is_contiguous():
    ds = _grid(dlat=2.0, dlon=2.5)
    out = subset(ds, "lat=-10:10,lon=350:20")
    lon = out.lon.values
    expected = np.concatenate([np.arange(350, 360, 2.5), np.arange(0, 20.01, 2.5) + 360])
    np.testing.assert_array_equal(lon, expected)
    assert np.all(np.diff(lon) == 2.5)  # contiguous and monotonic
    # the data follow their coordinates: each value encodes lat*1000 + its 0..360 longitude
    values = out.PSL.values[0] - out.lat.values[:, None] * 1000.0
    np.testing.assert_allclose(values, np.broadcast_to(np.mod(expected, 360.0), values.shape))
    back = to_0_360(out)
    np.testing.assert_array_equal(back.lon.values, np.mod(expected, 360.0))
    assert to_0_360(380.0) == 20.0
    np.testing.assert_array_equal(to_0_360(np.array([-105.0, 365.0])), [255.0, 5.0])


def test_subset_negative_longitude_data():
    ds = _grid(dlat=5.0, dlon=5.0, lon0=-180.0)  # -180..175
    out = subset(ds, "NA")
    np.testing.assert_array_equal(out.lon.values, np.arange(255, 359, 5.0))
    values = out.PSL.values[0] - out.lat.values[:, None] * 1000.0
    np.testing.assert_allclose(values, np.broadcast_to(out.lon.values, values.shape))
    # a box across the dateline is contiguous in 0..360 terms without any wrap
    dl = subset(ds, "lat=-5:5,lon=170:-170")
    np.testing.assert_array_equal(dl.lon.values, [170, 175, 180, 185, 190])


def test_subset_descending_latitude_keeps_order():
    ds = _grid(10, 10).isel(lat=slice(None, None, -1))
    out = subset(ds, "lat=5:60,lon=0:30")
    np.testing.assert_array_equal(out.lat.values, [55, 45, 35, 25, 15, 5])


def test_subset_errors_and_partial(caplog):
    ds = _grid(5, 5).sel(lon=slice(0, 100), lat=slice(-60, 60))
    with pytest.raises(DataError) as info:
        subset(ds, "NA")
    msg = str(info.value)
    assert "lat=5:60,lon=255:359" in msg and "lon 0..100" in msg and "lat -57.5..57.5" in msg
    with caplog.at_level(logging.WARNING, logger="climode.basins"):
        out = subset(ds, "lat=50:80,lon=80:120")
    assert "partly inside" in caplog.text
    np.testing.assert_array_equal(out.lat.values, [52.5, 57.5])
    np.testing.assert_array_equal(out.lon.values, [80, 85, 90, 95, 100])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="climode.basins"):
        subset(_grid(), "NA")
        subset(_grid(), "lat=-90:90,lon=350:20")
    assert caplog.text == ""
    with pytest.raises(DataError, match="open_dataset"):
        subset(xr.DataArray(np.zeros((2, 2)), dims=("y", "x")), "NA")


def test_errors_are_climode_errors():
    assert issubclass(DataError, ClimodeError) and issubclass(ConfigError, ClimodeError)
