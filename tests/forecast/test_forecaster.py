import numpy as np
import pytest
import xarray as xr

import climode
from climode.errors import ClimodeError, DataError


def test_default_sample_is_the_papers_window(sample):
    hours = [(t - sample.time.values[0]).total_seconds() / 3600 for t in sample.time.values]
    assert hours == [0, 9, 21, 42, 57]


def test_output_schema_and_time_semantics(forecaster, sample):
    out = forecaster.predict(sample, "60h,63h")
    assert list(out.data_vars) == ["U850", "V850", "PSL"]
    assert out["PSL"].dims == ("time", "lat", "lon") and out["PSL"].attrs["units"] == "Pa"
    assert out["U850"].attrs["standard_name"] == "eastward_wind"
    assert out["PSL"].attrs["standard_name"] == "air_pressure_at_mean_sea_level"
    first = sample.time.values[0]
    assert out["forecast_reference_time"].values == sample.time.values[-1]
    assert [(t - first).total_seconds() / 3600 for t in out.time.values] == [60.0, 63.0]
    assert (out["forecast_period"].values / np.timedelta64(1, "h")).tolist() == [3.0, 6.0]
    assert out.attrs["Conventions"] == "CF-1.8" and out.attrs["climode_checkpoint_sha256"]
    assert out.sizes["lat"] == sample.sizes["lat"] and out.sizes["lon"] == sample.sizes["lon"]
    assert np.isfinite(out["PSL"].values).all()
    assert out["PSL"].attrs["original_name"] == "PSL"


def test_same_frame_whatever_else_is_requested(forecaster, sample):
    both = forecaster.predict(sample, "60h,63h")
    alone = forecaster.predict(sample, "+6h")
    xr.testing.assert_allclose(both.isel(time=[1]), alone, rtol=1e-5)


def test_interpolation_inside_the_window(forecaster, sample):
    out = forecaster.predict(sample, "30h,60h")
    assert out.sizes["time"] == 2 and (out["forecast_period"].values[0] / np.timedelta64(1, "h")) == -27.0


def test_cells_missing_in_every_input_are_nan_and_the_rest_finite(forecaster, sample):
    holed = sample.copy(deep=True)
    holed["PSL"][:, 3:6, 10:14] = np.nan
    holed["U850"][2, :, :] = np.nan  # a whole step of U missing: that step is unobserved
    out = forecaster.predict(holed, "+3h")
    assert np.isnan(out["PSL"].values[0, 3:6, 10:14]).all()
    assert np.isfinite(np.delete(out["PSL"].values[0], np.s_[3:6], axis=0)).all()
    assert np.isfinite(out["U850"].values).all()
    assert "unobserved" in out.attrs["climode_notes"]


def test_dask_backed_archive_reads_only_the_input_window(forecaster, tmp_path):
    """A 12-file archive (one file per day): predict computes only the blocks holding the inputs."""
    from dask.callbacks import Callback

    from climode.forecast.sample import _season

    season = _season()[["U850", "V850", "PSL"]]
    for day in range(12):
        season.isel(time=slice(8 * day, 8 * day + 8)).to_netcdf(tmp_path / f"obs_{day:02d}.nc")
    ds = climode.open_dataset(str(tmp_path / "obs_*.nc"))
    assert ds["PSL"].chunks[0] == (8,) * 12

    read: set[int] = set()

    class BlocksRead(Callback):
        def _pretask(self, key, dsk, state):
            if isinstance(key, tuple) and "open_dataset" in str(key[0]):
                read.add(int(key[1]))  # the block index along time = the file

    init = season.time.values[5 * 8 + 1]  # day 5, second step: the 5 newest steps span days 4 and 5
    with BlocksRead():
        out = ds.climode.predict("+3h", model=forecaster, init=str(init).replace(" ", "T"))
    assert read == {4, 5}  # only the two files holding the input window were read
    eager = forecaster.predict(season.load(), "+3h", init=str(init).replace(" ", "T"))
    np.testing.assert_allclose(out["PSL"].values, eager["PSL"].values, rtol=1e-5)


