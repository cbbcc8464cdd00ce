"""RGB video datasets for the Vid-ODE pipeline: KTH, Penn Action, Moving GIF, folders, synthetic.

:func:`open_video_dataset` returns a :class:`VideoDataset`: a list of clips,
each decoded only when asked (:meth:`VideoDataset.clip`) into float32
``[T, C, H, W]`` in [0, 1], centre-cropped to a square and resized to
``size x size`` (PIL, area-aware bilinear).  Greyscale sources (KTH) are
repeated on three channels, as in the paper, unless ``channels=1``.

Sources (see docs/video_datasets.md for layouts and splits):

* ``kth``: ``personNN_<action>_dK_uncomp.avi`` anywhere under the root; the
  paper trains on 16 of the 25 people: persons 1-16 train, 17-25 test;
* ``penn_action``: ``frames/NNNN/*.jpg`` with ``labels/NNNN.mat`` whose
  ``train`` field (1 / -1) is the official split (1258 / 1068 videos);
* ``moving_gif``: ``train/`` and ``test/`` folders of GIF (or mp4) files, as
  distributed; without them every 10th clip in name order is test (900 / 100);
* any folder: video files (avi, mp4, mov, mkv, webm, ...), GIFs, ``.npy`` clips
  ``[T, H, W(, C)]``, or sub-folders of frame images are clips; ``<root>/<split>``
  is used when it exists, else the every-10th rule;
* ``bouncing_balls`` and ``moving_mnist``: generated lazily
  (:mod:`climode.data.synthetic.balls`, :mod:`climode.data.synthetic.moving_digits`).

Catalog names resolve through :func:`climode.data.catalog.load_catalog`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr

from climode.errors import ConfigError, DataError, require

log = logging.getLogger(__name__)

__all__ = [
    "Clip",
    "VideoDataset",
    "open_video_dataset",
    "KTH_TRAIN_PERSONS",
    "KTH_TEST_PERSONS",
    "KTH_TRAIN_DEV_PERSONS",
    "KTH_VALIDATION_PERSONS",
    "KTH_ACTIONS",
    "SYNTHETIC_DEFAULTS",
]

VIDEO_EXTS = (".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
GIF_EXTS = (".gif",)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
NPY_EXTS = (".npy",)

KTH_TRAIN_PERSONS = tuple(range(1, 17))
KTH_TEST_PERSONS = tuple(range(17, 26))
#: model selection without the test persons: fit on persons 1-14, validate on 15-16 (both inside the paper's train)
KTH_TRAIN_DEV_PERSONS = tuple(range(1, 15))
KTH_VALIDATION_PERSONS = (15, 16)
KTH_ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
_KTH_RE = re.compile(r"person(\d+)_([a-z]+)_d(\d+)", re.IGNORECASE)
_ENV_NAME_RE = re.compile(r"\$\{?(\w+)")

# Defaults of the generated datasets: sequences per split (paper: 1000 train / 50 test balls),
# base seed per split (sequence i of a split draws from default_rng([seed, i])).
SYNTHETIC_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "bouncing_balls": {
        "n_sequences": {"train": 1000, "validation": 50, "test": 50},
        "seeds": {"train": 0, "validation": 1, "test": 2},
        "n_frames": 20,
        "size": 32,
    },
    "moving_mnist": {
        "n_sequences": {"train": 10000, "validation": 1000, "test": 10000},
        "seeds": {"train": 0, "validation": 1, "test": 2},
        "n_frames": 20,
        "size": 64,
    },
}
_SPLITS = ("train", "validation", "test", "all", "train_dev")
#: held out of ``train`` for model selection where a source has no validation split of its own
_DEV_SPLITS = ("train_dev", "validation")
_TEST_EVERY = 10  # fallback rule: clip k (name order) is test when k % 10 == 9


@dataclass(frozen=True)
class Clip:
    """One video of a dataset: where it is and what it is (decoded only on demand)."""

    name: str
    kind: str  # video | gif | frames | npy | npy_stack | generated
    path: Path | None = None
    index: int = 0  # clip within an npy stack, or sequence number of a generated dataset
    meta: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- frame processing
def _square_resize(frame: np.ndarray, size: int | None, channels: int) -> np.ndarray:
    """``[H, W]`` or ``[H, W, C]`` (uint8 or float in [0, 1]) -> float32 ``[C, size, size]``."""
    from PIL import Image

    arr = frame if frame.ndim == 3 else frame[:, :, None]
    if arr.shape[2] == 4:  # RGBA: composite on white (GIF transparency)
        rgb, alpha = arr[:, :, :3].astype(np.float32), arr[:, :, 3:].astype(np.float32) / 255.0
        arr = np.clip(rgb * alpha + 255.0 * (1.0 - alpha), 0, 255).round().astype(np.uint8)
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    arr = arr[top : top + side, left : left + side]
    if arr.dtype != np.uint8:
        arr = np.clip(np.asarray(arr, dtype=np.float32), 0.0, 1.0)
    if size is not None and side != size:
        if arr.dtype == np.uint8 and arr.shape[2] in (1, 3):
            img = Image.fromarray(np.ascontiguousarray(arr if arr.shape[2] == 3 else arr[:, :, 0]))
            planes = [np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))]
            planes = [planes[0]] if arr.shape[2] == 1 else [planes[0][:, :, c] for c in range(3)]
        elif arr.dtype == np.uint8:
            planes = [np.asarray(Image.fromarray(arr[:, :, c]).resize((size, size), Image.Resampling.BILINEAR))
                      for c in range(arr.shape[2])]
        else:
            planes = [np.asarray(Image.fromarray(arr[:, :, c], mode="F").resize((size, size), Image.Resampling.BILINEAR))
                      for c in range(arr.shape[2])]
        arr = np.stack(planes, axis=2)
    out = arr.astype(np.float32)
    if arr.dtype == np.uint8:
        out /= 255.0
    have = out.shape[2]
    if channels == have:
        pass
    elif channels == 3 and have == 1:
        out = np.repeat(out, 3, axis=2)
    elif channels == 1 and have == 3:  # ITU-R 601 luma, as PIL's convert("L")
        out = (out @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, :, None]
    else:
        raise DataError(f"cannot convert a {have}-channel frame to {channels} channels")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0).transpose(2, 0, 1))


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _selected(k: int, start: int, stop: int | None, step: int) -> bool:
    return k >= start and (stop is None or k < stop) and (k - start) % step == 0


def _iter_video(path: Path, start: int, stop: int | None, step: int) -> Iterator[np.ndarray]:
    av = require("av", "video")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises its own FFmpegError family
        raise DataError(f"cannot open video {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    try:
        if not container.streams.video:
            raise DataError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for k, frame in enumerate(container.decode(stream)):
                if stop is not None and k >= stop:
                    break
                if _selected(k, start, stop, step):
                    fmt = "gray" if frame.format.name in ("gray", "gray8") else "rgb24"
                    yield frame.to_ndarray(format=fmt)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot decode video {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        container.close()


def _iter_gif(path: Path, start: int, stop: int | None, step: int) -> Iterator[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot open GIF {path}: {exc}") from None
    with img:
        n = getattr(img, "n_frames", 1)
        last = n if stop is None else min(stop, n)
        for k in range(start, last, step):
            img.seek(k)
            frame = img.convert("RGBA")
            yield np.asarray(frame)


def _frame_files(directory: Path) -> list[Path]:
    files = [p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _iter_frames(path: Path, start: int, stop: int | None, step: int) -> Iterator[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    for f in _frame_files(path)[start:stop:step]:
        try:
            with Image.open(f) as img:
                yield np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB", "RGBA") else img)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read frame image {f}: {exc}") from None


def _npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _is_stack(arr: np.ndarray, path: Path) -> bool:
    """A stack of clips: Srivastava's ``[T, N, H, W]`` (a file named mnist_test_seq*.npy) or
    ``[T, N, H, W, C]`` with C in 1, 3, 4 (what ``climode data synth`` writes)."""
    if arr.ndim == 5 and arr.shape[-1] in (1, 3, 4):
        return True
    return arr.ndim == 4 and "mnist_test_seq" in path.stem


def _npy_frames(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4)):
        return arr
    raise DataError(f"{path} has shape {arr.shape}: a clip must be [T, H, W] or [T, H, W, C] with C in 1, 3, 4")


# --------------------------------------------------------------------------- dataset
class VideoDataset:
    """A list of video clips read lazily; :meth:`clip` decodes one into float32 ``[T, C, H, W]`` in [0, 1]."""

    def __init__(
        self,
        name: str,
        split: str,
        clips: Sequence[Clip],
        size: int | None,
        channels: int,
        frame_step: int = 1,
        generator: Callable[[int], np.ndarray] | None = None,
        root: Path | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if frame_step < 1:
            raise ConfigError(f"frame_step must be >= 1, got {frame_step}")
        if size is not None and size < 1:
            raise ConfigError(f"size must be a positive number of pixels, got {size}")
        self.name = name
        self.split = split
        self.clips = list(clips)
        self.size = size
        self.channels = channels
        self.frame_step = frame_step
        self.root = root
        self._generator = generator

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.clip(i)

    def __repr__(self) -> str:
        return (f"VideoDataset({self.name!r}, split={self.split!r}, clips={len(self)}, size={self.size}, "
                f"channels={self.channels}, frame_step={self.frame_step})")

    @property
    def channel_names(self) -> list[str]:
        return ["R", "G", "B"] if self.channels == 3 else ["gray"]

    def _info(self, i: int) -> Clip:
        if not -len(self.clips) <= i < len(self.clips):
            raise IndexError(f"clip {i} out of range: {self.name} ({self.split}) has {len(self.clips)} clips")
        return self.clips[i]

    def _raw(self, info: Clip, start: int, stop: int | None, step: int) -> Iterator[np.ndarray]:
        if info.kind == "video":
            return _iter_video(info.path, start, stop, step)
        if info.kind == "gif":
            return _iter_gif(info.path, start, stop, step)
        if info.kind == "frames":
            return _iter_frames(info.path, start, stop, step)
        if info.kind == "npy":
            return iter(_npy_frames(_npy(info.path), info.path)[start:stop:step])
        if info.kind == "npy_stack":  # [T, N, H, W(, C)] as mnist_test_seq.npy
            return iter(_npy(info.path)[start:stop:step, info.index])
        raise DataError(f"clip {info.name} has unknown kind {info.kind!r}")

    def clip(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start:stop`` (after ``frame_step`` subsampling) of clip ``i`` as float32 ``[T, C, H, W]``.

        Only the frames up to ``stop`` are decoded.
        """
        info = self._info(i)
        if start < 0 or (stop is not None and stop < start):
            raise ConfigError(f"clip frames need 0 <= start <= stop, got start={start}, stop={stop}")
        if info.kind == "generated":
            assert self._generator is not None
            frames = self._generator(info.index)
            return np.ascontiguousarray(frames[start * self.frame_step : None if stop is None else stop * self.frame_step : self.frame_step])
        raw_stop = None if stop is None else stop * self.frame_step
        frames = [_square_resize(f, self.size, self.channels)
                  for f in self._raw(info, start * self.frame_step, raw_stop, self.frame_step)]
        if not frames:
            if start == 0:
                raise DataError(f"{info.path or info.name} has no frames")
            return np.empty((0, self.channels, self.size or 0, self.size or 0), dtype=np.float32)
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(f"frames of {info.path or info.name} differ in size {sorted(shapes)}: pass size= to resize them")
        return np.stack(frames)

    def n_frames(self, i: int) -> int:
        """Number of frames of clip ``i`` after ``frame_step`` (from metadata where possible, else by decoding)."""
        info = self._info(i)
        if info.kind == "generated":
            total = int(info.meta["n_frames"])
        elif info.kind == "gif":
            from PIL import Image

            with Image.open(info.path) as img:
                total = getattr(img, "n_frames", 1)
        elif info.kind == "frames":
            total = len(_frame_files(info.path))
        elif info.kind == "npy":
            total = _npy(info.path).shape[0]
        elif info.kind == "npy_stack":
            total = _npy(info.path).shape[0]
        else:
            av = require("av", "video")
            try:
                with av.open(str(info.path)) as container:
                    total = int(container.streams.video[0].frames) if container.streams.video else 0
            except Exception as exc:  # av's FFmpegError family
                raise DataError(f"cannot open video {info.path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            if total <= 0:
                total = sum(1 for _ in _iter_video(info.path, 0, None, 1))
        return math.ceil(total / self.frame_step)

    def sequence(self, i: int, start: int = 0, stop: int | None = None) -> xr.DataArray:
        """Clip ``i`` as a DataArray ``(time, channel, y, x)``; time is the source frame number."""
        frames = self.clip(i, start, stop)
        time = (start + np.arange(frames.shape[0])) * self.frame_step
        return xr.DataArray(
            frames,
            dims=("time", "channel", "y", "x"),
            coords={"time": time.astype(np.float64), "channel": self.channel_names},
            name=self.name,
            attrs={"clip": self.clips[i].name, "split": self.split},
        )

    def to_array(self, max_clips: int | None = None, frames: int | None = None) -> np.ndarray:
        """Decode clips into one array ``[N, T, C, H, W]``.

        ``frames``: keep the first ``frames`` frames of every clip (clips that are
        shorter are skipped, with a warning); without it all clips must have the
        same length.  ``max_clips`` stops after that many clips.
        """
        if frames is not None and frames < 1:
            raise ConfigError(f"frames must be >= 1, got {frames}")
        limit = len(self) if max_clips is None else min(max_clips, len(self))
        out: list[np.ndarray] = []
        skipped = 0
        for i in range(len(self)):
            if len(out) >= limit:
                break
            arr = self.clip(i, 0, frames)
            if frames is not None and arr.shape[0] < frames:
                skipped += 1
                continue
            out.append(arr)
        if skipped:
            log.warning("%s (%s): skipped %d clip(s) shorter than %d frames", self.name, self.split, skipped, frames)
        if not out:
            raise DataError(f"{self.name} ({self.split}): no clip has {frames} frames" if frames else
                            f"{self.name} ({self.split}) has no clips")
        lengths = sorted({a.shape[0] for a in out})
        if len(lengths) > 1:
            raise DataError(
                f"{self.name} ({self.split}): clips have {lengths[0]} to {lengths[-1]} frames; pass frames=N to cut them to one length"
            )
        return np.stack(out)


# --------------------------------------------------------------------------- layouts
def _is_clip_file(p: Path) -> str | None:
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTS:
        return "video"
    if suffix in GIF_EXTS:
        return "gif"
    if suffix in NPY_EXTS:
        return "npy"
    return None


def _scan(root: Path) -> list[Clip]:
    """Every clip under ``root``: video/GIF/npy files and directories that hold frame images."""
    clips: list[Clip] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural_key)
        here = Path(dirpath)
        images = 0
        for fname in sorted(filenames, key=_natural_key):
            if fname.startswith("."):
                continue
            p = here / fname
            kind = _is_clip_file(p)
            if kind == "npy":
                arr = _npy(p)
                if _is_stack(arr, p):
                    clips.extend(Clip(f"{p.stem}[{k}]", "npy_stack", p, k) for k in range(arr.shape[1]))
                    continue
                _npy_frames(arr, p)
            if kind:
                clips.append(Clip(str(p.relative_to(root)), kind, p))
            elif p.suffix.lower() in IMAGE_EXTS:
                images += 1
        if images:
            clips.append(Clip(str(here.relative_to(root)) if here != root else here.name, "frames", here))
    clips.sort(key=lambda c: (_natural_key(c.name), c.index))
    return clips


