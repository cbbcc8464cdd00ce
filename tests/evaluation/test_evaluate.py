import copy
import dataclasses
import json
import math

import numpy as np
import pytest

from climode.errors import ConfigError
from climode.evaluation import EvaluationConfig, evaluate
from climode.evaluation.report import markdown_report, results_json
from climode.evaluation.scorers import StormCount
from climode.metrics.cyclones import Centre


def strict_loads(text):
    """json.loads that refuses NaN/Infinity literals (as allow_nan=False writers and other languages do)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)

SMALL = dict(n_sequences=1, windows=6, batch_size=3, bootstrap=50, climatology_sequences=1)


@pytest.fixture(scope="module")
def results(forecaster):
    return evaluate(forecaster, EvaluationConfig(**SMALL), progress=False)


def test_schema_has_identical_keys_for_every_system(results):
    systems = [k for k in results if k != "meta"]
    assert systems == ["model", "persistence", "advection"]
    shape = json.dumps({k: sorted(v) for k, v in results["model"]["overall"].items()}, sort_keys=True)
    for s in systems:
        assert set(results[s]) == {"overall", "leads"}
        assert list(results[s]["leads"]) == ["3", "6", "9", "12", "15"]
        for block in [results[s]["overall"], *results[s]["leads"].values()]:
            assert json.dumps({k: sorted(v) for k, v in block.items()}, sort_keys=True) == shape
    assert set(results["model"]["overall"]) == {"U850", "V850", "PSL", "track"}
    assert set(results["model"]["overall"]["track"]) == {"track_error_km", "pod", "far", "min_psl_error_hpa"}
    meta = results["meta"]
    assert meta["n_windows"] == 6 and meta["seeds"] == [20000] and meta["split"] == "test"
    lo, hi = meta["ci95"]["persistence"]["PSL"]["rmse"]
    assert lo <= results["persistence"]["overall"]["PSL"]["rmse"] <= hi
    json.dumps(results)  # serialisable


def test_persistence_error_grows_with_lead_and_scores_are_physical(results):
    rmse = [results["persistence"]["leads"][h]["PSL"]["rmse"] for h in ["3", "6", "9", "12", "15"]]
    assert all(a < b for a, b in zip(rmse, rmse[1:]))
    assert 5 < rmse[0] < 1000  # Pa, not normalised units
    assert 0 < results["persistence"]["overall"]["track"]["pod"] <= 1


def test_evaluation_is_reproducible(forecaster, results):
    again = evaluate(forecaster, EvaluationConfig(**SMALL), progress=False)
    assert again["model"]["overall"]["PSL"]["rmse"] == results["model"]["overall"]["PSL"]["rmse"]


def test_report_lists_every_system(results):
    text = markdown_report(results)
    assert "| persistence |" in text and "| model |" in text and "RMSE ratio to persistence" in text


def test_unknown_baseline_is_an_error():
    with pytest.raises(ConfigError, match="unknown baseline"):
        EvaluationConfig(baselines=["climatology"])


def test_json_writes_null_for_scores_that_could_not_be_computed(results):
    doc = copy.deepcopy(results)
    doc["model"]["overall"]["track"]["track_error_km"] = float("nan")
    doc["model"]["overall"]["PSL"]["rmse"] = np.float32(12.5)
    doc["meta"]["ci95"]["model"]["PSL"]["rmse"] = [float("-inf"), np.float64(3.0)]
    with pytest.raises(ValueError):
        json.dumps(doc, allow_nan=False, default=float)
    back = strict_loads(results_json(doc))
    assert back["model"]["overall"]["track"]["track_error_km"] is None
    assert back["model"]["overall"]["PSL"]["rmse"] == 12.5
    assert back["meta"]["ci95"]["model"]["PSL"]["rmse"] == [None, 3.0]
    strict_loads(results_json(results))


def test_wind_intensity_error_is_reported_beside_the_pinned_track_block(results):
    for s in ("model", "persistence", "advection"):
        assert set(results[s]["overall"]["track"]) == {"track_error_km", "pod", "far", "min_psl_error_hpa"}
        intensity = results["meta"]["intensity"][s]
        assert set(intensity["overall"]) == {"max_wind_error_ms", "max_wind_bias_ms", "min_psl_bias_hpa"}
        assert set(intensity["leads"]) <= set(results[s]["leads"])
    wind = results["meta"]["intensity"]["persistence"]["overall"]["max_wind_error_ms"]
    assert 0 < wind < 60  # m/s: persistence's matched storms keep roughly their intensity
    text = markdown_report(results)
    assert "max 850 hPa wind error m/s" in text
    assert f"{wind:.3g}" in text


def test_storm_counts_distinguish_storms_from_storm_times(results):
    meta = results["meta"]
    assert 1 <= meta["n_storms"] <= meta["n_storm_times"]
    assert "distinct truth storms" in markdown_report(results)


def test_one_storm_seen_by_overlapping_windows_is_one_storm():
    import xarray as xr

    hours = np.arange(0, 30, 3.0)
    seq = xr.Dataset(coords={"time": hours})
    count = StormCount()
    storm = lambda k: [Centre(20.0 + 0.3 * k, 300.0 - 0.3 * k, 99_000.0)]  # noqa: E731
    far = [Centre(45.0, 260.0, 99_500.0)]
    for start in (0, 2):  # two windows sharing valid times 3 and 4
        for k in range(start, start + 3):
            count.add(0, k, storm(k) + (far if k == 4 else []))
    assert count.storm_times == 7  # truth centres summed over windows and times
    assert count.distinct([seq]) == 2  # the moving storm and the one-time storm far away


def test_a_storm_scored_at_scattered_hours_is_one_storm():
    """Hourly data, targets at random hours: valid times a few hours apart still make one track;
    a gap longer than 6 h (the spacing of best-track archives) starts a new one."""
    import xarray as xr

    seq = xr.Dataset(coords={"time": np.arange(0, 48, 1.0)})
    count = StormCount()
    for hour in (0, 2, 5, 11, 14, 30):  # gaps 2, 3, 6, 3 h, then 16 h
        count.add(0, hour, [Centre(20.0 + 0.05 * hour, 300.0 - 0.05 * hour, 99_000.0)])
    assert count.distinct([seq]) == 2


def test_leads_are_each_windows_own(forecaster):
    # irregular extrapolation: the last observed frame varies, so the lead hours differ between windows
    irregular = copy.copy(forecaster)
    irregular.meta = dataclasses.replace(forecaster.meta, protocol={"name": "irregular_extrapolation", "window": 8,
                                                                    "n_observed": 2, "step_hours": 3.0})
    res = evaluate(irregular, EvaluationConfig(**{**SMALL, "tracks": False, "baselines": ["persistence"]}),
                   progress=False)
    leads = [float(h) for h in res["persistence"]["leads"]]
    assert len(leads) > 4  # a batch labelled with its first window's leads has only 4
    assert res["meta"]["lead_hours"] == leads
    rmse = [res["persistence"]["leads"][k]["PSL"]["rmse"] for k in res["persistence"]["leads"]]
    assert rmse[0] < rmse[-1]


def test_acc_climatology_comes_from_the_training_seasons(results):
    clim = results["meta"]["climatology"]
    assert clim["split"] == "train" and clim["seeds"] == [0]
    assert not set(clim["seeds"]) & set(results["meta"]["seeds"])
    assert "train split" in clim["source"]
    acc = results["persistence"]["overall"]["PSL"]["acc"]
    assert -1 <= acc <= 1 and math.isfinite(acc)


def test_climatology_time_mean_streams_over_dask_chunks():
    import dask
    import xarray as xr

    from climode.evaluation.runner import _time_mean

    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3, 4))
    a[:, 0, 0] = np.nan  # a cell that is never finite
    a[2, 1, 1] = np.nan
    b = rng.normal(size=(4, 3, 4))
    b[:, 0, 0] = np.nan
    seqs = [xr.Dataset({"PSL": (("time", "lat", "lon"), x)}).chunk({"time": 1}) for x in (a, b)]
    reads = []

    class Count(dask.callbacks.Callback):
        def _start(self, dsk):
            reads.append(len(dsk))

    with Count():
        out = _time_mean(seqs, ["PSL"])["PSL"]
    assert reads  # reduced by dask, not by loading the arrays
    expected = np.nanmean(np.concatenate([a, b]), axis=0)
    np.testing.assert_allclose(out[1:, 1:], expected[1:, 1:], rtol=1e-6)
    np.testing.assert_allclose(out[0, 1:], np.nanmean(np.concatenate([a, b])[:, 0, 1:], axis=0), rtol=1e-6)
    assert np.isnan(out[0, 0])


def test_region_scores_inside_the_basin(forecaster, results):
    """--region: the same checkpoint scored inside a sub-box of its domain: fewer cells, the box in the meta."""
    box = "lat=20:40,lon=280:320"
    inside = evaluate(forecaster, EvaluationConfig(**{**SMALL, "tracks": False, "baselines": ["persistence"],
                                                      "region": box}), progress=False)
    assert inside["meta"]["region"] == box
    assert results["meta"]["region"] == forecaster.meta.recipe_data.get("region")
    # a different domain gives different scores (the whole domain's are not reused)
    assert inside["persistence"]["overall"]["PSL"]["rmse"] != results["persistence"]["overall"]["PSL"]["rmse"]


def test_score_region_forecasts_the_domain_and_scores_the_basin(forecaster, results):
    """--score-region: the forecast runs on the whole domain, only the basin's cells are scored.

    Persistence is local, so scoring it inside a box of a larger forecast equals scoring it
    on a tile cut to the box; the model, which sees the flow around the box, may differ."""
    box = "lat=20:40,lon=280:320"
    small = {**SMALL, "baselines": ["persistence"]}
    tile = evaluate(forecaster, EvaluationConfig(**small, region=box), progress=False)
    inside = evaluate(forecaster, EvaluationConfig(**small, score_region=box), progress=False)
    meta = inside["meta"]
    assert meta["region"] == results["meta"]["region"] and meta["score_region"]["region"] == box
    assert meta["score_region"]["cells"] == [14, 27] and "score_region" not in tile["meta"]
    for v in ("U850", "V850", "PSL"):
        assert inside["persistence"]["overall"][v]["rmse"] == pytest.approx(tile["persistence"]["overall"][v]["rmse"],
                                                                           rel=1e-6)
        assert inside["persistence"]["overall"][v]["rmse"] != results["persistence"]["overall"][v]["rmse"]
    assert inside["persistence"]["overall"]["track"] == pytest.approx(tile["persistence"]["overall"]["track"],
                                                                      nan_ok=True)
    assert inside["model"]["overall"]["PSL"]["rmse"] != tile["model"]["overall"]["PSL"]["rmse"]
    from climode.evaluation.summary import summary_row

    domain = results["meta"]["region"] or results["meta"]["data"]
    assert summary_row(inside, leads=[3.0])["label"] == f"{box} (forecast on {domain})"
    # scoring the whole domain as the "basin" changes nothing but the meta
    whole = evaluate(forecaster, EvaluationConfig(**small, score_region="lat=-90:90,lon=0:360"), progress=False)
    plain = evaluate(forecaster, EvaluationConfig(**small), progress=False)
    assert whole["model"]["overall"] == plain["model"]["overall"]


def test_scored_cells_cut_a_box_across_the_seam():
    from climode.evaluation.runner import ScoredCells

    lat, lon = np.array([-10.0, 0.0, 10.0]), np.arange(0.0, 360.0, 90.0)
    values = np.arange(12.0).reshape(3, 4)
    cells = ScoredCells(lat, lon, "lat=-5:15,lon=260:10")
    np.testing.assert_array_equal(cells(values[None]), [[[7.0, 4.0], [11.0, 8.0]]])  # 270 then 360 (= 0)
    np.testing.assert_array_equal(cells.lon, [270.0, 360.0])
    assert ScoredCells(lat, lon)(values) is values


def test_score_region_is_refused_where_it_cannot_apply(tmp_path, capsys):
    from climode.cli.main import main

    with pytest.raises(ConfigError, match="region|basin"):
        EvaluationConfig(score_region="atlantis")
    assert main(["evaluate", "--data", "ncl_storm_1996", "--score-region", "NA"]) == 2
    assert "--score-region applies to held-out windows" in capsys.readouterr().err


def test_unknown_region_is_an_error():
    with pytest.raises(ConfigError, match="region|basin"):
        EvaluationConfig(region="atlantis")


def test_summary_row_divides_the_model_by_persistence(results, tmp_path, capsys):
    from climode.cli.main import main
    from climode.evaluation.summary import summary_row

    lead = float(results["meta"]["lead_hours"][0])
    row = summary_row(results, leads=[lead])
    expected = results["model"]["leads"][f"{lead:g}"]["PSL"]["rmse"] / \
        results["persistence"]["leads"][f"{lead:g}"]["PSL"]["rmse"]
    assert row["ratios"]["PSL"][0] == pytest.approx(expected)
    assert row["worst_ratio"] == pytest.approx(max(r[0] for r in row["ratios"].values()))
    assert row["track_km"][1] == pytest.approx(results["persistence"]["overall"]["track"]["track_error_km"])
    path = tmp_path / "r.json"
    path.write_text(results_json(results))
    assert main(["summarize", str(path), "--leads", f"{lead:g}"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 3 and f"{expected:.2f}" in out
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["summarize", str(tmp_path / "bad.json")]) == 2
    assert main(["summarize", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "is not JSON" in err[0] and "not found" in err[1]
