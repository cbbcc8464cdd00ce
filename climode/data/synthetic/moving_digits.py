"""Moving Fashion-MNIST: Moving MNIST-style sequences (Srivastava et al. 2015) built from Fashion-MNIST.

MNIST itself is not shipped with Debian, but Fashion-MNIST is (package
``dataset-fashion-mnist``, IDX files in ``/usr/share/datasets/fashion-mnist``),
so the glyphs here are 28 x 28 Fashion-MNIST images, not handwritten digits:
the benchmark is *Moving Fashion-MNIST*.  The motion follows Srivastava's
generator: each glyph starts at a uniform position in the frame, moves in a
uniform random direction at a constant speed (by default a tenth of the free
range per frame, 3.6 px at 64 x 64), bounces off the edges, is drawn at
integer pixel positions, and overlapping glyphs combine with ``max``.

Sequence ``i`` draws from ``np.random.default_rng([seed, i])``: the first ``k``
sequences of ``n`` equal the ``k`` sequences generated alone.  ``split="test"``
takes glyphs from the t10k images, ``"train"`` from the training images.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from climode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["FASHION_MNIST_DIR", "MovingDigitsState", "generate_moving_digits", "load_glyphs", "read_idx"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
_IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class MovingDigitsState:
    """Ground truth: top-left corners ``[N, T, D, 2]`` (row, col, integers) and glyph indices ``[N, D]``."""

    positions: np.ndarray
    glyphs: np.ndarray
    split: str


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); expected e.g. train-images-idx3-ubyte.gz")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"IDX file {path} is truncated or corrupt: {len(data) - header} bytes of data for shape {shape}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_images(directory: Path, split: str) -> Path:
    stem = _IMAGE_FILES[split]
    for name in (stem + ".gz", stem, stem.replace("-idx3-", ".idx3-") + ".gz", stem.replace("-idx3-", ".idx3-")):
        if (directory / name).is_file():
            return directory / name
    hint = f"install Debian's {DEBIAN_PACKAGE} (apt install {DEBIAN_PACKAGE})" if directory == FASHION_MNIST_DIR else \
        "put the Fashion-MNIST (or MNIST) IDX files there"
    raise DataError(f"Fashion-MNIST images {directory / (stem + '.gz')} not found: {hint}, or pass source= a directory, IDX file or array of glyphs")


@functools.lru_cache(maxsize=4)
def _load_file(path: str) -> np.ndarray:
    images = read_idx(path)
    if images.ndim != 3:
        raise DataError(f"{path} holds an array of shape {images.shape}, not images [N, H, W]")
    images.setflags(write=False)
    return images


def load_glyphs(source: str | os.PathLike | np.ndarray | None = None, split: str = "train") -> np.ndarray:
    """Glyph images ``[K, h, w]`` as uint8: Debian's Fashion-MNIST by default, or a directory, IDX file or array."""
    if split not in _IMAGE_FILES:
        raise ConfigError(f"split must be 'train' or 'test' (the glyph set), got {split!r}")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim != 3 or arr.shape[0] == 0:
            raise ConfigError(f"source array must be glyphs [K, h, w], got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(np.asarray(arr, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return arr
    path = FASHION_MNIST_DIR if source is None else Path(source).expanduser()
    if path.is_dir() or source is None:
        path = _find_images(path, split)
    elif not path.is_file():
        raise DataError(f"glyph source {path} does not exist: pass a Fashion-MNIST/MNIST directory or IDX images file")
    return _load_file(str(path))


def generate_moving_digits(
    n_sequences: int,
    n_frames: int = 20,
    size: int = 64,
    n_digits: int = 2,
    seed: int = 0,
    source: str | os.PathLike | np.ndarray | None = None,
    *,
    split: str = "train",
    speed: float | None = None,
    channels: int = 1,
    start: int = 0,
    return_state: bool = False,
):
    """Moving Fashion-MNIST videos ``[N, T, C, H, W]`` (float32 in [0, 1]), deterministic from ``seed``.

    ``source``: ``None`` (Debian's Fashion-MNIST), a directory with IDX files,
    an IDX images file, or an array of glyphs ``[K, h, w]``.  ``split`` picks
    the training or t10k glyphs of an IDX source.  ``speed`` is in pixels per
    frame (default a tenth of ``size - glyph size``).  ``channels=3`` repeats the
    frame on three channels.  With ``return_state`` the result is
    ``(frames, MovingDigitsState)``.
    """
    glyphs = load_glyphs(source, split)
    k_total, gh, gw = glyphs.shape
    if n_sequences < 0 or n_frames < 1 or n_digits < 1:
        raise ConfigError(f"generate_moving_digits: need n_sequences >= 0, n_frames >= 1, n_digits >= 1; got {n_sequences}, {n_frames}, {n_digits}")
    if size <= max(gh, gw):
        raise ConfigError(f"generate_moving_digits: size {size} must exceed the glyph size {gh} x {gw}")
    if channels not in (1, 3):
        raise ConfigError(f"generate_moving_digits: channels must be 1 or 3, got {channels}")
    lim = np.array([size - gh, size - gw], dtype=np.float64)
    step = 0.1 * float(min(lim)) if speed is None else float(speed)
    frames = np.zeros((n_sequences, n_frames, channels, size, size), dtype=np.float32)
    positions = np.empty((n_sequences, n_frames, n_digits, 2), dtype=np.int64)
    chosen = np.empty((n_sequences, n_digits), dtype=np.int64)
    for k in range(n_sequences):
        rng = np.random.default_rng([int(seed), int(start) + k])
        chosen[k] = rng.integers(0, k_total, size=n_digits)
        pos = rng.uniform(0.0, 1.0, size=(n_digits, 2)) * lim
        theta = rng.uniform(0.0, 2 * np.pi, size=n_digits)
        vel = step * np.stack([np.sin(theta), np.cos(theta)], axis=1)
        canvas = np.zeros((n_frames, size, size), dtype=np.uint8)
        for t in range(n_frames):
            corner = np.rint(pos).astype(np.int64)
            positions[k, t] = corner
            for d in range(n_digits):
                r, c = corner[d]
                view = canvas[t, r : r + gh, c : c + gw]
                np.maximum(view, glyphs[chosen[k, d]], out=view)
            pos = pos + vel
            low, high = pos < 0, pos > lim
            pos = np.where(low, -pos, np.where(high, 2 * lim - pos, pos))
            vel = np.where(low | high, -vel, vel)
        frames[k] = (canvas.astype(np.float32) / 255.0)[:, None]
    if return_state:
        return frames, MovingDigitsState(positions=positions, glyphs=chosen, split=split)
    return frames
