"""climode.data.video: real small videos encoded with PyAV / imageio / PIL, decoded back through open_video_dataset."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV (climode[video]) is needed to encode test videos")
imageio = pytest.importorskip("imageio", reason="imageio (climode[video]) is needed to write test GIFs")

from PIL import Image  # noqa: E402

from climode.data.video import KTH_TEST_PERSONS, KTH_TRAIN_PERSONS, open_video_dataset  # noqa: E402
from climode.errors import ConfigError, DataError  # noqa: E402

TOL = 5 / 255  # lossy mpeg4/h264 at a high bit rate


def write_video(path, frames: np.ndarray, codec: str = "mpeg4", fps: int = 25) -> None:
    """Encode uint8 frames [T, H, W, 3] with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 8_000_000
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def kth_like_frames(n: int, offset: int = 0) -> np.ndarray:
    """160 x 120 grey frames: white 20-px side bands (cut by the centre crop), centre grey 40 + 10 k + offset."""
    frames = np.zeros((n, 120, 160, 3), dtype=np.uint8)
    for k in range(n):
        frames[k] = 40 + 10 * k + offset
    frames[:, :, :20] = 255
    frames[:, :, 140:] = 255
    return frames


@pytest.fixture
def kth_root(tmp_path):
    """A KTH-like tree: <root>/<action>/personNN_<action>_dK_uncomp.avi for persons 1, 2, 17, 25."""
    root = tmp_path / "kth"
    specs = [(1, "walking", 1, 12), (2, "boxing", 3, 10), (17, "walking", 2, 12), (25, "handclapping", 4, 8)]
    for person, action, scenario, n in specs:
        (root / action).mkdir(parents=True, exist_ok=True)
        write_video(root / action / f"person{person:02d}_{action}_d{scenario}_uncomp.avi", kth_like_frames(n, offset=person))
    (root / "walking" / "00sequences.txt").write_text("not a clip\n")
    return root


def test_kth_split_by_person_and_decoding(kth_root):
    train = open_video_dataset(kth_root, split="train", size=32)
    test = open_video_dataset(kth_root, split="test", size=32)
    assert [c.meta["person"] for c in train.clips] == [1, 2]
    assert [c.meta["person"] for c in test.clips] == [17, 25]
    assert {c.meta["action"] for c in test.clips} == {"walking", "handclapping"}
    assert set(KTH_TRAIN_PERSONS).isdisjoint(KTH_TEST_PERSONS) and len(KTH_TRAIN_PERSONS) == 16
    assert len(open_video_dataset(kth_root, split="all", size=32)) == 4
    # model selection never sees the test persons: validation is 15-16, fitting 1-14
    from climode.data.video import KTH_TRAIN_DEV_PERSONS, KTH_VALIDATION_PERSONS

    assert set(KTH_TRAIN_DEV_PERSONS) | set(KTH_VALIDATION_PERSONS) == set(KTH_TRAIN_PERSONS)
    assert set(KTH_TRAIN_DEV_PERSONS).isdisjoint(KTH_VALIDATION_PERSONS)
    assert [c.meta["person"] for c in open_video_dataset(kth_root, split="train_dev", size=32).clips] == [1, 2]

    clip = train.clip(0)  # person01, 12 frames
    assert clip.shape == (12, 3, 32, 32) and clip.dtype == np.float32
    assert 0.0 <= clip.min() and clip.max() <= 1.0
    # greyscale repeated on the three channels
    assert np.abs(clip[:, 0] - clip[:, 1]).max() < 0.02 and np.abs(clip[:, 0] - clip[:, 2]).max() < 0.02
    # the centre crop removed the white side bands; brightness follows the frame number
    expected = (40 + 10 * np.arange(12) + 1) / 255.0
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), expected, atol=TOL)
    assert clip.max() < (40 + 10 * 11 + 1 + 8) / 255.0
    assert train.n_frames(0) == 12 and train.n_frames(1) == 10


def test_kth_resize_partial_decode_and_frame_step(kth_root):
    full = open_video_dataset(kth_root, split="test", size=128)
    assert full.clip(0).shape == (12, 3, 128, 128)
    part = full.clip(0, start=2, stop=5)
    np.testing.assert_array_equal(part, full.clip(0)[2:5])
    stepped = open_video_dataset(kth_root, split="test", size=16, frame_step=3)
    assert stepped.n_frames(0) == 4
    means = stepped.clip(0).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(means, (40 + 10 * np.array([0, 3, 6, 9]) + 17) / 255.0, atol=TOL)
    seq = stepped.sequence(0)
    assert seq.dims == ("time", "channel", "y", "x")
    np.testing.assert_array_equal(seq["time"].values, [0, 3, 6, 9])
    assert list(seq["channel"].values) == ["R", "G", "B"]
    grey = open_video_dataset(kth_root, split="test", size=16, channels=1)
    assert grey.clip(1).shape == (8, 1, 16, 16)


