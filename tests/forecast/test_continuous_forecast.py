"""The bundled model through the Python API and ``climode forecast``: anchors, continuity, the trained horizon."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import climode
from climode.errors import ClimodeError, HorizonWarning
from climode.forecast.sample import default_sample


@pytest.fixture(scope="module")
def model():
    return climode.load_model(device="cpu")


@pytest.fixture(scope="module")
def window():
    return default_sample().load()


def test_query_at_an_observation_returns_it(model, window):
    out = model.predict(window, "0h,+0h,21h")  # the first, the last and a middle input (sorted: 0, 21, 57 h)
    for k, t in enumerate((0, 2, -1)):
        for var in ("U850", "V850", "PSL"):
            np.testing.assert_allclose(out[var].values[k], window[var].values[t], rtol=1e-6, atol=1e-4)
    assert out["forecast_period"].values[2] == np.timedelta64(0, "s")


def test_off_grid_leads_lie_between_their_grid_leads(model, window):
    out = model.predict(window, "+0h,+1h,+1.5h,+2h,+3h,+4.5h,+6h")
    psl = out["PSL"].values
    change = np.abs(psl - psl[0]).reshape(len(psl), -1)
    norms = np.linalg.norm(change, axis=1)
    assert np.all(np.diff(norms[:5]) > 0)  # +0 < +1 < +1.5 < +2 < +3 h, growing continuously
    # +4.5 h is halfway along the step from +3 h to +6 h
    middle = np.linalg.norm((psl[5] - psl[4]).ravel())
    assert 0.2 < middle / np.linalg.norm((psl[6] - psl[4]).ravel()) < 0.8
    assert str(out["time"].values[5])[11:16] == "13:30"  # 09:00 + 4.5 h: the valid time is the time asked for
    odd = model.predict(window, "+5.9h")
    assert str(odd["time"].values[0])[11:19] == "14:54:00"
    assert odd["forecast_period"].values[0] == np.timedelta64(21240, "s")  # 5.9 h exactly, not 5:53:59


def test_beyond_the_trained_horizon_warns_once_and_says_so(model, window):
    horizon = model.max_lead  # the sidecar's longest trained lead (test_bundled pins its value)
    assert horizon > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        out = model.predict(window, f"+3h,+{horizon + 3:g}h,+{horizon + 9:g}h")
        again = model.predict(window, f"+{horizon + 9:g}h")
        quiet = model.predict(window, f"+{horizon:g}h")
    beyond = [w for w in caught if issubclass(w.category, HorizonWarning)]
    assert len(beyond) == 2 and f"+{horizon:g} h" in str(beyond[0].message)  # once per call, every call
    assert "2 requested time(s)" in out.attrs["climode_beyond_trained_horizon"]
    assert "climode_beyond_trained_horizon" in again.attrs and "climode_beyond_trained_horizon" not in quiet.attrs
    with pytest.raises(ClimodeError, match=r"8x the longest lead"):
        model.predict(window, f"+{8 * horizon + 1:g}h")


def test_non_physical_values_are_masked_with_a_warning(model, window):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        out = model.predict(window, "+120h")
    psl = out["PSL"].values
    finite = psl[np.isfinite(psl)]
    assert finite.size == 0 or (finite.min() >= 85_000 and finite.max() <= 110_000)
    masked = "climode_non_physical_masked" in out.attrs
    assert masked == any("non-physical" in str(w.message) for w in caught)


def test_cli_anchor_and_horizon(model, tmp_path):
    out = tmp_path / "f.nc"
    beyond = model.max_lead + 5
    proc = subprocess.run([sys.executable, "-m", "climode", "forecast", "--times", f"+0h,+1.5h,+{beyond:g}h", "--json",
                           "--output", str(out), "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("climode: warning:") == 1 and f"+{model.max_lead:g} h" in proc.stderr
    doc = json.loads(proc.stdout)
    assert [row["lead_hours"] for row in doc["times"]] == [0.0, 1.5, beyond]
    ds = xr.open_dataset(out)
    last = default_sample().isel(time=-1)
    np.testing.assert_allclose(ds["PSL"].values[0], last["PSL"].values, rtol=1e-6, atol=1e-3)
    assert "beyond" in ds.attrs["climode_beyond_trained_horizon"]
    for row in doc["times"]:
        for storm in row["storms"]:
            assert 850 <= storm["min_psl_hpa"] <= 1100
            assert storm["max_wind_ms"] is None or storm["max_wind_ms"] < 150
    far = subprocess.run([sys.executable, "-m", "climode", "forecast", "--times", "+3072h", "--output",
                          str(tmp_path / "g.nc"), "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert far.returncode == 2
    assert far.stderr.strip().count("\n") == 0 and far.stderr.startswith("climode: error: lead +3072 h")
