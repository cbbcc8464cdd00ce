"""Reference forecasts: persistence, pysteps extrapolation and wind advection on known motions."""

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from climode.errors import ConfigError, MissingDependencyError, ModelInputError
from climode.models.baselines import (
    ExtrapolationConfig,
    Persistence,
    PystepsExtrapolation,
    WindAdvection,
    WindAdvectionConfig,
)
from climode.models.baselines.reference import EARTH_RADIUS_M
from climode.models.base import ForecastOutput

HAS_CV2 = importlib.util.find_spec("cv2") is not None
FAST_VET = {"sectors": ((4, 2), (4, 2))}  # coarse VET pyramid: quick and exact for a rigid translation


def _blob(h, w, cx, cy, sigma=2.5):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))


def _centroid(f):
    f = np.where(np.isfinite(f), f, 0.0)
    yy, xx = np.mgrid[0 : f.shape[0], 0 : f.shape[1]]
    return (f * xx).sum() / f.sum(), (f * yy).sum() / f.sum()


# --------------------------------------------------------------------------- persistence
def test_persistence_picks_last_observed_frame_per_sample_with_masks():
    b, t, c, h, w = 2, 5, 2, 3, 4
    inputs = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1, 1).expand(b, t, c, h, w).clone()
    inputs[1] += 10.0  # sample 1 frames carry 10..14
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, 7.0, 8.0]])
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.float32)
    inputs[0, 2] = float("nan")  # unobserved frames may hold anything
    inputs[1, 3] = float("nan")
    queries = torch.tensor([[-1.0, 1.0, 2.9, 3.0, 10.0], [0.0, 2.9, 3.0, 7.5, 20.0]])
    out = Persistence(in_channels=c)(inputs, times, queries, input_mask=mask)
    assert isinstance(out, ForecastOutput) and out.frames.shape == (b, 5, c, h, w)
    picked = out.frames[:, :, 0, 0, 0]
    # sample 0 observed t=0,1,3; sample 1 observed t=2.5,3,8 (first observation before it)
    assert picked[0].tolist() == [0.0, 1.0, 1.0, 3.0, 3.0]
    assert picked[1].tolist() == [11.0, 11.0, 12.0, 12.0, 14.0]
    assert torch.isfinite(out.frames).all()
    assert torch.equal(out.frames[0, 3], inputs[0, 3])


def test_persistence_unsorted_times_and_1d_times():
    inputs = torch.randn(1, 3, 1, 2, 2)
    out = Persistence(in_channels=1)(inputs, torch.tensor([5.0, 0.0, 2.0]), torch.tensor([1.0, 4.0, 6.0]))
    assert torch.equal(out.frames[0, 0], inputs[0, 1])
    assert torch.equal(out.frames[0, 1], inputs[0, 2])
    assert torch.equal(out.frames[0, 2], inputs[0, 0])


def test_inputs_are_validated():
    model = Persistence(in_channels=2)
    with pytest.raises(ModelInputError, match="channels"):
        model(torch.zeros(1, 2, 3, 4, 4), torch.tensor([0.0, 1.0]), torch.tensor([2.0]))
    with pytest.raises(ModelInputError, match="no observed"):
        model(torch.zeros(2, 2, 2, 4, 4), torch.tensor([0.0, 1.0]), torch.tensor([2.0]),
              input_mask=torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ModelInputError, match="input_times"):
        model(torch.zeros(1, 2, 2, 4, 4), torch.tensor([0.0, float("nan")]), torch.tensor([2.0]))


# --------------------------------------------------------------------------- pysteps extrapolation
@pytest.fixture(scope="module")
def vet():
    return PystepsExtrapolation("VET", in_channels=1, motion_kwargs=FAST_VET)


def test_vet_translates_blob_at_known_speed(vet):
    h = w = 24
    speed = (1.0, 0.5)  # px per hour in x, y
    ts = [0.0, 1.0, 2.0]
    frames = np.stack([_blob(h, w, 6 + speed[0] * t, 10 + speed[1] * t) for t in ts])
    x = torch.tensor(frames, dtype=torch.float32)[None, :, None]
    out = vet(x, torch.tensor(ts), torch.tensor([2.0 + 3.0, 2.0 + 5.0])).frames
    for k, lead in enumerate((3.0, 5.0)):
        cx, cy = _centroid(out[0, k, 0].numpy())
        assert abs(cx - (6 + speed[0] * (2 + lead))) < 0.5
        assert abs(cy - (10 + speed[1] * (2 + lead))) < 0.5
    # the velocity itself is in px per hour
    v = vet.estimate_velocity(frames, np.array(ts))
    assert v[0, 10, 8] == pytest.approx(1.0, abs=0.1) and v[1, 10, 8] == pytest.approx(0.5, abs=0.1)


