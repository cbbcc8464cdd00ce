"""Frame-rate conversion and continuation of real encoded videos with the bundled RGB video model.

Videos are written by PyAV in the tests (32x32 or a little larger, a few frames).
mp4 (H.264) is lossy, so the byte-exact pass-through checks read a lossless
source (a PNG folder) and write a lossless target (a PNG folder or a GIF of
few colours).
"""

import dataclasses
import subprocess
import sys
import types
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from climode.data.video_io import open_video, read_times
from climode.errors import CheckpointError, ConfigError, DataError
from climode.forecast.video import (
    MirrorEnsemble,
    TimePlan,
    TwoWayInterpolation,
    extrapolate,
    interpolate,
    load_video_model,
)
from climode.models.base import ForecastOutput


def write_video(path, frames, fps=24, codec="libx264", pix_fmt="yuv420p"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_pngs(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"f{i}.png")
    return folder


def disc_video(n=6, size=32, speed=2.0, radius=5.0, start=8.0):
    """A bright disc moving right by ``speed`` px per frame over a dark background, anti-aliased."""
    c = np.arange(size) + 0.5
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    for t in range(n):
        cover = np.clip(radius + 0.5 - np.hypot(c[:, None] - size / 2, c[None, :] - (start + speed * t)), 0, 1)
        rgb = 20 + cover[..., None] * (np.array([230, 180, 60]) - 20)
        frames[t] = np.rint(rgb).astype(np.uint8)
    return frames


def centroid_x(frame):
    w = frame.astype(np.float64).sum(axis=2)
    w = np.clip(w - np.median(w), 0, None)
    return float((w * (np.arange(frame.shape[1]) + 0.5)[None, :]).sum() / w.sum())


class FirstFrame(torch.nn.Module):
    """Answers every query with its first input frame: the forward run gives the earliest
    observation, the time-reversed run the latest, so a blend shows each run's weight."""

    def forward(self, inputs, input_times, query_times, input_mask=None):
        return ForecastOutput(frames=inputs[:, :1].expand(-1, np.shape(query_times)[-1], -1, -1, -1))


@pytest.mark.parametrize(("weighting", "expected"), [("time", [0.5, 1.0, 1.5, 1.0]), ("equal", [1.0, 1.0, 1.0, 1.0])])
def test_two_way_weights_each_run_by_its_nearness_to_the_query(weighting, expected):
    # frames valued 0, 1, 2 observed at t = 0, 4, 8: the forward run answers 0, the reversed run 2, so
    # the blend is 2 s, s the query's fraction of its gap (1/4, 1/2, 3/4 in 0-4; 1/2 at t = 6 in 4-8)
    inputs = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2).contiguous()
    out = TwoWayInterpolation(FirstFrame(), weighting=weighting)(inputs, [0.0, 4.0, 8.0], [1.0, 2.0, 3.0, 6.0]).frames
    assert out[0, :, 0].flatten(1).tolist() == [[pytest.approx(e)] * 4 for e in expected]


class ShiftRight(torch.nn.Module):
    """Answers every query with the last input moved one pixel right (wrapping): not mirror-symmetric."""

    def forward(self, inputs, input_times, query_times, input_mask=None):
        last = inputs[:, -1:].roll(1, dims=-1)
        return ForecastOutput(frames=last.expand(-1, np.shape(query_times)[-1], -1, -1, -1))


class GainPerTile(torch.nn.Module):
    """Answers with the last input scaled by 0.9, 1.0 or 1.1 by tile: tiles that disagree."""

    def forward(self, inputs, input_times, query_times, input_mask=None):
        gain = 0.9 + 0.1 * (torch.arange(inputs.shape[0]) % 3).to(inputs.dtype)
        frames = inputs[:, -1:] * gain.view(-1, 1, 1, 1, 1)
        return ForecastOutput(frames=frames.expand(-1, np.shape(query_times)[-1], -1, -1, -1))


def test_mirror_ensemble_averages_the_model_over_its_mirror_images():
    frames = torch.rand(2, 3, 3, 4, 6, generator=torch.Generator().manual_seed(0))
    out = MirrorEnsemble(ShiftRight())(frames, [0.0, 1.0, 2.0], [3.0, 4.0]).frames
    last = frames[:, -1:]
    # mirrored left-right, a shift right is a shift left; upside down it stays a shift right
    expected = (last.roll(1, dims=-1) + last.roll(-1, dims=-1)) / 2
    assert out.shape == (2, 2, 3, 4, 6)
    torch.testing.assert_close(out, expected.expand_as(out))
    # a mirror-symmetric model (persistence) is unchanged by it
    persistence = MirrorEnsemble(FirstFrame())(frames, [0.0, 1.0, 2.0], [3.0]).frames
    torch.testing.assert_close(persistence, frames[:, :1])