def test_to_array_lengths(kth_root):
    ds = open_video_dataset(kth_root, split="train", size=16)
    with pytest.raises(DataError, match="frames=N"):
        ds.to_array()  # 12 and 10 frames
    arr = ds.to_array(frames=10)
    assert arr.shape == (2, 10, 3, 16, 16)
    assert ds.to_array(frames=12).shape == (1, 12, 3, 16, 16)  # the 10-frame clip is skipped
    assert ds.to_array(max_clips=1, frames=4).shape == (1, 4, 3, 16, 16)


def test_mp4_colour_and_centre_crop(tmp_path):
    frames = np.zeros((6, 60, 100, 3), dtype=np.uint8)  # landscape: crop keeps columns 20..79
    frames[..., 0] = 200  # red everywhere ...
    frames[:, :, :20] = (0, 0, 255)  # ... blue bands outside the central square
    frames[:, :, 80:] = (0, 0, 255)
    frames[:, 30:, 20:80, 1] = 180  # lower half of the square also green
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "a.mp4", frames, codec="libx264")
    ds = open_video_dataset(folder, split="all", size=20)
    clip = ds.clip(0)
    assert clip.shape == (6, 3, 20, 20)
    assert np.abs(clip[:, 0] - 200 / 255).max() < 0.06  # red, no blue band left
    assert clip[:, 2].max() < 0.08
    top, bottom = clip[:, 1, :8].mean(), clip[:, 1, 12:].mean()
    assert top < 0.05 and abs(bottom - 180 / 255) < 0.06


def test_gif_and_frame_folders(tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    gif = np.zeros((5, 64, 64, 3), dtype=np.uint8)
    for k in range(5):
        gif[k, :, :] = (255, 255, 255)
        gif[k, 8 * k : 8 * k + 16, 8:24] = (255, 0, 0)  # a red square moving down
    imageio.v3.imwrite(root / "anim.gif", gif, extension=".gif", duration=100, loop=0)
    seq = root / "seq01"
    seq.mkdir()
    for k in range(3):
        Image.fromarray(np.full((40, 40), 60 * k, np.uint8), mode="L").save(seq / f"frame{k + 1}.png")
    Image.fromarray(np.full((40, 40), 250, np.uint8), mode="L").save(seq / "frame10.png")  # natural order: last

    ds = open_video_dataset(root, split="all", size=32)
    kinds = {c.name: c.kind for c in ds.clips}
    assert kinds == {"anim.gif": "gif", "seq01": "frames"}
    g = ds.clip([c.name for c in ds.clips].index("anim.gif"))
    assert g.shape == (5, 3, 32, 32)
    assert g[:, 0].min() > 0.95  # red square on white: the red channel is full everywhere
    redness = 1.0 - g[:, 1]  # green drops only inside the square
    rows = np.arange(32) + 0.5
    centre = (redness.sum(axis=2) * rows).sum(axis=1) / redness.sum(axis=(1, 2))
    # source rows 8k..8k+15 (centre 8k + 8) at half scale: 4k + 4, i.e. 4 px/frame downwards
    np.testing.assert_allclose(centre, 4 * np.arange(5) + 4, atol=0.1)
    np.testing.assert_allclose(redness.sum(axis=(1, 2)), 8 * 8, rtol=0.02)  # 16 x 16 px -> 8 x 8 px
    assert (g[:, :, 20:, 20:] > 0.99).all()  # white background stays white
    f = ds.clip([c.name for c in ds.clips].index("seq01"))
    np.testing.assert_allclose(f[:, 0].mean(axis=(1, 2)), np.array([0, 60, 120, 250]) / 255.0, atol=1e-6)


def test_moving_gif_splits(tmp_path):
    root = tmp_path / "moving_gif"
    for split, n in (("train", 3), ("test", 2)):
        (root / "moving-gif" / split).mkdir(parents=True)
        for k in range(n):
            frames = np.stack([np.full((20, 20, 3), 10 * j + k, np.uint8) for j in range(4)])
            imageio.v3.imwrite(root / "moving-gif" / split / f"{k:03d}.gif", frames, extension=".gif", duration=50)
    train = open_video_dataset(root, split="test", size=8, kind="moving_gif")
    assert len(train) == 2 and train.clip(1).shape == (4, 3, 8, 8)
    assert len(open_video_dataset(root, split="train", size=8, kind="moving_gif")) == 3
    # without split folders: every 10th clip (name order) is test
    flat = tmp_path / "flat"
    flat.mkdir()
    for k in range(20):
        np.save(flat / f"clip{k:02d}.npy", np.full((3, 10, 10), k, np.uint8))
    test = open_video_dataset(flat, split="test", size=10)
    assert [c.name for c in test.clips] == ["clip09.npy", "clip19.npy"]
    assert len(open_video_dataset(flat, split="train", size=10)) == 18
    np.testing.assert_allclose(test.clip(1), 19 / 255.0, atol=1e-7)


def test_penn_action_split_from_labels(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    root = tmp_path / "penn" / "Penn_Action"
    for vid, train_flag, value in (("0001", 1, 30), ("0002", -1, 90), ("0003", 1, 150)):
        d = root / "frames" / vid
        d.mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((48, 64, 3), value + k, np.uint8)).save(d / f"{k + 1:06d}.jpg", quality=95)
        (root / "labels").mkdir(exist_ok=True)
        scipy_io.savemat(root / "labels" / f"{vid}.mat", {"train": train_flag, "action": "bowl", "nframes": 3})
    train = open_video_dataset(tmp_path / "penn", split="train", size=24)
    test = open_video_dataset(tmp_path / "penn", split="test", size=24)
    assert [c.name for c in train.clips] == ["0001", "0003"] and [c.name for c in test.clips] == ["0002"]
    clip = test.clip(0)
    assert clip.shape == (3, 3, 24, 24)
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), (90 + np.arange(3)) / 255.0, atol=2 / 255)
    (root / "labels" / "0003.mat").unlink()
    with pytest.raises(DataError, match="labels"):
        open_video_dataset(tmp_path / "penn", split="train")