def test_vet_irregular_times_per_sample_give_the_same_rate(vet):
    h = w = 24
    per_sample_times = [[0.0, 1.0, 2.0], [0.0, 2.0, 3.0]]
    x = torch.tensor(
        np.stack([np.stack([_blob(h, w, 6 + t, 10) for t in ts]) for ts in per_sample_times]),
        dtype=torch.float32,
    )[:, :, None]
    times = torch.tensor(per_sample_times)
    queries = times[:, -1:] + torch.tensor([3.0, 5.0])  # +3 h, +5 h after each sample's last frame
    out = vet(x, times, queries).frames
    for s, ts in enumerate(per_sample_times):
        for k, lead in enumerate((3.0, 5.0)):
            cx, cy = _centroid(out[s, k, 0].numpy())
            assert abs(cx - (6 + ts[-1] + lead)) < 0.5, (s, lead, cx)
            assert abs(cy - 10) < 0.5
    v = vet.estimate_velocity(x[1, :, 0].numpy(), np.array(per_sample_times[1]))
    assert v[0, 10, 9] == pytest.approx(1.0, abs=0.1)


def test_vet_signed_field_nan_and_masked_frames(vet):
    """A normalised, signed field (negative anomaly) with a NaN patch, plus an ignored unobserved frame."""
    h = w = 24
    ts = [0.0, 1.0, 2.0, 3.0]
    frames = np.stack([0.8 - 2.0 * _blob(h, w, 6 + t, 10) for t in ts])
    frames[:3, 0:2, 20:22] = np.nan  # a missing patch far from the anomaly
    frames[3] = np.nan  # unobserved frame, all NaN
    x = torch.tensor(frames, dtype=torch.float32)[None, :, None]
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    out = vet(x, torch.tensor(ts), torch.tensor([1.0, 5.0]), input_mask=mask).frames[0, :, 0].numpy()
    assert np.array_equal(out[0], x[0, 1, 0].numpy(), equal_nan=True)  # inside the window: persistence
    anomaly = (0.8 - out[1]) / 2.0
    cx, cy = _centroid(anomaly)
    assert abs(cx - (6 + 5)) < 0.5 and abs(cy - 10) < 0.5
    assert np.isnan(out[1]).any()  # the missing patch stays missing
    assert np.isfinite(out[1][5:15, 5:18]).all()


def test_motion_channel_moves_every_channel():
    h = w = 24
    ts = [0.0, 1.0, 2.0]
    moving = np.stack([_blob(h, w, 6 + t, 12) for t in ts])
    still = np.stack([_blob(h, w, 12, 8) for _ in ts])
    x = torch.tensor(np.stack([moving, still], axis=1), dtype=torch.float32)[None]
    model = PystepsExtrapolation("VET", in_channels=2, motion_channel=0, motion_kwargs=FAST_VET)
    out = model(x, torch.tensor(ts), torch.tensor([6.0])).frames[0, 0].numpy()
    assert _centroid(out[0])[0] == pytest.approx(8.0 + 4.0, abs=0.5)  # last frame at x=8, +4 h
    assert _centroid(out[1])[0] == pytest.approx(12.0 + 4.0, abs=0.5)  # carried by channel 0's motion


def test_extrapolation_config_is_validated():
    with pytest.raises(ConfigError, match="method"):
        ExtrapolationConfig(method="optical")
    with pytest.raises(ConfigError, match="n_frames"):
        ExtrapolationConfig(method="VET", n_frames=4)
    cfg = ExtrapolationConfig(method="vet", in_channels=2)
    assert cfg.method == "VET" and not cfg.use_composition and not cfg.sample_z0 and not cfg.amp


@pytest.mark.skipif(HAS_CV2, reason="OpenCV is installed")
def test_lk_without_opencv_says_what_to_install():
    with pytest.raises(MissingDependencyError, match="opencv"):
        PystepsExtrapolation("LK", in_channels=1)


