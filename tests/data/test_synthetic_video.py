"""Bouncing balls physics and Moving Fashion-MNIST built from Debian's real IDX files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from climode.data.synthetic import moving_digits
from climode.data.synthetic.balls import generate_balls, render_balls, simulate_balls
from climode.data.synthetic.moving_digits import generate_moving_digits, load_glyphs, read_idx
from climode.data.video import open_video_dataset
from climode.errors import ConfigError, DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)",
)


def _idx_images(path: Path) -> np.ndarray:
    """Independent reader of a gzipped idx3 file: 16-byte header, then uint8 28 x 28 images."""
    raw = gzip.decompress(path.read_bytes())
    assert int.from_bytes(raw[:4], "big") == 0x803
    n, h, w = (int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)


# --------------------------------------------------------------------------- bouncing balls
def test_balls_shapes_range_and_determinism():
    a = generate_balls(4, seed=7)
    assert a.shape == (4, 20, 1, 32, 32) and a.dtype == np.float32
    assert a.min() == 0.0 and a.max() == 1.0
    np.testing.assert_array_equal(a, generate_balls(4, seed=7))
    assert not np.array_equal(a, generate_balls(4, seed=8))
    np.testing.assert_array_equal(a[:2], generate_balls(2, seed=7))  # prefix-consistent
    np.testing.assert_array_equal(a[3:], generate_balls(1, seed=7, start=3))  # one sequence alone
    rgb = generate_balls(1, n_frames=5, seed=7, channels=3)
    assert rgb.shape == (1, 5, 3, 32, 32)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])
    np.testing.assert_array_equal(rgb[:, :, :1], a[:1, :5])


def test_balls_energy_conservation_and_box():
    frames, st = generate_balls(30, n_frames=40, seed=1, return_state=True)
    r, size = st.radius, st.size
    assert r == pytest.approx(0.12 * 32)
    pos, vel = st.positions, st.velocities
    # balls stay inside the box, whole
    assert pos.min() >= r - 1e-9 and pos.max() <= size - r + 1e-9
    # total kinetic energy (equal masses) is conserved exactly through all collisions
    ke = (vel**2).sum(axis=(-1, -2))
    np.testing.assert_allclose(ke, ke[:, :1] * np.ones_like(ke), rtol=1e-12)
    speed = np.linalg.norm(vel, axis=-1)  # [N, T, B]
    vmax = speed.max()
    # a ball far from every other ball at frame t cannot collide before t+1: its speed is unchanged
    d = np.linalg.norm(pos[:, :, :, None] - pos[:, :, None, :], axis=-1)
    d[:, :, np.arange(3), np.arange(3)] = np.inf
    free = d.min(axis=-1)[:, :-1] > 2 * r + 2 * vmax + 1e-9
    dspeed = np.abs(np.diff(speed, axis=1))
    assert free.sum() > 1000
    assert dspeed[free].max() < 1e-12
    # and it moves in a straight line unless it is within reach of a wall
    near_wall = ((pos[:, :-1] < r + vmax) | (pos[:, :-1] > size - r - vmax)).any(axis=-1)
    straight = free & ~near_wall
    np.testing.assert_allclose(np.diff(pos, axis=1)[straight], vel[:, :-1][straight], atol=1e-12)
    # the test is not vacuous: ball-ball collisions changed speeds, walls flipped velocity signs
    assert (dspeed > 1e-3).sum() > 10
    flips = np.sign(vel[:, 1:]) * np.sign(vel[:, :-1]) < 0
    assert flips.sum() > 50


def test_balls_collisions_are_elastic():
    # head-on, equal masses: velocities are exchanged
    pos, vel = simulate_balls([[16.0, 8.0], [16.0, 24.0]], [[0.0, 1.0], [0.0, -1.0]], 12, 32, 3.0)
    np.testing.assert_allclose(vel[-1], [[0.0, -1.0], [0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(pos[-1, 0, 1] + pos[-1, 1, 1], 32.0, atol=1e-9)  # symmetric
    assert np.linalg.norm(pos[:, 0] - pos[:, 1], axis=-1).min() > 6.0 - 0.2 - 1e-9  # no deep overlap
    # off-centre hit of a ball at rest: momentum conserved, outgoing velocities orthogonal
    pos, vel = simulate_balls([[16.0, 6.0], [18.0, 20.0]], [[0.0, 1.5], [0.0, 0.0]], 12, 40, 3.0, substeps=50)
    np.testing.assert_allclose(vel[-1].sum(axis=0), [0.0, 1.5], atol=1e-12)
    assert np.linalg.norm(vel[-1, 1]) > 0.3
    assert abs(np.dot(vel[-1, 0], vel[-1, 1])) < 1e-12
    # a wall reflects the normal component only
    pos, vel = simulate_balls([[10.0, 26.25]], [[0.5, 1.0]], 6, 32, 3.0)
    np.testing.assert_allclose(vel[-1], [[0.5, -1.0]])
    # the path is folded at x = 32 - 3: 29.25 comes back as 28.75, no distance is lost
    np.testing.assert_allclose(pos[:, 0, 1], [26.25, 27.25, 28.25, 28.75, 27.75, 26.75], atol=1e-9)
    np.testing.assert_allclose(pos[:, 0, 0], 10.0 + 0.5 * np.arange(6), atol=1e-9)


def test_balls_rendering_matches_positions():
    frames, st = generate_balls(3, n_frames=10, n_balls=1, seed=3, return_state=True)
    img = frames[:, :, 0]
    mass = img.sum(axis=(-1, -2))
    np.testing.assert_allclose(mass, np.pi * st.radius**2, rtol=0.02)  # anti-aliased disc area
    centres = np.arange(32) + 0.5
    cy = (img.sum(axis=-1) * centres).sum(axis=-1) / mass
    cx = (img.sum(axis=-2) * centres).sum(axis=-1) / mass
    np.testing.assert_allclose(cy, st.positions[:, :, 0, 0], atol=0.02)
    np.testing.assert_allclose(cx, st.positions[:, :, 0, 1], atol=0.02)
    one = render_balls(np.array([[[5.5, 20.5]]]), 32, 2.0)
    assert one[0, 5, 20] == 1.0 and one[0, 5, 24] == 0.0 and one[0, 12, 20] == 0.0


def test_balls_bad_arguments():
    with pytest.raises(ConfigError, match="cannot place"):
        generate_balls(1, size=8, n_balls=6, radius=3.0)
    with pytest.raises(ConfigError, match="channels"):
        generate_balls(1, channels=2)


# --------------------------------------------------------------------------- moving Fashion-MNIST
@needs_fashion
def test_fashion_mnist_idx_files_read_exactly():
    train = load_glyphs(split="train")
    test = load_glyphs(split="test")
    assert train.shape == (60000, 28, 28) and test.shape == (10000, 28, 28) and train.dtype == np.uint8
    np.testing.assert_array_equal(train, _idx_images(FASHION / "train-images-idx3-ubyte.gz"))
    labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


@needs_fashion
def test_moving_digits_glyphs_motion_and_determinism():
    frames, st = generate_moving_digits(6, seed=5, return_state=True)
    assert frames.shape == (6, 20, 1, 64, 64) and frames.dtype == np.float32
    assert frames.min() == 0.0 and frames.max() <= 1.0 and frames.max() > 0.9
    np.testing.assert_array_equal(frames, generate_moving_digits(6, seed=5))
    np.testing.assert_array_equal(frames[4:], generate_moving_digits(2, seed=5, start=4))
    assert not np.array_equal(frames, generate_moving_digits(6, seed=6))
    # every frame is exactly the max-composition of the real Fashion-MNIST glyphs at the recorded corners
    images = _idx_images(FASHION / "train-images-idx3-ubyte.gz")
    pos = st.positions
    assert pos.min() >= 0 and pos.max() <= 64 - 28
    for k in range(6):
        for t in range(20):
            canvas = np.zeros((64, 64), np.uint8)
            for d in range(2):
                r, c = pos[k, t, d]
                canvas[r : r + 28, c : c + 28] = np.maximum(canvas[r : r + 28, c : c + 28], images[st.glyphs[k, d]])
            np.testing.assert_array_equal(np.round(frames[k, t, 0] * 255).astype(np.uint8), canvas)
    # constant speed 3.6 px/frame (up to rounding to whole pixels), reflected at the edges
    step = np.linalg.norm(np.diff(pos, axis=1), axis=-1)
    interior = (pos[:, :-1] > 4).all(axis=-1) & (pos[:, :-1] < 32).all(axis=-1)
    assert np.all(np.abs(step[interior] - 3.6) <= 1.5)
    # test split draws from the t10k images
    ft, stt = generate_moving_digits(1, n_frames=1, seed=5, split="test", return_state=True)
    tests = _idx_images(FASHION / "t10k-images-idx3-ubyte.gz")
    r, c = stt.positions[0, 0, 0]
    assert (np.round(ft[0, 0, 0, r : r + 28, c : c + 28] * 255) >= tests[stt.glyphs[0, 0]]).all()


def test_moving_digits_custom_glyphs_and_missing_files(tmp_path, monkeypatch):
    glyphs = np.zeros((3, 4, 4), np.uint8)
    glyphs[:, 1:3, 1:3] = 200
    f, st = generate_moving_digits(2, n_frames=5, size=16, n_digits=1, source=glyphs, channels=3, return_state=True)
    assert f.shape == (2, 5, 3, 16, 16)
    np.testing.assert_allclose(f.sum(axis=(-1, -2))[..., 0], 4 * 200 / 255, rtol=1e-6)  # one glyph, 2x2 lit
    monkeypatch.setattr(moving_digits, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        generate_moving_digits(1)
    with pytest.raises(DataError, match="not found"):
        generate_moving_digits(1, source=tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100))
    with pytest.raises(DataError, match="truncated"):
        load_glyphs(tmp_path)


# --------------------------------------------------------------------------- catalog wiring
def test_catalog_bouncing_balls_is_generated_lazily():
    train = open_video_dataset("bouncing_balls")
    test = open_video_dataset("bouncing_balls", split="test")
    assert len(train) == 1000 and len(test) == 50  # the paper's counts
    clip = test.clip(7)
    assert clip.shape == (20, 1, 32, 32)
    np.testing.assert_array_equal(clip, generate_balls(1, seed=2, start=7)[0])
    assert not np.array_equal(train.clip(7), clip)  # splits use different seeds
    arr = test.to_array(max_clips=3, frames=10)
    assert arr.shape == (3, 10, 1, 32, 32)
    np.testing.assert_array_equal(arr[1], test.clip(1)[:10])
    small = open_video_dataset("bouncing_balls", split="test", n_sequences=4, n_frames=8, n_balls=2, channels=3)
    assert len(small) == 4 and small.clip(0).shape == (8, 3, 32, 32)
    with pytest.raises(ConfigError, match="splits"):
        open_video_dataset("bouncing_balls", split="all")


@needs_fashion
def test_catalog_moving_mnist_uses_fashion_mnist():
    ds = open_video_dataset("moving_mnist", split="test", n_sequences=3)
    assert len(ds) == 3
    clip = ds.clip(2)
    assert clip.shape == (20, 1, 64, 64)
    np.testing.assert_array_equal(clip, generate_moving_digits(1, seed=2, split="test", start=2)[0])
    seq = ds.sequence(0, stop=5)
    assert seq.dims == ("time", "channel", "y", "x") and seq.shape == (5, 1, 64, 64)


def test_colored_balls_follow_the_grey_trajectories_in_their_own_colours():
    from climode.data.synthetic.balls import generate_balls

    grey, state = generate_balls(2, n_frames=5, channels=3, seed=4, return_state=True)
    color, color_state = generate_balls(2, n_frames=5, channels=3, seed=4, colored=True, return_state=True)
    np.testing.assert_array_equal(state.positions, color_state.positions)
    assert color.shape == grey.shape and 0.0 <= color.min() and color.max() <= 1.0
    ball = grey[:, :, 0] > 0.99  # fully covered pixels
    background = grey[:, :, 0] == 0.0
    assert color[:, :, :][np.broadcast_to(background[:, :, None], color.shape)].max() <= 0.35 + 1e-6
    assert color.transpose(0, 1, 3, 4, 2)[ball].min() >= 0.35 - 1e-6
    assert not np.allclose(color[:, :, 0], color[:, :, 1])  # not grey
    with pytest.raises(ConfigError, match="channels=3"):
        generate_balls(1, colored=True)
