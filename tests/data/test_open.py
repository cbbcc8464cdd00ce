"""climode.open_dataset on real NetCDF/zarr files written to tmp_path, and on the NCL storm files."""

from __future__ import annotations

import os

import cftime
import dask.array
import numpy as np
import pytest
import xarray as xr

import climode
from climode.data.open import interp_hybrid_levels, interp_pressure_levels
from climode.errors import DataError

NCL_DIR = "/usr/share/ncarg/data/cdf"

KNOT = 1852.0 / 3600.0


def test_single_cam_file_is_canonical_and_lazy(tmp_path, cam_like):
    src = cam_like()
    path = tmp_path / "cam.h1.nc"
    src.to_netcdf(path)
    ds = climode.open_dataset(path)
    assert list(ds.data_vars) == ["U850", "V850", "PSL"]
    for v in ds.data_vars:
        assert ds[v].dims == ("time", "lat", "lon")
        assert isinstance(ds[v].data, dask.array.Array)
    np.testing.assert_array_equal(ds["PSL"].values, src["PSL"].values)
    assert ds["U850"].attrs["standard_name"] == "eastward_wind"
    assert ds["V850"].attrs["standard_name"] == "northward_wind"
    assert ds["PSL"].attrs["standard_name"] == "air_pressure_at_mean_sea_level"
    assert ds["PSL"].attrs["units"] == "Pa" and ds["U850"].attrs["units"] == "m/s"
    assert ds["U850"].attrs["original_name"] == "U850"
    assert ds["U850"].attrs["original_long_name"].startswith("Zonal wind")
    t = ds["time"].values
    assert isinstance(t[0], cftime.DatetimeNoLeap)
    assert t[1] - t[0] == cftime.DatetimeNoLeap(2000, 1, 1, 6) - cftime.DatetimeNoLeap(2000, 1, 1)


def test_glob_of_files_out_of_order_is_concatenated_lazily(tmp_path, cam_like):
    full = cam_like(nt=6)
    # written in an order that differs from time order
    for name, sl in (("a", slice(4, 6)), ("b", slice(0, 2)), ("c", slice(2, 4))):
        full.isel(time=sl).to_netcdf(tmp_path / f"part_{name}.nc")
    ds = climode.open_dataset(str(tmp_path / "part_*.nc"))
    assert ds.sizes["time"] == 6
    assert isinstance(ds["PSL"].data, dask.array.Array)
    np.testing.assert_array_equal(ds["U850"].values, full["U850"].values)
    # a list of paths gives the same
    ds2 = climode.open_dataset(sorted(tmp_path.glob("part_*.nc")), variables=["PSL"])
    assert list(ds2.data_vars) == ["PSL"]
    np.testing.assert_array_equal(ds2["PSL"].values, full["PSL"].values)


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_zarr_store(tmp_path, cam_like):
    src = cam_like(calendar="360_day", nt=3)
    src.to_zarr(tmp_path / "fields.zarr", mode="w")
    ds = climode.open_dataset(tmp_path / "fields.zarr")
    assert isinstance(ds["V850"].data, dask.array.Array)
    np.testing.assert_array_equal(ds["V850"].values, src["V850"].values)
    assert isinstance(ds["time"].values[0], cftime.Datetime360Day)


