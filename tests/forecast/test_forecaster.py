import numpy as np
import pytest
import xarray as xr

import climode
from climode.errors import CheckpointError, ClimodeError, DataError
from climode.forecast import load_model


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


def test_dask_backed_netcdf_stays_lazy(forecaster, sample, tmp_path):
    path = tmp_path / "obs.nc"
    sample.to_netcdf(path)
    ds = climode.open_dataset(str(path))
    assert ds["PSL"].chunks is not None
    out = ds.climode.predict("+3h", model=forecaster)
    assert ds["PSL"].chunks is not None  # the archive was not loaded
    ref = forecaster.predict(sample, "+3h")
    np.testing.assert_allclose(out["PSL"].values, ref["PSL"].values, rtol=1e-5)


def test_written_file_is_cf_and_keeps_the_calendar(forecaster, sample, tmp_path):
    out = climode.forecast(sample, "60h..72h/3h", checkpoint=forecaster.path, output=tmp_path / "f.nc", device="cpu")
    back = xr.open_dataset(tmp_path / "f.nc", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert back.time.encoding["calendar"] == "noleap"
    assert back.sizes["time"] == 5 and back.attrs["Conventions"] == "CF-1.8"
    np.testing.assert_allclose(back["PSL"].values, out["PSL"].values)


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


def test_checkpoint_for_other_variables_is_refused(forecaster, sample):
    with pytest.raises(DataError, match="PSL"):
        forecaster.predict(sample.drop_vars("PSL"), "+3h")
    with pytest.raises(CheckpointError):
        load_model("/nonexistent/model.json")


def test_inputs_and_init_choose_the_window(forecaster, sample):
    out = forecaster.predict(sample, "+3h", inputs="0h,21h,42h")
    assert out["forecast_reference_time"].values == sample.time.values[3]
    out = forecaster.predict(sample, "+3h", init="2000-08-02T18:00")
    assert out["forecast_reference_time"].values == sample.time.values[3]
    with pytest.raises(DataError, match="no data at input time"):
        forecaster.predict(sample, "+3h", inputs="1h,2h")


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