def _every_tenth(clips: list[Clip], split: str) -> list[Clip]:
    if split == "all":
        return clips
    if split == "test":
        return [c for k, c in enumerate(clips) if k % _TEST_EVERY == _TEST_EVERY - 1]
    if split == "train":
        return [c for k, c in enumerate(clips) if k % _TEST_EVERY != _TEST_EVERY - 1]
    if split in _DEV_SPLITS:  # clip k % 10 == 8 validates, the rest of train fits
        return [c for k, c in enumerate(clips) if (k % _TEST_EVERY == _TEST_EVERY - 2) == (split == "validation")
                and k % _TEST_EVERY != _TEST_EVERY - 1]
    raise ConfigError(f"split {split!r}: this dataset has splits train, test, train_dev, validation and all")


def _folder_clips(root: Path, split: str) -> list[Clip]:
    sub = {"validation": ("validation", "val", "valid")}.get(split, (split,))
    for name in sub:
        if split != "all" and (root / name).is_dir():
            return _scan(root / name)
    if split != "all" and any((root / s).is_dir() for s in ("train", "test")):
        raise ConfigError(f"{root} has split folders but no {split!r} folder")
    return _every_tenth(_scan(root), split)


def _kth_clips(root: Path, split: str) -> list[Clip]:
    persons = {"train": KTH_TRAIN_PERSONS, "test": KTH_TEST_PERSONS, "train_dev": KTH_TRAIN_DEV_PERSONS,
               "validation": KTH_VALIDATION_PERSONS, "all": tuple(range(1, 100))}.get(split)
    if persons is None:
        raise ConfigError(f"KTH has splits train (persons 1-16), test (persons 17-25), train_dev (1-14), "
                          f"validation (15-16) and all; got {split!r}")
    clips = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in filenames:
            p = Path(dirpath) / fname
            m = _KTH_RE.search(p.stem)
            if not m or _is_clip_file(p) is None:
                continue
            person, action, scenario = int(m.group(1)), m.group(2).lower(), int(m.group(3))
            if person in persons:
                clips.append(Clip(p.stem, _is_clip_file(p), p,
                                  meta={"person": person, "action": action, "scenario": scenario}))
    clips.sort(key=lambda c: (c.meta["person"], c.meta["action"], c.meta["scenario"]))
    return clips


