"""Window protocols: the frames they pick, their randomness, and their errors."""

import subprocess
import sys

import numpy as np
import pytest

from climode.data.sampling import (
    CAM5Protocol,
    FixedProtocol,
    IrregularExtrapolation,
    IrregularInterpolation,
    RegularExtrapolation,
    RegularInterpolation,
    WindowSpec,
    get_protocol,
    sample_window,
    window_rng,
)
from climode.errors import ConfigError


def draws(protocol, n, seed=0, epoch=0):
    return [sample_window(protocol, seed, epoch, i) for i in range(n)]


def test_regular_extrapolation_is_five_then_five():
    spec = RegularExtrapolation().sample(window_rng(0, 0, 0))
    assert spec.input_offsets == (0, 1, 2, 3, 4)
    assert spec.target_offsets == (5, 6, 7, 8, 9)
    assert RegularExtrapolation().max_length == spec.length == 10
    assert RegularExtrapolation(n_inputs=3, n_targets=2).sample(window_rng(0, 0, 0)).target_offsets == (3, 4)


def test_regular_interpolation_even_inputs_odd_targets_in_between():
    spec = RegularInterpolation().sample(window_rng(0, 0, 0))
    assert spec.input_offsets == (0, 2, 4, 6, 8)
    assert spec.target_offsets == (1, 3, 5, 7)
    rec = RegularInterpolation(reconstruct=True).sample(window_rng(0, 0, 0))
    assert rec.target_offsets == rec.input_offsets


@pytest.mark.parametrize("kwargs, expected", [({"n_observed": 4}, 4), ({"sampling_rate": 0.3}, 3), ({}, 5)])
def test_irregular_extrapolation_observes_first_half_only(kwargs, expected):
    protocol = IrregularExtrapolation(window=20, **kwargs)
    specs = draws(protocol, 300)
    seen = set()
    for spec in specs:
        assert len(spec.input_offsets) == expected
        assert all(0 <= o < 10 for o in spec.input_offsets)
        assert spec.target_offsets == tuple(range(10, 20))
        seen.update(spec.input_offsets)
    assert seen == set(range(10))  # every first-half frame gets observed sometimes
    assert len({s.input_offsets for s in specs}) > 50  # genuinely random subsets


def test_irregular_interpolation_targets_are_the_unobserved_frames_inside():
    protocol = IrregularInterpolation(window=20, sampling_rate=0.5)
    for spec in draws(protocol, 200):
        assert len(spec.input_offsets) == 10
        assert spec.input_offsets[0] == 0 and spec.input_offsets[-1] == 19
        assert set(spec.input_offsets).isdisjoint(spec.target_offsets)
        assert set(spec.input_offsets) | set(spec.target_offsets) == set(range(20))
    rec = IrregularInterpolation(window=12, n_observed=6, reconstruct=True).sample(window_rng(1, 0, 0))
    assert rec.target_offsets == rec.input_offsets


