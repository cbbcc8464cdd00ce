import json

import numpy as np
import pytest

from climode.errors import ConfigError
from climode.evaluation import EvaluationConfig, evaluate
from climode.evaluation.report import markdown_report

SMALL = dict(n_sequences=1, windows=6, batch_size=3, bootstrap=50)


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