@pytest.mark.skipif(not HAS_CV2, reason="pysteps' LK needs OpenCV")
def test_lk_translates_blob():  # pragma: no cover - needs OpenCV
    h = w = 48
    ts = [0.0, 1.0, 2.0]
    frames = np.stack([_blob(h, w, 12 + 2 * t, 20, sigma=4) + 0.5 * _blob(h, w, 30 + 2 * t, 30, 3) for t in ts])
    x = torch.tensor(frames, dtype=torch.float32)[None, :, None]
    out = PystepsExtrapolation("LK", in_channels=1)(x, torch.tensor(ts), torch.tensor([5.0])).frames
    ref = _centroid(frames[-1])[0] + 2 * 3.0
    assert abs(_centroid(out[0, 0, 0].numpy())[0] - ref) < 0.5


# --------------------------------------------------------------------------- wind advection
LAT = np.arange(0.0, 41.0, 2.0)  # 21 rows, 2 degree spacing
LON = np.arange(100.0, 141.0, 1.0)  # 41 columns, 1 degree spacing


def _climate(u, v, field, lat=LAT):
    """[1, 1, 3, H, W] with channels (U850, V850, PSL-like field)."""
    h, w = field.shape
    x = np.stack([np.full((h, w), u), np.full((h, w), v), field])
    return torch.tensor(x, dtype=torch.float64)[None, None]


def test_wind_advection_eastward_10ms_moves_by_hand_computed_cells():
    row = 10  # latitude 20N
    field = _blob(len(LAT), len(LON), 12.0, row, sigma=2.0)
    model = WindAdvection(LAT, LON, in_channels=3)
    out = model(_climate(10.0, 0.0, field), torch.tensor([0.0]), torch.tensor([6.0, 12.0])).frames
    for k, lead in enumerate((6.0, 12.0)):
        cells = 10.0 * lead * 3600 / (EARTH_RADIUS_M * math.cos(math.radians(20.0)) * math.radians(1.0))
        line = out[0, k, 2, row].numpy()
        cx = (line * np.arange(len(LON))).sum() / line.sum()
        assert cx == pytest.approx(12.0 + cells, abs=0.02), (lead, cells)
    assert 2.0 < 10.0 * 6 * 3600 / (EARTH_RADIUS_M * math.cos(math.radians(20.0)) * math.radians(1.0)) < 2.1
    assert torch.equal(out[0, 0, 0], torch.full_like(out[0, 0, 0], 10.0))  # the wind itself is uniform


def test_wind_advection_northward_normalised_and_descending_latitude():
    lat_desc = LAT[::-1].copy()  # ERA5 order: row index grows southward
    field = _blob(len(LAT), len(LON), 20.0, 10.0, sigma=2.0)
    mean, std = np.array([1.0, -2.0, 5.0]), np.array([4.0, 8.0, 3.0])
    x = _climate(0.0, 10.0, field)
    xn = (x - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)
    model = WindAdvection(lat_desc, LON, in_channels=3, mean=mean, std=std)
    out = model(xn, torch.tensor([0.0]), torch.tensor([6.0])).frames[0, 0, 2].numpy()
    cells_y = 10.0 * 6 * 3600 / (EARTH_RADIUS_M * math.radians(2.0))
    line = (out * std[2] + mean[2])[:, 20]  # physical field along lon 120 (the blob, background 0)
    yc = (line * np.arange(len(LAT))).sum() / line.sum()
    # northward wind on a descending grid moves the blob to smaller row indices
    assert yc == pytest.approx(10.0 - cells_y, abs=0.02)


def test_zero_wind_is_persistence_exactly_and_nan_cells_travel():
    torch.manual_seed(0)
    h, w = len(LAT), len(LON)
    x = torch.randn(2, 3, 3, h, w)
    x[:, :, :2] = 0.0  # calm
    x[0, 2, 2, 5, 5] = float("nan")
    model = WindAdvection(LAT, LON, in_channels=3)
    times = torch.tensor([0.0, 3.0, 6.0])
    out = model(x, times, torch.tensor([6.0, 9.0, 30.0])).frames
    for k in range(3):
        assert torch.equal(torch.nan_to_num(out[:, k], nan=123.0), torch.nan_to_num(x[:, 2], nan=123.0))
    # with wind, a NaN cell stays NaN and is carried downstream; the rest matches the NaN-free field
    field = _blob(h, w, 12.0, 10.0, sigma=2.0)
    clean = _climate(10.0, 0.0, field)
    holed = clean.clone()
    holed[0, 0, 2, 10, 12] = float("nan")
    o_clean = model(clean, torch.tensor([0.0]), torch.tensor([6.0])).frames[0, 0, 2]
    o_holed = model(holed, torch.tensor([0.0]), torch.tensor([6.0])).frames[0, 0, 2]
    bad = torch.isnan(o_holed)
    assert bad.any() and bad.sum() <= 4
    rows, cols = torch.nonzero(bad, as_tuple=True)
    assert set(rows.tolist()) == {10} and set(cols.tolist()) <= {14, 15}  # about 2.07 cells east
    assert torch.equal(o_holed[~bad], o_clean[~bad])