def _penn_clips(root: Path, split: str) -> list[Clip]:
    frames_dir = root / "frames"
    labels_dir = root / "labels"
    if split in _DEV_SPLITS:  # every tenth clip of the official train split validates, the rest fits
        train = _penn_clips(root, "train")
        return [c for k, c in enumerate(train) if (k % _TEST_EVERY == _TEST_EVERY - 1) == (split == "validation")]
    if split not in ("train", "test", "all"):
        raise ConfigError(f"Penn Action has splits train, test, train_dev, validation and all; got {split!r}")
    videos = sorted((d for d in frames_dir.iterdir() if d.is_dir()), key=lambda d: _natural_key(d.name))
    clips = []
    loadmat = None
    for d in videos:
        meta: dict[str, Any] = {}
        if split != "all" or labels_dir.is_dir():
            label = labels_dir / f"{d.name}.mat"
            if not label.is_file():
                if split == "all":
                    clips.append(Clip(d.name, "frames", d))
                    continue
                raise DataError(
                    f"Penn Action label {label} not found: the train/test split is read from labels/*.mat; "
                    "extract the labels folder of Penn_Action.tar.gz there, or use split='all'"
                )
            if loadmat is None:
                loadmat = require("scipy.io", "video").loadmat
            try:
                mat = loadmat(str(label), variable_names=["train", "action", "nframes"])
            except Exception as exc:
                raise DataError(f"cannot read Penn Action label {label}: {exc}") from None
            if "train" not in mat:
                raise DataError(f"Penn Action label {label} has no 'train' field")
            meta["train"] = int(np.asarray(mat["train"]).ravel()[0]) == 1
            if "action" in mat:
                meta["action"] = str(np.asarray(mat["action"]).ravel()[0])
            if split != "all" and meta["train"] != (split == "train"):
                continue
        clips.append(Clip(d.name, "frames", d, meta=meta))
    return clips