def test_written_file_is_cf_and_keeps_the_calendar(forecaster, sample, tmp_path):
    out = climode.run_forecast(sample, "60h..72h/3h", checkpoint=forecaster.path, output=tmp_path / "f.nc",
                               device="cpu")
    back = xr.open_dataset(tmp_path / "f.nc", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert back.time.encoding["calendar"] == "noleap"
    assert back.sizes["time"] == 5 and back.attrs["Conventions"] == "CF-1.8"
    np.testing.assert_allclose(back["PSL"].values, out["PSL"].values)


def test_written_attributes_follow_cf(forecaster, sample, tmp_path):
    import netCDF4

    climode.run_forecast(sample, "+3h,+6h", checkpoint=forecaster.path, basin="atlantic", output=tmp_path / "f.nc",
                         device="cpu")
    with netCDF4.Dataset(tmp_path / "f.nc") as nc:
        for coord in ("lat", "lon", "time", "forecast_period", "forecast_reference_time"):
            assert "_FillValue" not in nc[coord].ncattrs(), coord  # CF: coordinates have no missing values
        period = nc["forecast_period"]
        assert "dtype" not in period.ncattrs() and period.units == "hours" and list(period[:]) == [3.0, 6.0]
        assert nc["PSL"].standard_name == "air_pressure_at_mean_sea_level"
        assert "climode.run_forecast(<xarray.Dataset>, times='+3h,+6h'" in nc.history
        assert "basin='atlantic'" in nc.history and nc.history.endswith("f.nc')")


def test_other_grid_is_regridded_and_returned_on_its_own_grid(forecaster, sample):
    fine = sample.interp(lat=np.arange(5.0, 60.0, 0.75), lon=np.arange(255.0, 359.0, 0.75))
    out = forecaster.predict(fine, "+3h")
    assert out.sizes["lat"] == fine.sizes["lat"] and np.allclose(out.lat, fine.lat)
    assert np.isfinite(out["PSL"].values).mean() > 0.95


def test_basin_subset_and_errors(forecaster, sample):
    out = forecaster.predict(sample, "+3h", basin="lat=10:40,lon=280:330")
    assert float(out.lat.min()) >= 10 and float(out.lon.max()) <= 330
    with pytest.raises(DataError, match="region"):
        forecaster.predict(sample, "+3h", basin="WP")
    with pytest.raises(DataError, match="at least 2 observations"):
        forecaster.predict(sample.isel(time=[0]), "+3h")
    with pytest.raises(ClimodeError, match="cannot read time"):
        forecaster.predict(sample, "tomorrow")
    with pytest.raises(ClimodeError, match="deterministic"):
        forecaster.predict(sample, "+3h", members=3)


def test_data_without_the_checkpoints_variables_is_refused(forecaster, sample):
    with pytest.raises(DataError, match="no PSL found.*forecasts U850, V850, PSL: give data with those"):
        forecaster.predict(sample.drop_vars("PSL"), "+3h")


def test_inputs_and_init_choose_the_window(forecaster, sample):
    out = forecaster.predict(sample, "+3h", inputs="0h,21h,42h")
    assert out["forecast_reference_time"].values == sample.time.values[3]
    out = forecaster.predict(sample, "+3h", init="2000-08-02T18:00")
    assert out["forecast_reference_time"].values == sample.time.values[3]
    assert out.attrs["climode_notes"] == ""  # an observation time: nothing to say
    with pytest.raises(DataError, match="no data at input time"):
        forecaster.predict(sample, "+3h", inputs="1h,2h")


def test_init_between_observations_is_noted(forecaster, sample):
    out = forecaster.predict(sample, "+3h", init="2000-08-03T01:00")  # between the 42 h and 57 h observations
    assert out["forecast_reference_time"].values == sample.time.values[3]
    assert "--init 2000-08-03T01:00 is not an observation time" in out.attrs["climode_notes"]
    assert "2000-08-02T18:00:00" in out.attrs["climode_notes"]


def test_inputs_after_init_are_an_error(forecaster, sample):
    with pytest.raises(DataError, match="input time 2000-08-03T09:00:00 is after --init 2000-08-02T18:00") as info:
        forecaster.predict(sample, "+3h", inputs="0h,21h,57h", init="2000-08-02T18:00")
    assert "\n" not in str(info.value)


def test_no_data_in_the_input_window(forecaster, sample):
    empty = sample.copy(deep=True)
    empty["PSL"][:] = np.nan
    with pytest.raises(DataError, match="no data in the input window"):
        forecaster.predict(empty, "+3h")


def test_leads_past_the_decoder_step_limit_are_refused(forecaster, sample, monkeypatch):
    import climode.forecast.limits as module

    for spec in ("99999d", "+100000h"):  # the audit's 68 GB and 6 GB requests
        with pytest.raises(ClimodeError, match=f"at most {module.MAX_DECODER_STEPS} .*memory") as info:
            forecaster.predict(sample, spec)
        assert "\n" not in str(info.value)
    monkeypatch.setattr(module, "MAX_DECODER_STEPS", 8)  # 8 steps of 3 h after the observation before the time
    assert forecaster.predict(sample, "+3h,+24h").sizes["time"] == 2
    assert forecaster.predict(sample, "48h").sizes["time"] == 1  # interpolation: 6 steps after the 42 h input
    with pytest.raises(ClimodeError, match=r"requested time \+27 h needs 9 decoder steps of 3 h; .* at most 8"):
        forecaster.predict(sample, "+3h,+27h")


def test_many_times_cost_one_decoder_solve(forecaster, sample, monkeypatch):
    """64 requested times: one decoder ODE solve (NFE of its horizon alone) and one G step per 3 h time."""
    import climode.models.vidode as vidode

    solves, g_calls = [], []
    real = vidode.integrate

    def counting(func, *args, **kwargs):
        if func is forecaster.model.decoder_ode:
            solves.append(1)
        return real(func, *args, **kwargs)

    monkeypatch.setattr(vidode, "integrate", counting)
    hook = forecaster.model.decoder.register_forward_hook(lambda *a: g_calls.append(1))
    try:
        cost = {}
        for spec in ("+3h,+6h", "+192h", "+3h..+192h/3h"):
            solves.clear(), g_calls.clear()
            out, info = forecaster.predict_with_info(sample, spec)
            cost[spec] = (len(solves), info.nfe_decoder, len(g_calls), out.sizes["time"])
    finally:
        hook.remove()
    assert cost["+3h,+6h"][:3] == (1, cost["+3h,+6h"][1], 2)
    assert cost["+3h..+192h/3h"][0] == 1 and cost["+3h..+192h/3h"][3] == 64
    assert cost["+3h..+192h/3h"][1] == cost["+192h"][1]  # the same NFE as asking for the last time alone
    assert cost["+3h..+192h/3h"][2] == 64  # one Conv-Decoder step per requested time


def test_dataarray_accessor(forecaster, sample):
    da = sample[["U850", "V850", "PSL"]].to_dataarray(dim="variable")
    out = da.climode.predict("+3h", model=forecaster)
    assert out.dims[0] == "variable" and out.sizes["time"] == 1


NCL = "/usr/share/ncarg/data/cdf/Ustorm.cdf"


@pytest.mark.skipif(not __import__("os").path.exists(NCL), reason="Debian's libncarg-data is not installed")
def test_real_storm_data_on_non_square_cells(forecaster):
    obs = climode.open_dataset("ncl_storm_1996")
    out = forecaster.predict(obs, "+6h,+12h", init="1996-01-09T12:00")
    assert out.sizes["lat"] == obs.sizes["lat"] and out.sizes["lon"] == obs.sizes["lon"]  # 1.25 x 2.5 degrees
    used = obs["PSL"].sel(time=slice(None, "1996-01-09T12:00")).isel(time=slice(-5, None))  # the 5 inputs used
    missing_everywhere = used.isnull().all("time").values
    psl = out["PSL"].values
    assert np.isnan(psl[:, missing_everywhere]).all()
    assert np.isfinite(psl[:, ~missing_everywhere]).all()
    assert str(out["forecast_reference_time"].values).startswith("1996-01-09T12")


def test_conservative_regridding_round_trip(forecaster, sample):
    pytest.importorskip("xarray_regrid")
    fine = sample.interp(lat=np.arange(5.25, 59.0, 0.5), lon=np.arange(255.25, 358.0, 0.5))
    out = forecaster.predict(fine, "+3h", regrid_method="conservative")
    assert out.sizes["lat"] == fine.sizes["lat"] and np.allclose(out.lon, fine.lon)
    assert np.isfinite(out["PSL"].values).all() and "regrid_method='conservative'" in out.attrs["history"]
    bilinear = forecaster.predict(fine, "+3h")
    assert float(abs(out["PSL"] - bilinear["PSL"]).mean()) < 50.0  # the same forecast, regridded another way (Pa)