def test_no_mirrors_runs_the_model_alone_and_differs_slightly(tmp_path):
    src = write_pngs(tmp_path / "src", disc_video(n=3))
    outputs = {}
    for mirrors in (True, False):
        fast = load_video_model(device="cpu", mirrors=mirrors)
        interpolate(open_video(src), tmp_path / f"out{mirrors}", factor=2, model=fast, progress=False)
        outputs[mirrors] = np.stack([np.asarray(Image.open(f)) for f in sorted((tmp_path / f"out{mirrors}").iterdir())])
    assert outputs[True].shape == outputs[False].shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(outputs[True][::2], outputs[False][::2])  # the sources pass through
    differ = np.abs(outputs[True][1::2].astype(int) - outputs[False][1::2].astype(int))
    assert 0 < differ.max() < 64  # the ensemble changes the new frames, a little


@pytest.fixture(scope="module")
def model():
    return load_video_model(device="cpu")


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "disc.mp4", disc_video())


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_factor_gives_k_n_minus_1_plus_1_frames_at_exact_times(mp4, model, tmp_path, factor):
    out = tmp_path / "out.mp4"
    summary = interpolate(mp4, out, factor=factor, model=model, progress=False)
    times = read_times(out)
    assert summary["frames_out"] == len(times) == factor * 5 + 1
    np.testing.assert_allclose(times, np.arange(factor * 5 + 1) / (24 * factor), atol=1e-9)
    assert open_video(out).size == (32, 32)


@pytest.mark.parametrize("fps, expected", [(60, 13), (30, 7), (10, 3), (48, 11)])
def test_fps_gives_every_multiple_of_the_new_period_inside_the_video(mp4, model, tmp_path, fps, expected):
    out = tmp_path / "out.mp4"
    interpolate(mp4, out, fps=fps, model=model, progress=False)
    times = read_times(out)
    assert len(times) == expected  # floor(5/24 * fps) + 1
    np.testing.assert_allclose(times, np.arange(expected) / fps, atol=1e-9)


def test_explicit_times_are_kept_and_times_past_the_end_refused(mp4, model, tmp_path):
    out = tmp_path / "out.mp4"
    interpolate(mp4, out, times=[0.0, 0.01, 0.05, 0.2], model=model, progress=False)
    np.testing.assert_allclose(read_times(out), [0.0, 0.01, 0.05, 0.2], atol=1e-4)
    with pytest.raises(ConfigError, match="after the last frame"):
        interpolate(mp4, tmp_path / "late.mp4", times=[0.1, 0.5], model=model, progress=False)
    assert not (tmp_path / "late.mp4").exists()


def test_time_plan_positions_are_exact_fractions():
    rate = Fraction(24)
    plan = TimePlan.fps(Fraction(60), rate)
    assert plan.in_gap(0) == [0, Fraction(2, 5), Fraction(4, 5)]
    assert plan.in_gap(2) == [2, Fraction(12, 5), Fraction(14, 5)]
    assert plan.in_gap(1) == [Fraction(6, 5), Fraction(8, 5)]
    assert plan.count(6) == 13
    assert TimePlan.factor(4, rate).count(6) == 21


