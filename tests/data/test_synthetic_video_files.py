"""``climode data synth bouncing-balls / moving-mnist``: files the video datasets read back exactly."""

import subprocess
import sys

import numpy as np
import pytest

from climode.data.synthetic.moving_digits import FASHION_MNIST_DIR
from climode.data.synthetic.video_files import write_video_benchmark
from climode.data.video import open_video_dataset
from climode.errors import ConfigError


def synth(*args):
    return subprocess.run([sys.executable, "-m", "climode", "data", "synth", *args],
                          capture_output=True, text=True, timeout=120)


def test_bouncing_balls_file_reads_back_as_the_generated_split(tmp_path):
    out = tmp_path / "bouncing_balls" / "test" / "balls.npy"
    proc = synth("bouncing-balls", "--output", str(out), "--split", "test", "--sequences", "3", "--colored")
    assert proc.returncode == 0, proc.stderr
    stack = np.load(out)
    assert stack.shape == (20, 3, 32, 32, 3) and stack.dtype == np.uint8
    from_file = open_video_dataset(tmp_path / "bouncing_balls", split="test", size=32)
    generated = open_video_dataset("bouncing_balls", split="test", n_sequences=3, channels=3, colored=True)
    assert len(from_file) == 3
    for i in range(3):
        np.testing.assert_allclose(from_file.clip(i), generated.clip(i), atol=0.5 / 255 + 1e-6)
    assert np.ptp(from_file.clip(1)[:, 0]) > 0.5 and not np.allclose(from_file.clip(1)[:, 0], from_file.clip(1)[:, 1])


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_moving_mnist_file_from_real_idx_files(tmp_path):
    out = tmp_path / "moving_mnist" / "mnist.npy"
    proc = synth("moving-mnist", "--source", str(FASHION_MNIST_DIR), "--digits", "2", "--output", str(out),
                 "--sequences", "2", "--frames", "6", "--split", "test")
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).shape == (6, 2, 64, 64, 1)
    from_file = open_video_dataset(tmp_path / "moving_mnist", split="all", size=64, channels=1)
    generated = open_video_dataset("moving_mnist", split="test", n_sequences=2, n_frames=6)
    np.testing.assert_array_equal(from_file.clip(1), generated.clip(1))
    assert from_file.clip(1).max() > 0.5


def test_wrong_suffix_and_foreign_options_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=".npy"):
        write_video_benchmark("bouncing-balls", tmp_path / "x.nc", n_sequences=1)
    proc = synth("bouncing-balls", "--output", str(tmp_path / "x.npy"), "--digits", "2")
    assert proc.returncode == 2 and proc.stderr.strip() == "climode: error: --digits does not apply to bouncing-balls"
