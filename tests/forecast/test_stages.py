"""The Forecaster's stages on their own: input selection, limits, CF output, and the public call."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from climode.errors import ClimodeError, HorizonWarning
from climode.forecast.inputs import choose_inputs, observed_steps, stack_fields, static_channels
from climode.forecast.limits import beyond_trained_horizon, check_decoder_steps, mask_non_physical
from climode.forecast.output import cf_forecast, field_dataset, model_attributes
from climode.models.checkpoint_meta import CheckpointMeta


def _fields(steps=6, every=3):
    time = np.datetime64("2000-08-01T00:00") + np.arange(steps) * np.timedelta64(every, "h")
    shape = (steps, 2, 3)
    return xr.Dataset({"PSL": (("time", "lat", "lon"), np.full(shape, 101_000.0)),
                       "U850": (("time", "lat", "lon"), np.zeros(shape))},
                      coords={"time": time, "lat": [10.0, 11.0], "lon": [280.0, 281.0, 282.0]})


def test_inputs_are_the_newest_at_or_before_init():
    ds = _fields()
    idx, notes = choose_inputs(ds, 3, None, None)
    assert list(idx) == [3, 4, 5] and notes == []
    idx, notes = choose_inputs(ds, 3, None, "2000-08-01T10:00")  # between the 9 h and 12 h observations
    assert list(idx) == [1, 2, 3] and "not an observation time" in notes[0]


def test_a_step_with_a_variable_entirely_missing_is_unobserved():
    ds = _fields(steps=3)
    ds["U850"][1] = np.nan
    values = stack_fields(ds, ["PSL", "U850"])
    assert values.shape == (3, 2, 2, 3) and values.dtype == np.float32
    assert list(observed_steps(values)) == [True, False, True]
    cos = static_channels(["cos_lat"], np.array([0.0, 60.0]), np.zeros(3))
    np.testing.assert_allclose(cos[0, :, 0], [1.0, 0.5])


def test_limits_refuse_far_leads_and_mask_non_physical_values():
    with pytest.raises(ClimodeError, match="needs 1025 decoder steps of 1 h"):
        check_decoder_steps(1.0, np.array([0.0, 3.0]), [3.0 + 1025], 3.0)
    check_decoder_steps(0.0, np.array([0.0]), [1e9], 0.0)  # no decoder step: nothing to count
    with pytest.raises(ClimodeError, match="8x the longest lead"):
        beyond_trained_horizon(12.0, [100.0], 0.0)
    assert beyond_trained_horizon(None, [100.0], 0.0) == ""
    pred = np.zeros((1, 1, 2, 1, 2))  # [N, K, C, H, W]: PSL, U850
    pred[0, 0, 0] = 100_000.0
    pred[0, 0, 0, 0, 1] = 50_000.0  # PSL far below any sea-level pressure
    with pytest.warns(HorizonWarning, match="PSL 1 cell"):
        text = mask_non_physical(pred, ["PSL", "U850"])
    assert text.endswith("PSL 1 cell(s) outside [85000, 110000]") and np.isnan(pred[0, 0, 0, 0, 1]) and np.isfinite(pred[0, 0, 1]).all()


def test_cf_output_names_the_fields_times_and_model():
    source = _fields(steps=2)
    source["PSL"].attrs = {"units": "Pa", "original_name": "slp"}
    pred = np.zeros((1, 2, 2, 2, 3), dtype=np.float64)
    fields = field_dataset(pred, ["PSL", "U850"], source.lat.values, source.lon.values, None, {"U850": "m s-1"},
                           source)
    assert fields["PSL"].dims == ("time", "lat", "lon") and fields["PSL"].dtype == np.float32
    assert fields["PSL"].attrs == {"units": "Pa", "long_name": "Sea-level pressure",
                                   "standard_name": "air_pressure_at_mean_sea_level", "original_name": "slp"}
    init = source.time.values[-1]
    valid = [init + np.timedelta64(3, "h"), init + np.timedelta64(5 * 3600 + 54 * 60, "s")]
    out = cf_forecast(fields, valid, [3.0, 5.9], init, None, source, model_attributes("vidode", None, CheckpointMeta()), "made")
    assert list(out.forecast_period.values) == [np.timedelta64(3, "h"), np.timedelta64(5 * 3600 + 54 * 60, "s")]
    assert out.forecast_reference_time.values == init and out.attrs["Conventions"] == "CF-1.8"
    assert out.attrs["climode_model"] == "vidode" and out.attrs["climode_checkpoint"] == ""
    assert out.attrs["history"] == "made"


def test_predict_with_info_tells_what_predict_returns(forecaster, sample):
    fc, info = forecaster.predict_with_info(sample, "+3h,+6h")
    assert info.lead_hours == [3.0, 6.0] and list(fc.time.values) == info.valid_times
    assert info.input_times[-1] == fc.forecast_reference_time.values[()] and info.nfe_decoder > 0
    assert not hasattr(forecaster, "last_info")


def test_run_forecast_is_the_public_call_and_forecast_a_deprecated_name(forecaster, sample):
    import climode
    import climode.forecast

    assert climode.run_forecast is climode.forecast.run_forecast and not callable(climode.forecast)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HorizonWarning)
        with pytest.warns(DeprecationWarning, match="climode.run_forecast"):
            fc = climode.forecast.forecast(sample, "+3h", checkpoint=forecaster.path, device="cpu")
    assert "climode.run_forecast(<xarray.Dataset>, times='+3h'" in fc.attrs["history"]


def test_run_forecast_is_found_from_a_bare_import():
    code = "import climode; print(climode.run_forecast.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["climode.forecast.forecaster"]