def test_era5_like_file_descending_lat_signed_lon_and_pressure_levels(tmp_path, field):
    nt, nlat, nlon = 3, 4, 8
    lat = np.array([30.0, 20.0, 10.0, 0.0])  # descending, like ERA5
    lon = np.arange(-180.0, 180.0, 45.0)  # -180..135
    levels = np.array([1000.0, 850.0, 500.0])
    u = np.stack([field(nt, nlat, nlon, 10.0 * k) for k in range(3)], axis=1)  # (time, level, lat, lon)
    v = -u
    ds = xr.Dataset(
        {
            "u": (("valid_time", "isobaricInhPa", "latitude", "longitude"), u, {"units": "m s**-1"}),
            "v": (("valid_time", "isobaricInhPa", "latitude", "longitude"), v, {"units": "m s**-1"}),
            "msl": (("valid_time", "latitude", "longitude"), field(nt, nlat, nlon, 101000.0), {"units": "Pa"}),
        },
        coords={
            "valid_time": ("valid_time", np.arange(nt) * 6.0, {"units": "hours since 2020-01-01", "calendar": "proleptic_gregorian"}),
            "isobaricInhPa": ("isobaricInhPa", levels, {"units": "hPa"}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )
    ds.to_netcdf(tmp_path / "era5.nc")
    out = climode.open_dataset(tmp_path / "era5.nc")
    np.testing.assert_array_equal(out["lat"].values, [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(out["lon"].values, [0, 45, 90, 135, 180, 225, 270, 315])
    # the value at (lat 30, lon -45) of the 850 hPa level is at (lat index 3, lon 315) now
    j_src = list(lon).index(-45.0)
    np.testing.assert_allclose(out["U850"].values[:, 3, 7], u[:, 1, 0, j_src])
    np.testing.assert_allclose(out["V850"].values[:, 0, 4], v[:, 1, 3, 0])  # lat 0, lon -180 -> 180
    assert out["PSL"].attrs["original_name"] == "msl"
    assert out["time"].values[1] == np.datetime64("2020-01-01T06:00")


def test_pressure_interpolation_linear_in_log_pressure(tmp_path, field):
    """No 850 hPa level: the value between 925 and 700 hPa is weighted by log-pressure."""
    nt, nlat, nlon = 2, 3, 4
    levels_pa = np.array([100000.0, 92500.0, 70000.0])
    ua = np.stack([field(nt, nlat, nlon, 5.0 * k * k) for k in range(3)], axis=1)
    ds = xr.Dataset(
        {
            "ua": (("time", "plev", "lat", "lon"), ua, {"units": "m s-1"}),
            "va": (("time", "plev", "lat", "lon"), 2 * ua, {"units": "m s-1"}),
            "psl": (("time", "lat", "lon"), field(nt, nlat, nlon, 1000.0), {"units": "hPa"}),
        },
        coords={
            "time": ("time", [0.0, 1.0], {"units": "days since 1990-01-01", "calendar": "noleap"}),
            "plev": ("plev", levels_pa, {"units": "Pa", "standard_name": "air_pressure"}),
            "lat": np.linspace(0, 10, nlat),
            "lon": np.linspace(0, 30, nlon),
        },
    )
    ds.to_netcdf(tmp_path / "cmip.nc")
    out = climode.open_dataset(tmp_path / "cmip.nc")
    # hand computation
    w = (np.log(85000.0) - np.log(92500.0)) / (np.log(70000.0) - np.log(92500.0))
    expected = ua[:, 1] + w * (ua[:, 2] - ua[:, 1])
    np.testing.assert_allclose(out["U850"].values, expected, rtol=1e-6)
    np.testing.assert_allclose(out["V850"].values, 2 * expected, rtol=1e-6)
    np.testing.assert_allclose(out["PSL"].values, ds["psl"].values * 100.0, rtol=1e-6)
    assert out["PSL"].attrs["original_units"] == "hPa"
    # the same weight through the public helper, at one point
    da = ds["ua"].isel(time=0, lat=0, lon=0)
    got = float(interp_pressure_levels(da, "plev", levels_pa, 85000.0))
    assert got == pytest.approx(ua[0, 1, 0, 0] + w * (ua[0, 2, 0, 0] - ua[0, 1, 0, 0]), rel=1e-6)
    with pytest.raises(DataError, match="do not bracket"):
        interp_pressure_levels(da, "plev", levels_pa, 50000.0)


def _cam_hybrid(nt=2, nlat=3, nlon=4, with_coeffs=True):
    lev = np.array([300.0, 600.0, 800.0, 900.0, 990.0])  # CAM style 1000*(A+B), top to bottom
    hyam = np.array([0.3, 0.2, 0.05, 0.01, 0.0])
    hybm = lev / 1000.0 - hyam
    rng = np.random.default_rng(3)
    ps = (95000.0 + 6000.0 * rng.random((nt, nlat, nlon))).astype("float64")
    ps[0, 0, 0] = 84000.0  # 850 hPa below ground in this column
    u = rng.normal(size=(nt, lev.size, nlat, nlon)).astype("float64") * 10
    data = {
        "U": (("time", "lev", "lat", "lon"), u, {"units": "m/s"}),
        "V": (("time", "lev", "lat", "lon"), -u, {"units": "m/s"}),
        "PSL": (("time", "lat", "lon"), ps + 500.0, {"units": "Pa"}),
        "PS": (("time", "lat", "lon"), ps, {"units": "Pa"}),
    }
    if with_coeffs:
        data.update(hyam=("lev", hyam), hybm=("lev", hybm), P0=((), 100000.0, {"units": "Pa"}))
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", np.arange(nt) * 0.25, {"units": "days since 0001-01-01 00:00:00", "calendar": "noleap"}),
            "lev": ("lev", lev, {"units": "level", "long_name": "hybrid level at midpoints (1000*(A+B))", "positive": "down"}),
            "lat": np.linspace(-5, 5, nlat),
            "lon": np.linspace(0, 30, nlon),
        },
    )
    return ds, u, hyam, hybm, ps


def test_cam_hybrid_levels_interpolated_per_column(tmp_path):
    ds, u, hyam, hybm, ps = _cam_hybrid()
    ds.to_netcdf(tmp_path / "cam_h0.nc")
    out = climode.open_dataset(tmp_path / "cam_h0.nc")
    assert isinstance(out["U850"].data, dask.array.Array)
    got = out["U850"].values
    nt, _, nlat, nlon = u.shape
    for t in range(nt):
        for i in range(nlat):
            for j in range(nlon):
                p = hyam * 100000.0 + hybm * ps[t, i, j]
                if p[-1] < 85000.0:
                    assert np.isnan(got[t, i, j])  # below ground: no extrapolation
                    continue
                expected = np.interp(np.log(85000.0), np.log(p), u[t, :, i, j])
                assert got[t, i, j] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert np.isnan(got[0, 0, 0])
    np.testing.assert_allclose(out["V850"].values, -got)


def test_cam_hybrid_without_coefficients_is_an_error(tmp_path):
    ds, *_ = _cam_hybrid(with_coeffs=False)
    ds.to_netcdf(tmp_path / "cam_nocoef.nc")
    with pytest.raises(DataError, match=r"cam_nocoef\.nc.*'U'.*hybrid.*hyam, hybm, P0"):
        climode.open_dataset(tmp_path / "cam_nocoef.nc")


def test_hybrid_helper_matches_numpy_interp():
    hyam = xr.DataArray([0.1, 0.05, 0.0], dims="lev")
    hybm = xr.DataArray([0.5, 0.85, 0.95], dims="lev")
    ps = xr.DataArray([[[100000.0, 90000.0]]], dims=("time", "lat", "lon"))
    vals = xr.DataArray(np.array([[[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 8.0]]]]), dims=("time", "lev", "lat", "lon"))
    out = interp_hybrid_levels(vals, "lev", hyam, hybm, ps, 100000.0, 85000.0).values
    for j, surface in enumerate([100000.0, 90000.0]):
        p = np.array([0.1, 0.05, 0.0]) * 1e5 + np.array([0.5, 0.85, 0.95]) * surface
        assert out[0, 0, j] == pytest.approx(np.interp(np.log(85000.0), np.log(p), vals.values[0, :, 0, j]))


def test_360_day_calendar_time_bounds_midpoint_and_units(tmp_path, field):
    nt, nlat, nlon = 4, 3, 5
    end = 6.0 * (np.arange(nt) + 1)  # stamped at the end of 6-hour averages
    bnds = np.stack([end - 6.0, end], axis=1)
    ds = xr.Dataset(
        {
            "U850": (("time", "lat", "lon"), field(nt, nlat, nlon, 10.0), {"units": "knots"}),
            "V850": (("time", "lat", "lon"), field(nt, nlat, nlon, 3.6), {"units": "km/h"}),
            "PSL": (("time", "lat", "lon"), field(nt, nlat, nlon, 1000.0), {"units": "mb"}),
            "time_bnds": (("time", "nbnd"), bnds),
        },
        coords={
            "time": ("time", end, {"units": "hours since 2001-02-29 00:00:00", "calendar": "360_day", "bounds": "time_bnds"}),
            "lat": np.linspace(0, 10, nlat),
            "lon": np.linspace(100, 140, nlon),
        },
    )
    ds.to_netcdf(tmp_path / "cam_360.nc")
    out = climode.open_dataset(tmp_path / "cam_360.nc")
    t = out["time"].values
    assert t[0] == cftime.Datetime360Day(2001, 2, 29, 3)
    assert t[3] == cftime.Datetime360Day(2001, 2, 29, 21)
    assert "time_bnds" not in out.variables
    np.testing.assert_allclose(out["U850"].values, ds["U850"].values * KNOT, rtol=1e-6)
    np.testing.assert_allclose(out["V850"].values, ds["V850"].values / 3.6, rtol=1e-6)
    np.testing.assert_allclose(out["PSL"].values, ds["PSL"].values * 100.0, rtol=1e-6)
    assert out["U850"].attrs["original_units"] == "knots"


def test_duplicates_dropped_when_identical_and_rejected_when_different(tmp_path, cam_like):
    src = cam_like(nt=3)
    dup = xr.concat([src, src.isel(time=[1])], dim="time")  # time 1 twice, same data, last out of order
    dup.to_netcdf(tmp_path / "dup.nc")
    out = climode.open_dataset(tmp_path / "dup.nc")
    assert out.sizes["time"] == 3
    np.testing.assert_array_equal(out["PSL"].values, src["PSL"].values)

    other = src.isel(time=[1]).copy(deep=True)
    other["PSL"] = other["PSL"] + 1.0
    xr.concat([src, other], dim="time").to_netcdf(tmp_path / "dup_bad.nc")
    with pytest.raises(DataError, match=r"dup_bad\.nc: time .* appears twice with different PSL"):
        climode.open_dataset(tmp_path / "dup_bad.nc")


def test_surface_pressure_is_never_sea_level_pressure(tmp_path, cam_like):
    src = cam_like().rename({"PSL": "PS"})
    src.to_netcdf(tmp_path / "ps_only.nc")
    with pytest.raises(DataError) as err:
        climode.open_dataset(tmp_path / "ps_only.nc")
    msg = str(err.value)
    assert "ps_only.nc" in msg and "no PSL" in msg and "found U850, V850, PS" in msg
    assert "surface pressure" in msg and "\n" not in msg


def test_missing_units_need_a_source(tmp_path, cam_like):
    src = cam_like()
    del src["PSL"].attrs["units"]
    src.to_netcdf(tmp_path / "nounits.nc")
    with pytest.raises(DataError, match=r"nounits\.nc: variable 'PSL' \(PSL\) has no units"):
        climode.open_dataset(tmp_path / "nounits.nc")
    out = climode.open_dataset(tmp_path / "nounits.nc", units={"PSL": "hPa"})
    np.testing.assert_allclose(out["PSL"].values, src["PSL"].values * 100.0)
    src["U850"].attrs["units"] = "furlongs/fortnight"
    src["PSL"].attrs["units"] = "Pa"
    src.to_netcdf(tmp_path / "badunits.nc")
    with pytest.raises(DataError, match=r"badunits\.nc: variable 'U850'.*'furlongs/fortnight'"):
        climode.open_dataset(tmp_path / "badunits.nc")


def test_variable_mapping_overrides_lexicon(tmp_path, cam_like):
    src = cam_like().rename({"U850": "uwind_low", "V850": "vwind_low", "PSL": "pmsl"})
    src.to_netcdf(tmp_path / "custom.nc")
    with pytest.raises(DataError, match=r"no U850, V850, PSL found; found uwind_low, vwind_low, pmsl"):
        climode.open_dataset(tmp_path / "custom.nc")
    out = climode.open_dataset(
        tmp_path / "custom.nc", variables={"U850": "uwind_low", "V850": "vwind_low", "PSL": "pmsl"}
    )
    assert out["V850"].attrs["original_name"] == "vwind_low"
    np.testing.assert_array_equal(out["U850"].values, src["uwind_low"].values)


def test_bad_grids_and_files(tmp_path, cam_like, field):
    nav = xr.Dataset(
        {"PSL": (("time", "y", "x"), field(2, 3, 4, 1e5), {"units": "Pa"})},
        coords={
            "time": ("time", [0.0, 1.0], {"units": "days since 2000-01-01"}),
            "nav_lat": (("y", "x"), np.ones((3, 4))),
            "nav_lon": (("y", "x"), np.ones((3, 4))),
        },
    )
    nav.to_netcdf(tmp_path / "orca.nc")
    with pytest.raises(DataError, match=r"orca\.nc: curvilinear grid \(2-D 'nav_lat'"):
        climode.open_dataset(tmp_path / "orca.nc", variables=["PSL"])
    se = xr.Dataset(
        {"PSL": (("time", "ncol"), np.ones((2, 5)), {"units": "Pa"})},
        coords={"time": ("time", [0.0, 1.0], {"units": "days since 2000-01-01"}),
                "lat": ("ncol", np.arange(5.0)), "lon": ("ncol", np.arange(5.0))},
    )
    se.to_netcdf(tmp_path / "ne30.nc")
    with pytest.raises(DataError, match=r"ne30\.nc: unstructured grid"):
        climode.open_dataset(tmp_path / "ne30.nc", variables=["PSL"])
    with pytest.raises(DataError, match=r"file not found: .*nothere\.nc"):
        climode.open_dataset(tmp_path / "nothere.nc")
    with pytest.raises(DataError, match=r"no files match .*nothing_\*\.nc"):
        climode.open_dataset(str(tmp_path / "nothing_*.nc"))
    (tmp_path / "garbage.nc").write_text("this is not netcdf")
    with pytest.raises(DataError, match=r"cannot read .*garbage\.nc: a text file, not NetCDF; climode reads"):
        climode.open_dataset(tmp_path / "garbage.nc")
    (tmp_path / "cut.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match=r"cut\.nc: a NetCDF-4/HDF5 file that the reader rejects \(truncated"):
        climode.open_dataset(tmp_path / "cut.nc")


def test_time_step_counts_and_nan_handling(tmp_path, cam_like):
    cam_like(nt=1).to_netcdf(tmp_path / "one.nc")
    with pytest.raises(DataError, match=r"one\.nc: 1 time step\(s\), but at least 2"):
        climode.open_dataset(tmp_path / "one.nc")
    assert climode.open_dataset(tmp_path / "one.nc", min_times=1).sizes["time"] == 1

    src = cam_like(nt=3)
    src["V850"][1] = np.nan  # one step entirely unobserved: fine
    src["U850"][0, 0, 0] = -9999.0
    src["U850"].encoding["_FillValue"] = -9999.0
    src.to_netcdf(tmp_path / "gaps.nc")
    out = climode.open_dataset(tmp_path / "gaps.nc")
    assert np.isnan(out["U850"].values[0, 0, 0]) and np.isnan(out["V850"].values[1]).all()
    assert np.isfinite(out["V850"].values[[0, 2]]).all()

    src["PSL"][:] = np.nan
    src.to_netcdf(tmp_path / "allnan.nc")
    with pytest.raises(DataError, match=r"allnan\.nc: PSL is missing .* at every grid point and time step"):
        climode.open_dataset(tmp_path / "allnan.nc")
    # without the value pass the structure still loads
    assert "PSL" in climode.open_dataset(tmp_path / "allnan.nc", validate=False)


def test_offsets_from_reference_time_and_in_memory_dataset(tmp_path, field):
    ds = xr.Dataset(
        {"slp": (("timestep", "lat", "lon"), field(3, 2, 3, 1010.0), {"units": "millibar"})},
        coords={"timestep": ("timestep", np.array([12, 0, 6], dtype="int32")), "lat": [10.0, 20.0], "lon": [-10.0, 0.0, 10.0]},
        attrs={"reftime": "2010-03-04 06:00"},
    )
    ds.to_netcdf(tmp_path / "offsets.nc")
    out = climode.open_dataset(tmp_path / "offsets.nc", variables="PSL")
    assert list(out["time"].values) == [np.datetime64(f"2010-03-04T{h:02d}:00") for h in (6, 12, 18)]
    # step 0 h is the file's second; lon -10 moves from first to last column
    np.testing.assert_allclose(out["PSL"].values[0], ds["slp"].values[1][:, [1, 2, 0]] * 100.0)
    assert list(out["lon"].values) == [0.0, 10.0, 350.0]
    mem = climode.open_dataset(ds.assign_coords(timestep=ds.timestep.astype(float)), variables=["PSL"])
    np.testing.assert_allclose(mem["PSL"].values, out["PSL"].values)


ncl = pytest.mark.skipif(
    not all(os.path.exists(f"{NCL_DIR}/{n}storm.cdf") for n in "UVP"),
    reason="NCL storm files absent (Debian package libncarg-data not installed)",
)


@ncl
def test_ncl_storm_1996_real_data():
    ds = climode.open_dataset("ncl_storm_1996")
    assert ds.sizes == {"time": 64, "lat": 33, "lon": 36}
    assert isinstance(ds["U850"].data, dask.array.Array)
    assert ds["time"].values[0] == np.datetime64("1996-01-05T00:00")
    assert ds["time"].values[-1] == np.datetime64("1996-01-20T18:00")
    assert float(ds["lon"].min()) == 220.0 and float(ds["lon"].max()) == 307.5
    assert float(ds["lat"].min()) == 20.0 and float(ds["lat"].max()) == 60.0
    assert [ds[v].attrs["original_name"] for v in ds.data_vars] == ["u", "v", "p"]
    # fill value -9999 masked to NaN over about a fifth of every grid
    frac = float(ds["PSL"].isnull().mean())
    assert 0.18 < frac < 0.2
    psl = ds["PSL"].values
    assert 96000 < np.nanmin(psl) < 97000 and 104000 < np.nanmax(psl) < 105000  # Pa
    # V entirely missing at two steps only
    empty = np.isnan(ds["V850"].values).all(axis=(1, 2))
    assert empty.sum() == 2
    assert not np.isnan(ds["U850"].values).all(axis=(1, 2)).any()
    # the same data read directly from the files: raw u at lon -140 is lon 220 here
    raw = xr.open_dataset(f"{NCL_DIR}/Ustorm.cdf")
    np.testing.assert_array_equal(ds["U850"].values[:, :, 0], raw["u"].values[:, :, 0])


def test_cfgrib_like_forecast_uses_valid_time(tmp_path, field):
    """cfgrib layout: scalar 'time' (initialisation), 'step' dim, 'valid_time(step)', msl in Pa."""
    nt = 3
    ds = xr.Dataset(
        {"msl": (("step", "latitude", "longitude"), field(nt, 2, 3, 100000.0), {"units": "Pa"})},
        coords={
            "time": ((), 0.0, {"units": "hours since 2021-09-01 00:00", "calendar": "proleptic_gregorian"}),
            "step": ("step", [0.0, 3.0, 6.0], {"units": "hours"}),
            "valid_time": ("step", [12.0, 15.0, 18.0], {"units": "hours since 2021-09-01 00:00"}),
            "latitude": [10.0, 0.0],
            "longitude": [0.0, 1.0, 2.0],
        },
    )
    ds.to_netcdf(tmp_path / "ifs.nc")
    out = climode.open_dataset(tmp_path / "ifs.nc", variables=["PSL"])
    assert out["PSL"].dims == ("time", "lat", "lon")
    assert out["time"].values[0] == np.datetime64("2021-09-01T12:00")
    np.testing.assert_array_equal(out["PSL"].values[:, 0], ds["msl"].values[:, 1])  # lat flipped


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_canonical_output_round_trips(tmp_path, suffix):
    """A canonical dataset written with climode.io.write_dataset opens to the same dataset."""
    from climode.io import write_dataset

    ds, *_ = _cam_hybrid()
    ds.to_netcdf(tmp_path / "src.nc")
    first = climode.open_dataset(tmp_path / "src.nc")
    write_dataset(first, tmp_path / f"canon{suffix}")
    again = climode.open_dataset(tmp_path / f"canon{suffix}")
    xr.testing.assert_allclose(first.compute(), again.compute())
    assert again["U850"].attrs["original_name"] == "U"  # the first source's name survives
    assert isinstance(again["time"].values[0], cftime.DatetimeNoLeap)


def test_cam5_catalog_entry_opens_hybrid_level_files(tmp_path, monkeypatch):
    """The packaged cam5_hurricane entry reaches the hybrid-sigma path: U, V on `lev` -> U850, V850."""
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    monkeypatch.setenv("CLIMODE_CAM5", str(tmp_path))
    ds, *_ = _cam_hybrid()
    ds.to_netcdf(tmp_path / "cam5.cam.h1.0001-01-01-00000.nc")
    out = climode.open_dataset("cam5_hurricane")
    direct = climode.open_dataset(tmp_path / "cam5.cam.h1.0001-01-01-00000.nc")
    np.testing.assert_array_equal(out["U850"].values, direct["U850"].values)
    np.testing.assert_array_equal(out["V850"].values, direct["V850"].values)
    assert out["U850"].attrs["original_name"] == "U" and np.isnan(out["U850"].values[0, 0, 0])
    assert np.isfinite(out["U850"].values).sum() == out["U850"].size - 1


@pytest.mark.parametrize("mapping", [{"PSL": "PS"}, {"PSL": "sp"}, {"PSL": "pres_sfc"}])
def test_explicit_mapping_of_psl_to_surface_pressure_is_refused(tmp_path, cam_like, mapping):
    from climode.errors import ConfigError

    src = cam_like()
    src["PS"] = src["PSL"] - 1000.0
    src["sp"] = src["PS"]
    src["pres_sfc"] = src["PS"].assign_attrs(standard_name="surface_air_pressure")
    src.to_netcdf(tmp_path / "with_ps.nc")
    with pytest.raises(ConfigError) as err:
        climode.open_dataset(tmp_path / "with_ps.nc", variables={"U850": None, **mapping})
    msg = str(err.value)
    assert "with_ps.nc" in msg and f"PSL is mapped to {mapping['PSL']!r}" in msg and "\n" not in msg
    assert "surface pressure, not sea-level pressure" in msg and "map PSL to a sea-level pressure variable" in msg


def test_catalog_mapping_of_psl_to_surface_pressure_is_refused(tmp_path, cam_like):
    from climode.errors import ConfigError

    src = cam_like().rename({"PSL": "PS"})
    src.to_netcdf(tmp_path / "ps.nc")
    (tmp_path / "cat.yaml").write_text(
        f"datasets:\n  mine:\n    driver: netcdf\n    paths: {tmp_path}/ps.nc\n    variables: {{PSL: PS}}\n"
    )
    with pytest.raises(ConfigError, match=r"cat\.yaml, entry 'mine': PSL is mapped to 'PS', which is surface pressure"):
        climode.open_dataset("mine", catalog=tmp_path / "cat.yaml")


def _bounded(field, stamp: str, cell_methods: dict[str, str] | None = None):
    """6-hourly intervals [6k, 6k+6] h, time stamped at their 'end' or 'start'."""
    nt = 4
    lo = 6.0 * np.arange(nt)
    stamps = lo + 6.0 if stamp == "end" else lo
    data = {}
    for v, offset in (("U850", 1.0), ("V850", 2.0), ("PSL", 1e5)):
        attrs = {"units": "Pa" if v == "PSL" else "m/s"}
        if cell_methods and v in cell_methods:
            attrs["cell_methods"] = cell_methods[v]
        data[v] = (("time", "lat", "lon"), field(nt, 2, 3, offset), attrs)
    data["time_bnds"] = (("time", "nbnd"), np.stack([lo, lo + 6.0], axis=1))
    return xr.Dataset(data, coords={
        "time": ("time", stamps, {"units": "hours since 2001-01-01", "calendar": "noleap", "bounds": "time_bnds"}),
        "lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})


def _hours(out):
    return [(t - cftime.DatetimeNoLeap(2001, 1, 1)).total_seconds() / 3600 for t in out["time"].values]


@pytest.mark.parametrize(
    "stamp, methods, expected",
    [
        ("end", {v: "time: point" for v in ("U850", "V850", "PSL")}, [6, 12, 18, 24]),  # instantaneous: kept
        ("end", {v: "lat: lon: mean time: point" for v in ("U850", "V850", "PSL")}, [6, 12, 18, 24]),
        ("end", {v: "time: mean" for v in ("U850", "V850", "PSL")}, [3, 9, 15, 21]),  # averaged: midpoint
        ("start", {v: "time: sum (interval: 1 hour)" for v in ("U850", "V850", "PSL")}, [3, 9, 15, 21]),
        ("end", None, [3, 9, 15, 21]),  # no cell_methods, CAM-like end stamps: taken as averages
        ("start", None, [0, 6, 12, 18]),  # no cell_methods, not end-stamped: stamps kept
    ],
)
def test_time_bounds_follow_cell_methods(tmp_path, field, stamp, methods, expected):
    _bounded(field, stamp, methods).to_netcdf(tmp_path / "b.nc")
    out = climode.open_dataset(tmp_path / "b.nc")
    assert _hours(out) == expected
    assert ("midpoint" in out["time"].attrs.get("comment", "")) == (expected[0] == 3)


def test_time_bounds_with_mixed_cell_methods_is_an_error(tmp_path, field):
    methods = {"U850": "time: point", "V850": "time: point", "PSL": "time: mean"}
    _bounded(field, "end", methods).to_netcdf(tmp_path / "mixed.nc")
    with pytest.raises(DataError, match=r"mixed\.nc: PSL is averaged over time_bnds but U850, V850 are instantaneous"):
        climode.open_dataset(tmp_path / "mixed.nc")
    out = climode.open_dataset(tmp_path / "mixed.nc", variables=["U850", "V850"])
    assert _hours(out) == [6, 12, 18, 24]


def test_chunks_in_canonical_dims_reach_files_with_other_dim_names(tmp_path, field):
    nt = 6
    ds = xr.Dataset(
        {"PSL": (("timestep", "latitude", "longitude"), field(nt, 3, 4, 1e5), {"units": "Pa"})},
        coords={"timestep": ("timestep", np.arange(nt) * 6, {}), "reftime": ((), "1996-01-05 00:00"),
                "latitude": ("latitude", [1.0, 2.0, 3.0]), "longitude": ("longitude", [0.0, 1.0, 2.0, 3.0])},
    )
    ds.to_netcdf(tmp_path / "offsets.nc")
    out = climode.open_dataset(tmp_path / "offsets.nc", "PSL", chunks={"time": 1})
    assert out["PSL"].chunks[0] == (1,) * nt


def test_small_chunks_round_up_to_the_stored_chunks(tmp_path, cam_like):
    src = cam_like(nt=12)
    src.chunk({"time": 4}).to_zarr(tmp_path / "s.zarr", zarr_format=2)
    src.to_netcdf(tmp_path / "k.nc", encoding={v: {"chunksizes": (3, 5, 6)} for v in src.data_vars})
    src.to_netcdf(tmp_path / "c.nc")  # contiguous: any chunking
    assert climode.open_dataset(tmp_path / "s.zarr", chunks={"time": 1})["PSL"].chunks[0] == (4, 4, 4)
    assert climode.open_dataset(tmp_path / "k.nc", chunks={"time": 1})["PSL"].chunks[0] == (3,) * 4
    assert climode.open_dataset(tmp_path / "c.nc", chunks={"time": 1})["PSL"].chunks[0] == (1,) * 12