def test_catalog_names_resolve_and_missing_data(kth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_VIDEO", str(tmp_path))
    ds = open_video_dataset("kth", split="test", size=16)
    assert [c.meta["person"] for c in ds.clips] == [17, 25]

    monkeypatch.setenv("CLIMODE_VIDEO", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as info:
        open_video_dataset("penn_action")
    msg = str(info.value)
    assert "\n" not in msg
    assert "CLIMODE_VIDEO" in msg and str(tmp_path / "nowhere" / "penn_action") in msg
    assert "dreamdragon.github.io/PennAction" in msg

    empty = tmp_path / "nowhere" / "moving_gif"
    empty.mkdir(parents=True)
    with pytest.raises(DataError, match="CLIMODE_VIDEO.*first-order-model"):
        open_video_dataset("moving_gif")
    with pytest.raises(ConfigError, match="open_dataset"):
        open_video_dataset("synthetic_hurricanes")
    with pytest.raises(DataError, match="neither a path nor a dataset"):
        open_video_dataset("no_such_video_set")


def test_corrupt_video_names_the_file(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    ds = open_video_dataset(folder, split="all", size=8)
    with pytest.raises(DataError, match="broken.avi"):
        ds.clip(0)


def test_clips_feed_the_window_loader(kth_root):
    loader = pytest.importorskip("climode.data.loader")
    from climode.data.sampling import RegularExtrapolation

    ds = open_video_dataset(kth_root, split="test", size=16)
    windows = loader.WindowDataset([ds.sequence(i) for i in range(len(ds))],
                                   protocol=RegularExtrapolation(n_inputs=3, n_targets=2), static=False)
    sample = windows[0]
    k, start = int(sample["sequence"]), int(sample["start"])
    clip = ds.clip(k)
    np.testing.assert_array_equal(sample["inputs"].numpy(), clip[start : start + 3])
    np.testing.assert_array_equal(sample["targets"].numpy(), clip[start + 3 : start + 5])
    assert tuple(sample["inputs"].shape) == (3, 3, 16, 16)


def test_npy_clips_and_moving_mnist_stack(tmp_path):
    stack = np.random.default_rng(0).integers(0, 256, (20, 7, 64, 64), dtype=np.uint8)
    (tmp_path / "mm").mkdir()
    np.save(tmp_path / "mm" / "mnist_test_seq.npy", stack)  # Srivastava's [T, N, H, W] layout
    ds = open_video_dataset(tmp_path / "mm", split="all", size=64, channels=1)
    assert len(ds) == 7
    np.testing.assert_array_equal(np.round(ds.clip(6)[:, 0] * 255).astype(np.uint8), stack[:, 6])
    (tmp_path / "fl").mkdir()
    floats = np.random.default_rng(1).random((4, 50, 50, 3)).astype(np.float32)
    np.save(tmp_path / "fl" / "a.npy", floats)
    clip = open_video_dataset(tmp_path / "fl", split="all", size=10).clip(0)
    assert clip.shape == (4, 3, 10, 10) and 0.0 <= clip.min() and clip.max() <= 1.0
    np.testing.assert_allclose(clip.mean(axis=(2, 3)), floats.mean(axis=(1, 2)), atol=0.03)
    np.save(tmp_path / "fl" / "b.npy", np.zeros((4, 5, 6, 7), np.uint8))
    with pytest.raises(DataError, match="b.npy"):
        open_video_dataset(tmp_path / "fl", split="all")