def test_original_frames_pass_through_byte_exact_and_new_frames_differ(tmp_path, model):
    frames = disc_video()
    source = write_pngs(tmp_path / "src", frames)
    out = tmp_path / "out"  # no suffix: a folder of PNGs (lossless)
    interpolate(source, out, factor=3, model=model, progress=False)
    written = [np.asarray(Image.open(p)) for p in sorted(out.iterdir())]
    assert len(written) == 16
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(written[3 * i], frame)
    assert not np.array_equal(written[1], frames[0]) and not np.array_equal(written[1], frames[1])
    gif = tmp_path / "out.gif"  # a GIF of few colours is lossless too
    flat = (frames // 64 * 64).astype(np.uint8)
    interpolate(write_pngs(tmp_path / "flat", flat), gif, factor=2, model=model, progress=False)
    with av.open(str(gif)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 11
    for i, frame in enumerate(flat):
        np.testing.assert_array_equal(decoded[2 * i], frame)


def test_translating_disc_at_2x_lands_halfway_within_a_pixel(tmp_path, model):
    frames = disc_video(n=4, speed=3.0)
    truth = disc_video(n=7, speed=1.5)  # the disc at every half frame
    out = tmp_path / "out"
    interpolate(write_pngs(tmp_path / "src", frames), out, factor=2, model=model, progress=False)
    written = [np.asarray(Image.open(p)).astype(np.float64) for p in sorted(out.iterdir())]
    for i in range(3):
        halfway = (centroid_x(frames[i]) + centroid_x(frames[i + 1])) / 2
        assert abs(centroid_x(written[2 * i + 1]) - halfway) < 1.0, (i, centroid_x(written[2 * i + 1]), halfway)
        # closer to the true halfway frame than a cross-fade (whose centroid is halfway too)
        blend = (frames[i].astype(np.float64) + frames[i + 1]) / 2
        assert np.mean((written[2 * i + 1] - truth[2 * i + 1]) ** 2) < np.mean((blend - truth[2 * i + 1]) ** 2)


def test_tiling_is_seamless_on_a_smooth_gradient(tmp_path, model):
    h, w = 56, 88  # larger than the 32-pixel tiles, and not a multiple of them
    y, x = np.mgrid[0:h, 0:w]
    still = np.stack([40 + 150 * x / w, 40 + 100 * y / h, 60 + 60 * (x + y) / (w + h)], axis=-1)
    frames = np.repeat(np.rint(still).astype(np.uint8)[None], 3, axis=0)
    pred = model.predict(frames, [0.0, 4.0, 8.0], [2.0])[0].astype(np.float64)
    assert pred.shape == (h, w, 3)
    rough = [np.abs(np.diff(pred, n=2, axis=axis)).max() for axis in (0, 1)]
    assert max(rough) <= 4.0, rough  # the gradient itself has a second difference of at most 1
    assert np.abs(pred - still).mean() < 4.0
    # tiles that disagree (a model that scales each tile by 0.9, 1.0 or 1.1): the blended overlaps hide
    # it, edge-to-edge tiles (no overlap) show steps at the seams
    rough_by_overlap = {}
    for lap in (None, 0):
        real = load_video_model(device="cpu", overlap=lap, mirrors=False)
        fake = dataclasses.replace(real, forecaster=types.SimpleNamespace(model=GainPerTile(), device=None, meta=real.meta))
        scaled = fake.predict(frames, [0.0, 4.0, 8.0], [2.0])[0].astype(np.float64)
        rough_by_overlap[lap] = max(np.abs(np.diff(scaled, n=2, axis=axis)).max() for axis in (0, 1))
    assert rough_by_overlap[None] <= 4.0 and rough_by_overlap[0] >= 10.0, rough_by_overlap


def test_extrapolate_appends_frames_and_keeps_the_video(tmp_path, model):
    frames = disc_video()
    out = tmp_path / "out"
    summary = extrapolate(write_pngs(tmp_path / "src", frames), out, frames=5, model=model, progress=False)
    written = [np.asarray(Image.open(p)) for p in sorted(out.iterdir())]
    assert summary["frames_out"] == len(written) == 11
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(written[i], frame)
    assert centroid_x(written[6]) > centroid_x(frames[-1])  # the disc keeps moving right
    mp4 = tmp_path / "more.mp4"
    extrapolate(write_video(tmp_path / "in.mp4", frames), mp4, frames=4, model=model, progress=False)
    np.testing.assert_allclose(read_times(mp4), np.arange(10) / 24, atol=1e-9)


def test_existing_output_needs_overwrite(mp4, model, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep")
    with pytest.raises(ConfigError, match="--overwrite"):
        interpolate(mp4, out, factor=2, model=model, progress=False)
    assert out.read_bytes() == b"keep"
    interpolate(mp4, out, factor=2, model=model, overwrite=True, progress=False)
    assert len(read_times(out)) == 11


def test_reads_avi_mkv_gif_and_folders(tmp_path):
    frames = disc_video(n=5)
    write_video(tmp_path / "a.avi", frames, fps=10, codec="mpeg4")
    write_video(tmp_path / "a.mkv", frames, fps=10)
    Image.fromarray(frames[0]).save(tmp_path / "a.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]], duration=100)
    write_pngs(tmp_path / "pngs", frames)
    for name in ("a.avi", "a.mkv", "a.gif", "pngs"):
        video = open_video(tmp_path / name)
        decoded = list(video.frames())
        assert len(decoded) == 5 and decoded[0].shape == (32, 32, 3), name
        assert video.fps == pytest.approx(10 if name != "pngs" else 25), name
        assert np.abs(decoded[2].astype(int) - frames[2]).mean() < 8, name


def test_climate_checkpoint_is_refused_by_name():
    with pytest.raises(CheckpointError, match="hurricanes_cpu is a climate model"):
        load_video_model("hurricanes_cpu", device="cpu")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_file_is_a_one_line_error(tmp_path, damage):
    path = write_video(tmp_path / "v.mp4", disc_video(n=6))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00not a video" * 100)
    with pytest.raises(DataError, match="damaged or truncated"):
        list(open_video(path).frames())
    proc = subprocess.run([sys.executable, "-m", "climode", "interpolate", str(path), "--factor", "2",
                           "--output", str(tmp_path / "out.mp4")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("climode: error:") and str(path) in lines[0], proc.stderr
    assert not (tmp_path / "out.mp4").exists()
