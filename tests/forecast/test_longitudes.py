"""Longitudes of forecasts: never a false seam, always the data's own convention (issue 10)."""

import numpy as np
import pytest
import xarray as xr

from climode.cli.main import main


def field(lon, lat=np.arange(0.0, 30.1, 1.5), seed=0):
    """Smooth random fields on lat x lon at five 3-hourly times, continuous across 0/360."""
    rng = np.random.default_rng(seed)
    time = np.datetime64("2000-08-01T00") + np.arange(5) * np.timedelta64(3, "h")
    lon = np.asarray(lon, dtype=float)
    out = {}
    for name, mean, scale, units in (("U850", 0.0, 5.0, "m/s"), ("V850", 0.0, 5.0, "m/s"),
                                     ("PSL", 101000.0, 400.0, "Pa")):
        k, phase = rng.integers(1, 4, size=3), rng.uniform(0, 2 * np.pi, size=3)
        waves = sum(np.cos(np.deg2rad(kk * lon)[None, None, :] + p + 0.3 * t) * np.sin(np.deg2rad(lat * 4))[None, :, None]
                    for kk, p, t in zip(k, phase, range(3)))
        values = mean + scale * waves * np.linspace(1, 1.2, 5)[:, None, None]
        out[name] = (("time", "lat", "lon"), values.astype(np.float32), {"units": units})
    return xr.Dataset(out, coords={"time": time, "lat": lat, "lon": lon})


GLOBAL = np.arange(0.0, 360.0, 1.5)


def test_a_box_across_0_on_global_data_is_one_field_in_the_data_convention(forecaster):
    data = field(GLOBAL)
    fc = forecaster.predict(data, "+3h", basin="lat=5:25,lon=345:15")
    lon = fc["lon"].values
    assert lon.min() >= -180 and lon.max() <= 360 and np.all(np.diff(lon) == 1.5)
    assert lon[0] == -15.0 and lon[-1] == 15.0  # 0..360 data: the box across 0 is written as -15..15
    # the seam: the same box cut out of the data rolled to -180..180 (where 0 is inside) gives the same
    # forecast, also at the columns either side of 0
    rolled = data.assign_coords(lon=np.where(GLOBAL >= 180, GLOBAL - 360, GLOBAL)).sortby("lon")
    box = rolled.sel(lon=slice(-15, 15), lat=slice(5, 25))
    assert box["lon"].values[0] < 0 < box["lon"].values[-1]
    expected = forecaster.predict(box, "+3h")
    xr.testing.assert_allclose(fc[["U850", "V850", "PSL"]], expected[["U850", "V850", "PSL"]])
    seam = [int(np.flatnonzero(lon == v)[0]) for v in (-1.5, 0.0)]
    assert np.isfinite(fc["PSL"].isel(lon=seam).values).all()


def test_whole_globe_forecasts_keep_the_source_convention(forecaster):
    on_180 = field(GLOBAL).assign_coords(lon=np.where(GLOBAL >= 180, GLOBAL - 360, GLOBAL)).sortby("lon")
    fc = forecaster.predict(on_180, "+3h")
    assert fc["lon"].values[0] == -180.0 and fc["lon"].values[-1] == 178.5
    fc = forecaster.predict(field(GLOBAL), "+3h", basin="lat=5:25,lon=300:350")
    assert fc["lon"].values[0] == 300.0 and fc["lon"].values[-1] == 349.5


def test_a_wrap_around_box_on_regional_data_is_an_error(checkpoint, tmp_path, capsys):
    path = tmp_path / "regional.nc"
    field(np.arange(240.0, 345.0, 1.5)).to_netcdf(path)
    code = main(["forecast", "--checkpoint", str(checkpoint), "--data", str(path), "--basin",
                 "lat=10:20,lon=340:260", "--output", str(tmp_path / "f.nc"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "side by side" in err and "do not go round the globe" in err, err
    assert not (tmp_path / "f.nc").exists()


def test_regional_data_across_0_are_forecast_as_one_piece(forecaster):
    across = np.arange(-30.0, 30.1, 1.5)  # read as 0..30 and 330..358.5
    fc = forecaster.predict(field(across), "+3h")
    np.testing.assert_array_equal(fc["lon"].values, across)  # the source's -180..180 convention, contiguous
    expected = forecaster.predict(field(GLOBAL), "+3h", basin="lat=0:30,lon=330:30")
    xr.testing.assert_allclose(fc[["PSL"]], expected[["PSL"]])


@pytest.mark.parametrize("box", ["lat=5:25,lon=-10:10", "lat=5:25,lon=350:380"])
def test_no_longitude_above_360_in_the_file(checkpoint, tmp_path, box):
    path = tmp_path / "global.nc"
    field(GLOBAL).to_netcdf(path)
    out = tmp_path / "f.nc"
    assert main(["forecast", "--checkpoint", str(checkpoint), "--data", str(path), f"--basin={box}",
                 "--times", "+3h", "--output", str(out), "--quiet", "--device", "cpu"]) == 0
    lon = xr.open_dataset(out)["lon"].values
    assert lon.min() >= -180 and lon.max() < 360 and np.all(np.diff(lon) > 0)
