import numpy as np
import pytest
import xarray as xr

from climode.grid import is_global_lon, regrid


def field(lat, lon):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return xr.Dataset({"PSL": (("time", "lat", "lon"), (100000 + 10 * la + 3 * lo)[None].repeat(2, 0))},
                      coords={"lat": lat, "lon": lon, "time": [0, 1]})


def test_bilinear_is_exact_on_a_linear_field_and_keeps_the_edges():
    src = field(np.arange(20.0, 60.1, 1.25), np.arange(220.0, 307.6, 2.5))
    lat, lon = np.arange(20.0, 61.0, 1.5), np.arange(220.0, 309.0, 1.5)  # reaches past the source
    out = regrid(src, lat, lon)
    la, lo = np.meshgrid(np.minimum(lat, 60.0), np.minimum(lon, 307.5), indexing="ij")
    np.testing.assert_allclose(out["PSL"].values[0], 100000 + 10 * la + 3 * lo, rtol=1e-9)
    assert out["PSL"].dims == ("time", "lat", "lon") and list(out.time.values) == [0, 1]


def test_missing_cells_neither_fray_nor_spread():
    src = field(np.arange(0.0, 20.0, 1.0), np.arange(0.0, 20.0, 1.0))
    src["PSL"][:, 5:10, 5:10] = np.nan
    out = regrid(src, np.arange(0.0, 19.01, 0.5), np.arange(0.0, 19.01, 0.5))
    values = out["PSL"].values[0]
    lat, lon = np.meshgrid(out.lat.values, out.lon.values, indexing="ij")
    inside = (np.rint(lat) >= 5) & (np.rint(lat) <= 9) & (np.rint(lon) >= 5) & (np.rint(lon) <= 9)
    assert np.isnan(values[inside]).all() and np.isfinite(values[~inside]).all()
    back = regrid(out, src.lat.values, src.lon.values, keep_missing=False)
    assert np.isfinite(back["PSL"].values).all()


