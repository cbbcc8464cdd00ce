import math

import numpy as np
import pytest

from climode.errors import ConfigError, DataError
from climode.metrics import fields, image
from climode.metrics.cyclones import Centre
from climode.metrics.streaming import (
    ExactSum,
    FieldScoreAccumulator,
    ImageScoreAccumulator,
    TrackScoreAccumulator,
    bootstrap_ci,
    score_tracks,
)

LAT = np.linspace(-30, 30, 7)
LEADS = [6, 12, 18]


def _same(a, b):
    """Recursive equality of result dicts, NaN == NaN, floats compared exactly."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_exact_sum_is_order_independent():
    vals = [1e16, 1.0, -1e16, 3.3, 1e-8, -2.2] * 5
    fwd, back = ExactSum(), ExactSum()
    for v in vals:
        fwd.add(v)
    for v in reversed(vals):
        back.add(v)
    assert fwd.value == back.value == math.fsum(vals)
    assert sum(vals) != math.fsum(vals)  # naive summation would differ


@pytest.fixture
def field_batches():
    rng = np.random.default_rng(0)
    truth = {v: rng.normal(size=(6, 3, 7, 8)) * s for v, s in (("U850", 5.0), ("PSL", 300.0))}
    fc = {v: a + rng.normal(size=a.shape) * 0.3 * a.std() for v, a in truth.items()}
    fc["U850"][2, 1, 3, 4] = np.nan
    clim = {v: np.zeros((7, 8)) for v in truth}
    return fc, truth, clim


def _field_acc(fc, truth, clim, parts):
    acc = FieldScoreAccumulator(["U850", "PSL"], LAT, climatology=clim)
    for sl in parts:
        acc.update({k: v[sl] for k, v in fc.items()}, {k: v[sl] for k, v in truth.items()}, LEADS)
    return acc


def test_field_merge_of_halves_equals_one_pass(field_batches):
    fc, truth, clim = field_batches
    whole = _field_acc(fc, truth, clim, [slice(0, 6)]).compute()
    a = _field_acc(fc, truth, clim, [slice(0, 2), slice(2, 3)])
    b = _field_acc(fc, truth, clim, [slice(3, 6)])
    assert _same(a.merge(b).compute(), whole)
    c = _field_acc(fc, truth, clim, [slice(3, 6)]).merge(_field_acc(fc, truth, clim, [slice(0, 3)]))
    assert _same(c.compute(), whole)


def test_field_accumulator_agrees_with_direct_functions(field_batches):
    fc, truth, clim = field_batches
    res = _field_acc(fc, truth, clim, [slice(0, 6)]).compute()
    assert list(res) == [6, 12, 18, "overall"]
    for v in ("U850", "PSL"):
        assert res["overall"][v]["rmse"] == pytest.approx(fields.rmse(fc[v], truth[v], LAT))
        assert res["overall"][v]["mae"] == pytest.approx(fields.mae(fc[v], truth[v], LAT))
        assert res["overall"][v]["bias"] == pytest.approx(fields.bias(fc[v], truth[v], LAT))
        assert res["overall"][v]["acc"] == pytest.approx(fields.acc(fc[v], truth[v], clim[v], LAT))
        per_lead = fields.rmse(fc[v], truth[v], LAT, dims=0)
        for k, lead in enumerate(LEADS):
            assert res[lead][v]["rmse"] == pytest.approx(per_lead[k])
        assert res["overall"][v]["n_frames"] == 18
    assert 0 < res["overall"]["PSL"]["spectral_distance"]


def test_field_accumulator_errors(field_batches):
    fc, truth, clim = field_batches
    acc = FieldScoreAccumulator(["U850"], LAT)
    with pytest.raises(DataError, match="lead_hours"):
        acc.update(fc, truth, [6, 12])
    with pytest.raises(DataError, match="missing"):
        FieldScoreAccumulator(["V850"], LAT).update(fc, truth, LEADS)
    with pytest.raises(ConfigError):
        acc.merge(FieldScoreAccumulator(["PSL"], LAT))


def test_image_merge_and_agreement():
    rng = np.random.default_rng(2)
    y = rng.uniform(size=(4, 2, 3, 16, 16))
    x = np.clip(y + rng.normal(scale=0.1, size=y.shape), 0, 1)
    whole = ImageScoreAccumulator()
    whole.update(x, y, leads=[1, 2])
    a, b = ImageScoreAccumulator(), ImageScoreAccumulator()
    a.update(x[:1], y[:1], leads=[1, 2])
    a.update(x[1:3], y[1:3], leads=[1, 2])
    b.update(x[3:], y[3:], leads=[1, 2])
    res = whole.compute()
    assert _same(b.merge(a).compute(), res)
    assert res["overall"]["ssim"] == pytest.approx(image.ssim(x, y))
    assert res["overall"]["psnr"] == pytest.approx(image.psnr(x, y))
    assert res[2]["mse"] == pytest.approx(image.mse(x[:, 1], y[:, 1]))
    np.testing.assert_allclose(whole.per_window("mae"), image.mae(x, y, reduction="none").mean(axis=1))
    with pytest.raises(ConfigError):
        ImageScoreAccumulator(["fid"])


def _window(t0, n, dlat, miss_last=False, extra=False):
    truth = {t0 + 6 * k: [Centre(20.0, 280.0 + k, 97_000.0, 40.0)] for k in range(n)}
    fc = {t: [Centre(c.lat + dlat, c.lon, c.min_psl + 200, c.max_wind - 3) for c in cs] for t, cs in truth.items()}
    if miss_last:
        fc[max(fc)] = []
    if extra:
        fc[t0] = fc[t0] + [Centre(35.0, 250.0, 99_000.0)]
    lead = {t0 + 6 * k: 6 * (k + 1) for k in range(n)}
    return fc, truth, lead


def test_track_accumulator_merge_and_agreement_with_score_tracks():
    wins = [_window(0, 4, 0.5), _window(100, 3, 1.0, miss_last=True), _window(200, 5, 0.2, extra=True)]
    whole = TrackScoreAccumulator()
    for fc, tr, lead in wins:
        whole.update(fc, tr, lead_hours=lead)
    a, b = TrackScoreAccumulator(), TrackScoreAccumulator()
    a.update(*wins[0][:2], lead_hours=wins[0][2])
    b.update(*wins[1][:2], lead_hours=wins[1][2])
    b.update(*wins[2][:2], lead_hours=wins[2][2])
    res = whole.compute()
    assert _same(a.merge(b).compute(), res)
    all_fc = {t: cs for w in wins for t, cs in w[0].items()}
    all_tr = {t: cs for w in wins for t, cs in w[1].items()}
    direct = score_tracks(all_fc, all_tr)
    for k, v in direct.items():
        assert res["overall"][k] == pytest.approx(v, nan_ok=True)
    assert res["overall"]["misses"] == 1 and res["overall"]["false_alarms"] == 1
    assert res[18]["misses"] == 1 and res[18]["hits"] == 2  # the miss sits at the third lead
    ci = whole.confidence_intervals(n=200)
    assert ci["pod"][0] <= res["overall"]["pod"] <= ci["pod"][1]


def test_bootstrap_ci_is_reproducible_and_matches_normal_theory():
    rng = np.random.default_rng(5)
    v = rng.normal(loc=2.0, scale=1.0, size=400)
    lo, hi = bootstrap_ci(v, n=2000, seed=0)
    assert (lo, hi) == bootstrap_ci(v, n=2000, seed=0)
    assert lo < v.mean() < hi
    se = v.std(ddof=1) / math.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    # RMSE interval from per-window MSE via the sqrt transform
    mse = rng.uniform(1, 3, size=50)
    rlo, rhi = bootstrap_ci(mse, seed=1, transform=np.sqrt)
    mlo, mhi = bootstrap_ci(mse, seed=1)
    assert (rlo, rhi) == pytest.approx((math.sqrt(mlo), math.sqrt(mhi)), rel=1e-3)
    with pytest.raises(DataError):
        bootstrap_ci([])
    with pytest.raises(ConfigError):
        bootstrap_ci(v, n=0)


def test_field_confidence_intervals_bracket_the_score(field_batches):
    fc, truth, clim = field_batches
    acc = _field_acc(fc, truth, clim, [slice(0, 6)])
    ci = acc.confidence_intervals(n=300)
    r = acc.compute()["overall"]["PSL"]["rmse"]
    assert ci["PSL"]["rmse"][0] <= r <= ci["PSL"]["rmse"][1]
    assert acc.per_window("PSL", "mse").shape == (6,)
