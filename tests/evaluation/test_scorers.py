"""The scorers the evaluation loop applies: leads keyed and grouped per window, kept frames only, storm centres."""

import math

import numpy as np
import pytest

from climode.evaluation.scorers import (
    FieldScorer,
    ImageScorer,
    StormCentres,
    TrackScorer,
    by_lead,
    lead_groups,
    lead_key,
    paired_rmse_ratios,
)

LAT = np.array([-10.0, 0.0, 10.0])
VARIABLES = ["PSL", "U850"]


def test_leads_are_keyed_without_trailing_zeros_and_sorted_by_value():
    assert lead_key(6.0) == "6" and lead_key(1.5) == "1.5"
    assert list(by_lead({12.0: "b", "overall": "x", 6.0: "a"}).items()) == [("6", "a"), ("12", "b")]


def test_windows_are_grouped_by_their_own_leads():
    groups = lead_groups(np.array([[3.0, 6.0], [6.0, 9.0], [3.0, 6.0]]))
    assert {k: v.tolist() for k, v in groups.items()} == {(3.0, 6.0): [0, 2], (6.0, 9.0): [1]}


def test_field_scores_follow_each_windows_leads():
    truth = np.zeros((2, 2, 2, 3, 4))  # [B, K, C, H, W]
    pred = truth.copy()
    pred[0] += 1.0  # window 0 (leads 3, 6) off by 1, window 1 (leads 6, 9) off by 2
    pred[1] += 2.0
    scorer = FieldScorer(VARIABLES, LAT)
    scorer.update(pred, truth, np.array([[3.0, 6.0], [6.0, 9.0]]))
    blocks = scorer.blocks()
    assert [k for k in blocks if k != "overall"] == [3.0, 6.0, 9.0]
    assert blocks[3.0]["PSL"]["rmse"] == pytest.approx(1.0)
    assert blocks[6.0]["PSL"]["rmse"] == pytest.approx(math.sqrt(2.5))  # one window of each
    assert blocks[6.0]["U850"]["mae"] == pytest.approx(1.5)
    assert blocks[9.0]["PSL"]["rmse"] == pytest.approx(2.0)
    assert blocks["overall"]["PSL"]["rmse"] == pytest.approx(math.sqrt(2.5))
    assert math.isnan(blocks["overall"]["PSL"]["acc"])  # no climatology, no ACC
    lo, hi = scorer.intervals(50, 0)["PSL"]["rmse"]
    assert 1.0 <= lo <= hi <= 2.0


def test_paired_ratio_compares_each_system_with_persistence_on_the_same_windows():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(6, 2, 2, 3, 4))
    noise = rng.normal(size=truth.shape)
    leads = np.tile([3.0, 6.0], (6, 1))
    fields = {"persistence": FieldScorer(VARIABLES, LAT), "model": FieldScorer(VARIABLES, LAT)}
    fields["persistence"].update(truth + noise, truth, leads)
    fields["model"].update(truth + 0.5 * noise, truth, leads)
    paired = paired_rmse_ratios(fields, 50, 0)
    assert list(paired) == ["model"]
    lo, hi = paired["model"]["PSL"]["rmse_ratio_to_persistence_ci95"]
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    assert paired_rmse_ratios({"model": fields["model"]}, 50, 0) == {}


def test_image_scores_count_only_the_kept_target_frames():
    truth = np.full((2, 3, 1, 8, 8), 0.5)
    pred = truth.copy()
    pred[0, 2] = 1.0  # a frame that is not kept: it must not count
    kept = np.array([[True, True, False], [True, True, True]])
    scorer = ImageScorer(["mse", "mae"])
    scorer.update(pred, truth, kept, np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    results = scorer.results()
    assert list(results["leads"]) == ["1", "2", "3"]
    assert results["overall"]["mse"] == 0.0 and results["leads"]["3"]["mae"] == 0.0
    assert scorer.intervals(20, 0)["mse"] == [0.0, 0.0]


def _storm_frame(lat, lon, clat, clon):
    y, x = np.meshgrid(lat, lon, indexing="ij")
    psl = 101_000.0 - 3_000.0 * np.exp(-(((y - clat) / 3.0) ** 2 + ((x - clon) / 3.0) ** 2))
    return np.stack([psl, np.zeros_like(psl), np.zeros_like(psl)])  # PSL, U850, V850


def test_storm_centres_and_a_perfect_track():
    lat, lon = np.arange(10.0, 40.0, 1.0), np.arange(260.0, 300.0, 1.0)
    centres = StormCentres(["PSL", "U850", "V850"], lat, lon)
    assert StormCentres.possible(["V850", "PSL", "U850", "T"]) and not StormCentres.possible(["PSL"])
    window = np.stack([_storm_frame(lat, lon, 25.0, 275.0 + 2 * k) for k in range(2)])[None]  # [1, K, C, H, W]
    (found,) = centres(window)
    assert [len(found[k]) for k in (0, 1)] == [1, 1]
    assert found[1][0].lat == pytest.approx(25.0, abs=0.2) and found[1][0].lon == pytest.approx(277.0, abs=0.2)
    missing = window.copy()
    missing[0, 1, 0] = np.nan  # no finite PSL: no centre
    assert centres(missing)[0][1] == []
    scorer = TrackScorer(centres)
    scorer.update(window, [found], np.array([[6.0, 12.0]]))
    scores = scorer.scores()
    assert TrackScorer.block(scores["overall"]) == {"track_error_km": 0.0, "pod": 1.0, "far": 0.0,
                                                    "min_psl_error_hpa": 0.0}
    assert list(TrackScorer.intensity(scores)["leads"]) == ["6", "12"]


def test_a_tiles_nan_padding_makes_up_no_storm_at_its_edge():
    """A tile is padded with NaN rows and columns to the model's stride; a low centred just beyond
    the data's north edge must stay unseen there (its contour is open), and a low inside is found
    alike with and without the padding."""
    lat, lon = np.arange(20.0, 57.0, 3.0), np.arange(280.0, 343.0, 3.0)
    padded_lat, padded_lon = np.append(lat, 59.0), np.append(lon, 343.0)  # one NaN row and column
    for clat, expected in ((60.0, []), (35.0, [(35.0, 310.0)])):
        frame = _storm_frame(lat, lon, clat, 310.0)
        padded = np.full((3, lat.size + 1, lon.size + 1), np.nan)
        padded[:, :-1, :-1] = frame
        for grid, f in (((lat, lon), frame), ((padded_lat, padded_lon), padded)):
            found = StormCentres(["PSL", "U850", "V850"], *grid).window(f[None])[0]
            assert [(round(c.lat), round(c.lon)) for c in found] == expected