def test_longitude_is_periodic_on_a_global_grid():
    lat, lon = np.arange(-60.0, 61.0, 5.0), np.arange(0.0, 360.0, 2.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    values = 100000 + 500 * np.cos(np.deg2rad(lo)) + 300 * np.sin(np.deg2rad(2 * lo)) + 10 * la
    src = xr.Dataset({"PSL": (("lat", "lon"), values)}, coords={"lat": lat, "lon": lon})
    assert is_global_lon(lon) and not is_global_lon(np.arange(255.0, 356.0, 1.5))
    target = np.arange(-180.0, 180.0, 1.0)  # another convention, and cells between 357.5 and 360
    out = regrid(src, lat, target)
    expected = np.stack([np.interp(target, lon, row, period=360.0) for row in values])  # linear across the seam
    np.testing.assert_allclose(out["PSL"].values, expected, rtol=1e-12)
    assert np.allclose(out.lon, target)


def test_missing_cells_across_the_seam_stay_missing():
    lat, lon = np.arange(0.0, 10.0, 1.0), np.arange(0.0, 360.0, 10.0)
    src = xr.Dataset({"PSL": (("lat", "lon"), np.ones((lat.size, lon.size)))}, coords={"lat": lat, "lon": lon})
    src["PSL"][:, -1] = np.nan  # the 350 E column
    out = regrid(src, lat, np.array([-8.0, 2.0, 354.0, 356.0]))  # -8 == 352 E, nearest 350; 356 E nearest 0 E
    assert np.isnan(out["PSL"].values[:, [0, 2]]).all() and np.isfinite(out["PSL"].values[:, [1, 3]]).all()


def test_conservative_keeps_the_area_mean_and_the_missing_cells():
    pytest.importorskip("xarray_regrid")
    from climode.metrics.fields import lat_weights

    lat, lon = np.arange(20.25, 50.0, 0.5), np.arange(250.25, 280.0, 0.5)  # 0.5 degree cells 20-50 N
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    values = 100000 + 300 * np.sin(np.deg2rad(8 * lo)) * np.cos(np.deg2rad(6 * la))
    src = xr.Dataset({"PSL": (("time", "lat", "lon"), values[None])}, coords={"lat": lat, "lon": lon, "time": [0]})
    out = regrid(src, np.arange(20.75, 50.0, 1.5), np.arange(250.75, 280.0, 1.5), method="conservative")
    mean = lambda da: np.average(da.values[0], weights=np.broadcast_to(lat_weights(da.lat)[:, None], da.shape[1:]))
    assert abs(mean(out["PSL"]) - mean(src["PSL"])) < 1e-6 * 1e5  # area-weighted mean conserved
    block = src["PSL"].values[0, :3, :3].mean()  # the first 1.5-degree cell holds 3 x 3 source cells
    assert out["PSL"].values[0, 0, 0] == pytest.approx(block, rel=1e-3)
    src["PSL"][:, 6:15, 6:15] = np.nan  # 3 x 3 target cells entirely missing
    holed = regrid(src, out.lat.values, out.lon.values, method="conservative")["PSL"].values[0]
    assert np.isnan(holed[2:5, 2:5]).all() and np.isfinite(np.delete(holed, np.s_[2:5], axis=0)).all()


def test_unknown_regrid_method_is_refused():
    from climode.errors import ClimodeError

    src = field(np.arange(0.0, 5.0), np.arange(0.0, 5.0))
    with pytest.raises(ClimodeError, match="bilinear or conservative"):
        regrid(src, src.lat.values, src.lon.values, method="cubic")


@pytest.mark.parametrize("lon", [
    np.arange(0.0, 360.0, 2.5),  # 0..360
    np.arange(-180.0, 180.0, 1.0),  # -180..180
    np.arange(357.5, -0.1, -2.5),  # descending, as cyclone detection accepts
    np.arange(0.0, 360.0, 0.25).astype(np.float32),  # float32 rounding of the steps
    np.array([0.0, 120.0, 240.0]),  # three cells are enough
])
def test_axes_once_round_the_globe_are_global(lon):
    assert is_global_lon(lon)


@pytest.mark.parametrize("lon", [
    np.arange(255.0, 356.0, 1.5),  # a regional box
    np.arange(0.0, 360.1, 2.5),  # the seam column twice: 361 x 1 step is not 360
    np.array([0.0, 180.0]),  # fewer than 3
    np.r_[np.arange(0.0, 180.0, 2.5), np.arange(181.0, 360.0, 2.5)],  # one uneven step
    np.r_[np.arange(180.0, 360.0, 2.5), np.arange(0.0, 180.0, 2.5)],  # a seam inside the axis
    np.full(144, 10.0),  # no step at all
])
def test_other_axes_are_not(lon):
    assert not is_global_lon(lon)


def test_wrapped_columns_repeat_the_far_side_of_the_seam():
    from climode.grid import _wrap_lon

    lon = np.arange(0.0, 360.0, 90.0)
    values, ext = _wrap_lon(np.arange(8.0).reshape(2, 4), lon)
    assert ext.tolist() == [-180.0, -90.0, 0.0, 90.0, 180.0, 270.0, 360.0, 450.0]
    assert values[0].tolist() == [2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0]


def test_regridding_a_global_field_onto_itself_changes_nothing_at_the_seam():
    lat, lon = np.arange(-30.0, 31.0, 10.0), np.arange(0.0, 360.0, 30.0)
    values = np.random.default_rng(0).normal(size=(lat.size, lon.size))
    src = xr.Dataset({"PSL": (("lat", "lon"), values)}, coords={"lat": lat, "lon": lon})
    np.testing.assert_allclose(regrid(src, lat, lon)["PSL"].values, values, rtol=1e-12)
    # half a cell past 330 E is the mean of the 330 E and 0 E columns
    out = regrid(src, lat, np.array([345.0, -15.0]))["PSL"].values
    np.testing.assert_allclose(out, np.stack([(values[:, -1] + values[:, 0]) / 2] * 2, axis=1), rtol=1e-12)