def _descend(root: Path, names: Sequence[str]) -> Path:
    """The archive's own top folder (Penn_Action/, moving-gif/) when the data was extracted into ``root``."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    return root


def _detect(root: Path) -> str:
    if (root / "frames").is_dir() or (root / "Penn_Action" / "frames").is_dir():
        return "penn_action"
    for _dirpath, _dirs, files in os.walk(root):
        if any(_KTH_RE.search(f) and Path(f).suffix.lower() in VIDEO_EXTS for f in files):
            return "kth"
    return "folder"


# --------------------------------------------------------------------------- entry point
def _missing(name: str, root: Path, entry=None, detail: str = "") -> DataError:
    if entry is None:
        return DataError(f"{root}: {detail or 'no video clips found'}; give a folder of video files, GIFs, .npy clips or frame-image folders")
    var = next(iter(_ENV_NAME_RE.findall(entry.paths[0])), "CLIMODE_DATA") if entry.paths else "CLIMODE_DATA"
    how = " ".join(entry.obtain.split()) or entry.summary
    return DataError(
        f"{name}: {detail or 'no video files'} at {root}; set {var} to the folder that holds {root.name}/ "
        f"(now {root.parent}). To get the data: {how}"
    )


def _synthetic(name: str, entry, split: str, size: int | None, channels: int | None, frame_step: int,
               n_sequences: int | None, n_frames: int | None, seed: int | None, options: Mapping[str, Any]) -> VideoDataset:
    defaults = SYNTHETIC_DEFAULTS[name]
    if split not in defaults["seeds"]:
        raise ConfigError(f"{name} has splits {', '.join(defaults['seeds'])}; got {split!r}")
    args = dict(entry.args) if entry is not None else {}
    args.update(options)
    count = int(n_sequences if n_sequences is not None else args.pop("n_sequences", defaults["n_sequences"][split]))
    args.pop("n_sequences", None)
    length = int(n_frames if n_frames is not None else args.pop("n_frames", defaults["n_frames"]))
    args.pop("n_frames", None)
    if seed is None:
        seed = entry.seed_for(split) if entry is not None and entry.splits else defaults["seeds"][split]
    side = int(size if size is not None else args.pop("size", defaults["size"]))
    args.pop("size", None)
    chans = 1 if channels is None else channels
    if name == "bouncing_balls":
        from climode.data.synthetic.balls import generate_balls

        def generate(i: int) -> np.ndarray:
            return generate_balls(1, n_frames=length, size=side, seed=seed, channels=chans, start=i, **args)[0]
    else:
        from climode.data.synthetic.moving_digits import generate_moving_digits, load_glyphs

        args.setdefault("split", "test" if split == "test" else "train")
        source = args.pop("source", None)
        glyphs = load_glyphs(source, args["split"])  # fail now (not at the first clip) if absent

        def generate(i: int) -> np.ndarray:
            return generate_moving_digits(1, n_frames=length, size=side, seed=seed, source=glyphs,
                                          channels=chans, start=i, **args)[0]
    log.info("%s (%s): %d generated sequences of %d frames, seed %d", name, split, count, length, seed)
    meta = {"n_frames": length, "seed": seed}
    clips = [Clip(f"{name}[{seed}:{i}]", "generated", None, i, meta) for i in range(count)]
    return VideoDataset(name, split, clips, side, chans, frame_step, generator=generate)


def open_video_dataset(
    name_or_path: str | os.PathLike,
    split: str = "train",
    size: int | None = None,
    *,
    channels: int | None = None,
    frame_step: int = 1,
    kind: str | None = None,
    n_sequences: int | None = None,
    n_frames: int | None = None,
    seed: int | None = None,
    catalog: Any = None,
    **options: Any,
) -> VideoDataset:
    """Open a catalog video dataset (``kth``, ``penn_action``, ``moving_gif``, ``bouncing_balls``,
    ``moving_mnist``) or a folder of clips, lazily.

    ``split``: ``train``, ``test``, ``all`` (and ``validation`` for the
    generated ones).  ``size``: output side in pixels after a centre crop to a
    square (default 128 for files, 32 for bouncing balls, 64 for moving MNIST).
    ``channels``: 3 (default for files; greyscale is repeated) or 1 (default for
    the generated sets).  ``frame_step`` keeps every n-th frame.  ``kind``
    forces a layout for a path: ``kth``, ``penn_action``, ``moving_gif``,
    ``folder``.  ``n_sequences``, ``n_frames``, ``seed`` and ``options`` (e.g.
    ``n_balls``, ``speed``, ``source``) go to the generators.
    """
    if split not in _SPLITS:
        raise ConfigError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    entry = None
    text = os.fspath(name_or_path)
    is_name = isinstance(name_or_path, str) and os.sep not in text and not os.path.exists(text)
    if is_name:
        from climode.data.catalog import Catalog, load_catalog

        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        if text not in cat:
            raise DataError(f"{text!r} is neither a path nor a dataset of the catalog {cat.path}; known: {', '.join(cat.names)}")
        entry = cat.get(text)
        if entry.driver != "video":
            raise ConfigError(f"{text!r} is a {entry.driver} dataset, not video: open it with climode.open_dataset")
        if text in SYNTHETIC_DEFAULTS:
            return _synthetic(text, entry, split, size, channels, frame_step, n_sequences, n_frames, seed, options)
        paths = entry.expanded_paths()
        root = Path(paths[0])
        kind = kind or {"kth": "kth", "penn_action": "penn_action", "moving_gif": "moving_gif"}.get(text, "folder")
        label = text
    else:
        root = Path(text).expanduser()
        label = root.name
        if options or n_sequences is not None or n_frames is not None or seed is not None:
            raise ConfigError(f"n_sequences, n_frames, seed and generator options apply only to the generated datasets, not to {root}")
    if options and entry is not None and text not in SYNTHETIC_DEFAULTS:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(options))} for {text}")
    if not root.is_dir():
        if root.is_file() and _is_clip_file(root):
            clips = [Clip(root.name, _is_clip_file(root), root)]
            return VideoDataset(label, "all", clips, 128 if size is None else size, channels or 3, frame_step, root=root.parent)
        raise _missing(label, root, entry, "no such folder")
    if kind is None:
        kind = _detect(root)
    if kind == "kth":
        clips = _kth_clips(root, split)
    elif kind == "penn_action":
        root = _descend(root, ("Penn_Action",))
        if not (root / "frames").is_dir():
            raise _missing(label, root, entry, "no frames/ folder (Penn Action layout frames/NNNN/*.jpg)")
        clips = _penn_clips(root, split)
    elif kind in ("moving_gif", "folder"):
        if kind == "moving_gif":
            root = _descend(root, ("moving-gif", "moving_gif"))
        clips = _folder_clips(root, split)
    else:
        raise ConfigError(f"kind must be kth, penn_action, moving_gif or folder, got {kind!r}")
    if not clips:
        raise _missing(label, root, entry, f"no {split} clips ({kind} layout)")
    log.info("%s (%s): %d clips under %s", label, split, len(clips), root)
    return VideoDataset(label, split, clips, 128 if size is None else size, channels or 3, frame_step, root=root)