def test_wind_nan_counts_as_calm_and_edges_hold():
    field = np.tile(np.linspace(0.0, 1.0, len(LON)), (len(LAT), 1))
    x = _climate(20.0, 0.0, field)
    x[0, 0, 0, 3, :] = float("nan")  # missing wind on one row: that row stays put
    out = WindAdvection(LAT, LON, in_channels=3)(x, torch.tensor([0.0]), torch.tensor([24.0])).frames[0, 0, 2]
    assert torch.equal(out[3], x[0, 0, 2, 3])
    assert (out[5, :8] == 0.0).all()  # western inflow boundary holds its value
    assert torch.isfinite(out).all()


def test_wind_wraps_longitude_on_a_global_grid():
    lon = np.arange(0.0, 360.0, 2.5)  # 144 columns
    lat = np.arange(-10.0, 11.0, 2.5)  # row 4 is the equator
    field = np.roll(_blob(len(lat), len(lon), 20.0, 4.0, sigma=1.5), -21, axis=1)  # centred on column 143
    model = WindAdvection(lat, lon, in_channels=3, wrap_lon=True)
    out = model(_climate(20.0, 0.0, field), torch.tensor([0.0]), torch.tensor([12.0])).frames[0, 0, 2].numpy()
    cells = 20.0 * 12 * 3600 / (EARTH_RADIUS_M * math.radians(2.5))  # about 3.1 cells at the equator
    line = np.roll(out[4], 20)  # undo the seam for the centroid
    cx = (line * np.arange(len(lon))).sum() / line.sum() - 20
    assert cx == pytest.approx(143.0 + cells - 144.0, abs=0.02)  # crossed the 0/360 seam
    with pytest.raises(ConfigError, match="global"):
        WindAdvection(LAT, LON, in_channels=3, wrap_lon=True)


def test_wind_from_normalizer_and_grid_checks():
    norm = SimpleNamespace(variables=("PSL", "U850", "V850"), mean=(1e5, 0.0, 0.0), std=(1e3, 1.0, 1.0))
    model = WindAdvection.from_normalizer(norm, LAT, LON)
    assert (model.config.u_channel, model.config.v_channel, model.config.in_channels) == (1, 2, 3)
    with pytest.raises(ConfigError, match="U850"):
        WindAdvection.from_normalizer(SimpleNamespace(variables=("PSL",), mean=(0.0,), std=(1.0,)), LAT, LON)
    with pytest.raises(ModelInputError, match="grid"):
        model(torch.zeros(1, 1, 3, 4, 4), torch.tensor([0.0]), torch.tensor([1.0]))
    with pytest.raises(ConfigError):
        WindAdvectionConfig(in_channels=3, u_channel=1, v_channel=1)


def test_wind_advection_in_float32_off_the_cpu_matches_float64(monkeypatch):
    from climode.models.baselines import reference
    from climode.training.host_syncs import count_host_traffic

    assert reference.advection_dtype(torch.device("cuda")) == torch.float32
    assert reference.advection_dtype(torch.device("mps")) == torch.float32
    field = _blob(len(LAT), len(LON), 12.0, 10, sigma=2.0)
    x = _climate(10.0, -4.0, field).float()
    model = WindAdvection(LAT, LON, in_channels=3)
    times, queries = torch.tensor([0.0]), torch.tensor([6.0, 12.0, 30.0])
    cpu = model(x, times, queries).frames
    monkeypatch.setattr(reference, "advection_dtype", lambda device: torch.float32)  # as on a GPU
    with count_host_traffic(host=[times, queries]) as traffic:  # times are host data
        gpu_like = model(x, times, queries).frames
    assert not traffic.float64 and traffic.n_syncs == 0
    assert torch.allclose(gpu_like, cpu, atol=1e-5)
