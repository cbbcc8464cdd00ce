"""Generated video benchmarks written to disk, in the layout the catalog's video datasets read.

``climode data synth bouncing-balls`` / ``moving-mnist`` call :func:`write_video_benchmark`:
the sequences of one split (the same seeds and generator as the lazily generated
catalog datasets ``bouncing_balls`` and ``moving_mnist``) go into one ``.npy``
file as uint8 ``[T, N, H, W, C]``: Srivastava's Moving MNIST layout
(``mnist_test_seq.npy``, ``[T, N, H, W]``) with a channel axis (1 grey, 3 RGB).  A folder holding such a file opens with
:func:`climode.data.video.open_video_dataset` (one clip per sequence); put it in
``$CLIMODE_VIDEO/<dataset>/<split>/`` to keep the splits apart.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from climode.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["VIDEO_BENCHMARKS", "write_video_benchmark"]

#: command-line name -> catalog dataset name
VIDEO_BENCHMARKS = {"bouncing-balls": "bouncing_balls", "moving-mnist": "moving_mnist"}


def write_video_benchmark(kind: str, output: str | os.PathLike, *, split: str = "train",
                          n_sequences: int | None = None, n_frames: int | None = None, size: int | None = None,
                          channels: int | None = None, seed: int | None = None, progress: bool = False,
                          **options: Any) -> Path:
    """Generate the ``split`` sequences of ``kind`` (``bouncing-balls`` or ``moving-mnist``) into ``output`` (.npy).

    ``options`` go to the generator (``n_balls``, ``colored``, ``n_digits``, ``source``, ``speed``, ...).
    Sequences are generated one at a time into a memory-mapped file, then renamed into place.
    """
    from tqdm.auto import tqdm

    from climode.data.video import open_video_dataset
    from climode.io import atomic_path

    if kind not in VIDEO_BENCHMARKS:
        raise ConfigError(f"unknown video benchmark {kind!r}; choose one of {', '.join(VIDEO_BENCHMARKS)}")
    target = Path(output).expanduser()
    if target.suffix.lower() != ".npy":
        raise ConfigError(f"cannot write {target}: video benchmarks are written as .npy files")
    dataset = open_video_dataset(VIDEO_BENCHMARKS[kind], split=split, size=size, channels=channels,
                                 n_sequences=n_sequences, n_frames=n_frames, seed=seed, **options)
    if len(dataset) == 0:
        raise ConfigError("--sequences must be at least 1")
    first = dataset.clip(0)  # [T, C, H, W] in [0, 1]
    t, c, h, w = first.shape
    shape = (t, len(dataset), h, w, c)
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i in tqdm(range(len(dataset)), desc=kind, unit="seq", disable=not progress):
            clip = first if i == 0 else dataset.clip(i)
            frames = np.rint(np.clip(clip, 0.0, 1.0) * 255.0).astype(np.uint8)
            out[:, i] = frames.transpose(0, 2, 3, 1)
        out.flush()
        del out
    log.info("wrote %d %s sequences %s to %s", len(dataset), kind, shape, target)
    return target