def test_cam5_protocol_gaps_up_to_48h_then_3_hourly_targets():
    protocol = CAM5Protocol(n_inputs=5, n_targets=5, step_hours=3.0, max_gap_hours=48.0)
    gaps = []
    for spec in draws(protocol, 2000):
        hours = spec.input_hours()
        assert hours[0] == 0 and len(hours) == 5
        gap = np.diff(hours)
        assert np.all(gap >= 3) and np.all(gap <= 48) and np.all(gap % 3 == 0)
        gaps.extend(gap.tolist())
        assert np.array_equal(spec.target_hours(), hours[-1] + 3 * np.arange(1, 6))
        assert spec.length <= protocol.max_length
    assert protocol.max_length == 4 * 16 + 5 + 1
    counts = np.bincount(np.asarray(gaps, dtype=int) // 3, minlength=17)[1:]
    assert np.all(counts > 0.5 * counts.mean())  # every gap 3..48 h occurs, roughly uniformly
    three = CAM5Protocol(n_targets=3).sample(window_rng(0, 0, 0))
    assert len(three.target_offsets) == 3


def test_fixed_protocol_from_hours_reproduces_the_paper_example():
    protocol = FixedProtocol.from_hours([0, 9, 21, 42, 57], [60, 63, 66, 69, 72], step_hours=3)
    spec = protocol.sample(window_rng(0, 0, 0))
    assert spec.input_offsets == (0, 3, 7, 14, 19)
    assert spec.target_offsets == (20, 21, 22, 23, 24)
    assert spec.input_hours().tolist() == [0, 9, 21, 42, 57]
    assert spec.target_hours().tolist() == [60, 63, 66, 69, 72]
    assert protocol.max_length == 25
    with pytest.raises(ConfigError, match="multiples of step_hours"):
        FixedProtocol.from_hours([0, 10], [12], step_hours=3)


def test_windows_are_a_pure_function_of_seed_epoch_index():
    protocol = CAM5Protocol()
    a = draws(protocol, 20, seed=7, epoch=3)
    assert a == draws(protocol, 20, seed=7, epoch=3)
    assert a != draws(protocol, 20, seed=7, epoch=4)
    assert a != draws(protocol, 20, seed=8, epoch=3)
    # order of evaluation does not matter (each worker computes its own indices)
    assert [sample_window(protocol, 7, 3, i) for i in reversed(range(20))][::-1] == a


def test_windows_are_identical_in_another_process():
    code = (
        "from climode.data.sampling import CAM5Protocol, sample_window;"
        "print([sample_window(CAM5Protocol(), 5, 2, i).input_offsets for i in range(6)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str([sample_window(CAM5Protocol(), 5, 2, i).input_offsets for i in range(6)])


def test_sampling_does_not_import_torch():
    code = "import sys, climode.data.sampling; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_get_protocol_by_name_and_round_trip():
    protocol = get_protocol("cam5", n_targets=3, max_gap_hours=24)
    assert protocol == CAM5Protocol(n_targets=3, max_gap_hours=24.0)
    d = protocol.to_dict()
    assert d["name"] == "cam5"
    assert get_protocol(**d) == protocol
    fixed = FixedProtocol((0, 2), (3,), step_hours=None)
    assert get_protocol(**fixed.to_dict()) == fixed


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: get_protocol("nope"), "unknown protocol 'nope'"),
        (lambda: get_protocol("cam5", gap=3), "no parameter 'gap'"),
        (lambda: IrregularExtrapolation(window=20, n_observed=11), "cannot observe 11 frames out of 10"),
        (lambda: IrregularExtrapolation(n_observed=3, sampling_rate=0.5), "not both"),
        (lambda: IrregularInterpolation(sampling_rate=1.5), r"sampling_rate must be in \(0, 1\]"),
        (lambda: CAM5Protocol(max_gap_hours=50), "not a multiple of step_hours"),
        (lambda: CAM5Protocol(step_hours=None), "needs step_hours"),
        (lambda: RegularExtrapolation(n_inputs=0), "n_inputs must be an integer >= 1"),
        (lambda: WindowSpec((0, 3, 2), (4,)), "strictly increasing"),
        (lambda: WindowSpec((), (4,)), "at least one input"),
        (lambda: window_rng(-1, 0, 0), "seed must be a non-negative integer"),
    ],
)
def test_bad_protocols_say_what_is_wrong(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_frame_rate_protocol_mixes_interpolation_and_continuation():
    from climode.data.sampling import FrameRateProtocol, get_protocol, window_rng

    protocol = get_protocol("frame_rate", n_inputs=3, strides=[1, 2, 4], n_future=3)
    assert isinstance(protocol, FrameRateProtocol) and protocol.max_length == 12
    seen = {}
    for i in range(60):
        spec = protocol.sample(window_rng(0, 0, i))
        stride = spec.input_offsets[1]
        seen[stride] = spec
        assert spec.input_offsets == (0, stride, 2 * stride)
    assert sorted(seen) == [1, 2, 4]
    assert seen[4].target_offsets == (1, 2, 3, 5, 6, 7, 9, 10, 11)
    assert seen[1].target_offsets == (3, 4, 5)


def test_cam5_leads_fall_at_between_and_beyond_the_decoder_grid():
    from climode.data.sampling import CAM5Protocol

    hourly = CAM5Protocol(n_inputs=5, n_targets=5, step_hours=1.0, max_gap_hours=48.0, max_lead_hours=24.0)
    assert hourly.trained_lead_hours() == 24.0
    rng = np.random.default_rng(0)
    leads = np.concatenate([
        spec.target_hours() - spec.input_hours()[-1] for spec in (hourly.sample(rng) for _ in range(200))
    ])
    assert leads.min() >= 1 and leads.max() <= 24 and np.all(leads == np.round(leads))
    assert set(np.unique(leads)) == set(range(1, 25))  # every hour is drawn
    on_grid = leads % 3 == 0
    assert 0.2 < on_grid.mean() < 0.5 and (leads > 15).mean() > 0.2  # at, between and beyond +15 h
    assert CAM5Protocol().trained_lead_hours() == 15.0  # the bundled model's protocol: 5 three-hourly targets
    with pytest.raises(ConfigError, match="max_lead_hours"):
        CAM5Protocol(step_hours=3.0, max_lead_hours=9.0)
