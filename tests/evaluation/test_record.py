"""Real-data evaluation: every window of an evaluation-only record, the model against persistence and pysteps."""

import json
import os

import numpy as np
import pytest
import xarray as xr

from climode.cli.main import main
from climode.evaluation.record import RecordEvaluationConfig, evaluate_record, is_evaluation_only, record_windows
from climode.metrics.fields import lat_weights

NCL = "/usr/share/ncarg/data/cdf/Pstorm.cdf"


def test_windows_roll_over_the_record_at_its_own_spacing_and_skip_gaps():
    hours = np.array([0, 6, 12, 18, 24, 30, 36, 48, 54, 60], float)  # 42 h is absent
    spacing, windows = record_windows(hours, 3, [6.0, 12.0])
    assert spacing == 6.0
    firsts = [hours[w[0][-1]] for w in windows]  # initial times
    assert firsts == [12.0, 18.0, 24.0]  # 30 (target 42), 48 (input 42) and later do not fit
    inputs, targets = windows[0]
    assert hours[inputs].tolist() == [0, 6, 12] and hours[targets].tolist() == [18, 24]


def _record(path, fill_step=None):
    rng = np.random.default_rng(0)
    lat, lon = np.arange(20.0, 50.0, 3.0), np.arange(260.0, 302.0, 3.0)
    n = 10
    y, x = np.meshgrid(lat, lon, indexing="ij")
    t = np.arange(n)[:, None, None]
    psl = 101000 - 1500 * np.exp(-(((y - 35) / 6) ** 2 + ((x - 270 - 2 * t) / 6) ** 2)) + rng.normal(0, 30, (n, *y.shape))
    u, v = 5 + rng.normal(0, 2, psl.shape), rng.normal(0, 2, psl.shape)
    if fill_step is not None:
        v[fill_step] = -9999.0
        psl[:, :2, :2] = -9999.0  # missing corner cells, as in the NCL files
    ds = xr.Dataset({name: (("time", "lat", "lon"), a.astype(np.float32),
                            {"units": unit, "_FillValue": -9999.0, "missing_value": -9999.0})
                     for name, a, unit in (("U850", u, "m/s"), ("V850", v, "m/s"), ("PSL", psl, "Pa"))},
                    coords={"time": np.datetime64("1996-01-05") + np.arange(n) * np.timedelta64(6, "h"),
                            "lat": lat, "lon": lon})
    for name in ("U850", "V850", "PSL"):
        ds[name].encoding["_FillValue"] = -9999.0
        ds[name].attrs.pop("_FillValue")
    ds.to_netcdf(path)
    return path


def test_persistence_score_is_the_latitude_weighted_rmse_of_the_last_input(forecaster, tmp_path):
    path = _record(tmp_path / "rec.nc")
    results = evaluate_record(forecaster, RecordEvaluationConfig(data=str(path), baselines=["persistence"],
                                                                 bootstrap=50), progress=False)
    ds = xr.open_dataset(path)
    psl = ds["PSL"].values.astype(np.float64)
    w = lat_weights(ds["lat"].values)[:, None]
    # 5 inputs: initial times are steps 4..7 for +6 h and +12 h leads
    errors = [np.sum(w * (psl[i + 1] - psl[i]) ** 2) / (w.sum() * psl.shape[-1]) for i in range(4, 8)]
    assert results["meta"]["n_windows"] == 4
    assert results["persistence"]["leads"]["6"]["PSL"]["rmse"] == pytest.approx(np.sqrt(np.mean(errors)), rel=1e-5)
    assert set(results) == {"model", "persistence", "meta"} and results["meta"]["evaluation_only"]
    assert np.isfinite(results["model"]["leads"]["12"]["U850"]["rmse"])


def test_fill_values_and_missing_steps_are_masked_for_every_system(forecaster, tmp_path):
    path = _record(tmp_path / "rec.nc", fill_step=6)
    results = evaluate_record(forecaster, RecordEvaluationConfig(data=str(path), bootstrap=50), progress=False)
    for system in ("model", "persistence", "pysteps"):
        for v in ("U850", "V850", "PSL"):
            assert np.isfinite(results[system]["overall"][v]["rmse"]), (system, v)
    # V is missing at step 6: no score at that target, and as an input step it is unobserved, so persistence
    # of the window that ends at step 6 repeats step 5 (as the forecaster does)
    ds = xr.open_dataset(path)
    v = ds["V850"].values.astype(np.float64)
    w = lat_weights(ds["lat"].values)[:, None]
    mse = [np.sum(w * (v[target] - v[last]) ** 2) / (w.sum() * v.shape[-1]) for last, target in ((4, 5), (5, 7), (7, 8))]
    assert results["persistence"]["leads"]["6"]["V850"]["rmse"] == pytest.approx(np.sqrt(np.mean(mse)), rel=1e-5)
    assert results["meta"]["scored_cells"].startswith("cells where the truth and every")


def test_catalog_flag_marks_ncl_storm_as_evaluation_only():
    assert is_evaluation_only("ncl_storm_1996")
    assert not is_evaluation_only("synthetic_hurricanes")


@pytest.mark.skipif(not os.path.exists(NCL), reason="Debian's libncarg-data is not installed")
def test_ncl_storm_has_58_initial_times_of_five_inputs_six_hours_apart():
    import climode
    from climode.data.loader import hours_since

    ds = climode.open_dataset("ncl_storm_1996", validate=False)
    spacing, windows = record_windows(hours_since(ds["time"].values), 5, [6.0, 12.0])
    assert spacing == 6.0 and len(windows) == 58  # 64 steps - 4 earlier inputs - 2 leads


def test_cli_scores_a_file_marked_as_a_whole_record(checkpoint, tmp_path):
    path = _record(tmp_path / "rec.nc")
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["evaluate", "--data", str(path), "--whole-record", "--leads", "6,18", "--checkpoint", str(checkpoint),
                 "--baselines", "persistence", "--json", str(js), "--report", str(md), "--quiet", "--device", "cpu"]) == 0
    doc = json.loads(js.read_text())
    assert doc["meta"]["n_windows"] == 3 and doc["meta"]["lead_hours"] == [6.0, 18.0]
    assert doc["meta"]["record_spacing_hours"] == 6.0 and doc["meta"]["evaluation_only"]
    assert "evaluation-only record" in md.read_text() and "| persistence |" in md.read_text()
    assert main(["evaluate", "--data", str(path), "--leads", "6"]) == 2  # leads need a record
