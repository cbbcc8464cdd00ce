"""Reading and writing one video file frame by frame, for ``climode interpolate`` / ``extrapolate``.

:func:`open_video` opens an mp4, avi, mkv, mov, webm or GIF file (decoded with
PyAV) or a folder of frame images (PIL, natural name order) and streams its
frames as uint8 ``[H, W, 3]`` RGB arrays at their full resolution; nothing is
decoded before it is asked for, so memory does not grow with the length.
:class:`VideoWriter` encodes frames with PyAV into an mp4 (H.264, constant or
explicit timestamps) or a GIF, or writes a folder of PNG frames (lossless),
always into a temporary sibling that is renamed onto the target at the end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from climode.errors import ConfigError, DataError, require

log = logging.getLogger(__name__)

__all__ = ["VideoSource", "VideoWriter", "open_video", "output_kind", "VIDEO_INPUT_SUFFIXES", "VIDEO_OUTPUT_SUFFIXES"]

VIDEO_INPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg")
#: what VideoWriter writes: H.264 video, GIF, or (no suffix) a folder of PNG frames
VIDEO_OUTPUT_SUFFIXES = (".mp4", ".mkv", ".mov", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: frame rate assumed for a folder of images unless one is given
DEFAULT_FOLDER_FPS = 25.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class VideoSource:
    """A video to stream: frame ``rate`` (exact, frames per second), ``size`` (height, width),
    ``n_frames`` when the container says it without decoding."""

    path: Path
    kind: str  # "video" (PyAV) or "frames" (a folder of images)
    rate: Fraction
    size: tuple[int, int]
    n_frames: int | None
    files: tuple[Path, ...] = ()

    @property
    def fps(self) -> float:
        return float(self.rate)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame as uint8 RGB ``[H, W, 3]``, in order; a damaged file is a :class:`DataError`."""
        if self.kind == "frames":
            yield from self._image_frames()
        else:
            yield from self._decoded_frames()

    def _image_frames(self) -> Iterator[np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        for f in self.files:
            try:
                with Image.open(f) as img:
                    arr = np.asarray(img.convert("RGB"))
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot read frame image {f}: {_first_line(exc)}") from None
            if arr.shape[:2] != self.size:
                raise DataError(f"frame {f.name} is {arr.shape[1]}x{arr.shape[0]} but {self.files[0].name} is "
                                f"{self.size[1]}x{self.size[0]}: every frame of a folder must have one size")
            yield arr

    def _decoded_frames(self) -> Iterator[np.ndarray]:
        av = require("av", "video")
        count = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
        except DataError:
            raise
        except Exception as exc:  # PyAV's FFmpegError family, and decoder errors of damaged streams
            raise DataError(f"cannot decode {self.path} after {count} frame(s): {_first_line(exc)}; "
                            "the file is damaged or truncated") from None
        if count == 0:
            raise DataError(f"{self.path} has no decodable video frame; the file is damaged or truncated")


def _image_files(folder: Path) -> tuple[Path, ...]:
    from climode.data.video import _natural_key

    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return tuple(sorted(files, key=lambda p: _natural_key(p.name)))


def as_rate(fps: float | Fraction | str) -> Fraction:
    """An exact frame rate from a number (``29.97`` is read as 2997/100) or a fraction string (``30000/1001``)."""
    try:
        rate = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"frame rate {fps!r} is not a number of frames per second") from None
    if rate <= 0:
        raise ConfigError(f"frame rate must be a positive number of frames per second, got {fps}")
    return rate


def open_video(path: str | os.PathLike, fps: float | Fraction | None = None) -> VideoSource:
    """Open a video file or a folder of frame images for streaming.

    ``fps`` overrides the frame rate (needed only for image folders, which
    otherwise play at :data:`DEFAULT_FOLDER_FPS`).
    """
    path = Path(path).expanduser()
    rate = None if fps is None else as_rate(fps)
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise DataError(f"{path} holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(files[0]) as img:
                size = (img.height, img.width)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read frame image {files[0]}: {_first_line(exc)}") from None
        return VideoSource(path, "frames", rate or as_rate(DEFAULT_FOLDER_FPS), size, len(files), files)
    if not path.exists():
        raise DataError(f"video {path} does not exist")
    if path.suffix.lower() not in VIDEO_INPUT_SUFFIXES:
        raise DataError(f"{path} is not a video climode reads: give a {', '.join(VIDEO_INPUT_SUFFIXES)} file "
                        "or a folder of frame images")
    av = require("av", "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream_rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            n = int(stream.frames) or None
            size = (int(stream.codec_context.height), int(stream.codec_context.width))
    except DataError:
        raise
    except Exception as exc:  # av.error.InvalidDataError and the rest of FFmpegError
        raise DataError(f"cannot open video {path}: {_first_line(exc)}; the file is damaged or truncated, "
                        "or not a video") from None
    if size[0] <= 0 or size[1] <= 0:
        raise DataError(f"cannot read the frame size of {path}; the file is damaged or truncated")
    if rate is None:
        if not stream_rate or float(stream_rate) <= 0:
            raise DataError(f"{path} does not say its frame rate; pass --input-fps")
        rate = Fraction(stream_rate)
    return VideoSource(path, "video", rate, size, n)


def output_kind(path: str | os.PathLike) -> str:
    """``video``, ``gif`` or ``frames`` (a folder of PNGs: a name without suffix) for an output path."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix in VIDEO_OUTPUT_SUFFIXES:
        return "video"
    if suffix == "":
        return "frames"
    raise ConfigError(f"cannot write {path}: use a .mp4, .mkv, .mov or .gif file, or a name without suffix "
                      "for a folder of PNG frames")


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a target :class:`VideoWriter` cannot write, or one that exists without ``overwrite``."""
    target = Path(path).expanduser()
    output_kind(target)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    return target


def _palette_frame(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices [H, W] uint8, ARGB palette [256, 4]) of an RGB frame: PIL's median cut, no dithering,
    so a frame of at most 256 colours is stored exactly."""
    from PIL import Image

    quantized = Image.fromarray(np.ascontiguousarray(frame)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    rgb = np.asarray(quantized.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[: len(rgb), 0] = 255
    palette[: len(rgb), 1:] = rgb
    return np.asarray(quantized), palette


class VideoWriter:
    """Write uint8 RGB frames ``[H, W, 3]`` at given times (seconds) to ``path``, atomically.

    Use as a context manager; the target appears only when the block succeeds.
    mp4/mkv/mov: H.264 (``crf`` 18, yuv420p, or yuv444p for odd sizes) with
    timestamps in units of ``1 / time_base`` seconds; GIF: PyAV's GIF encoder
    (a 256-colour palette per frame, exact for frames of at most 256 colours; delays in 1/100 s); a folder: ``frame_000000.png``, ...
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction, *, time_base: Fraction | None = None,
                 crf: int = 18):
        self.path = Path(path).expanduser()
        self.kind = output_kind(self.path)
        self.rate = as_rate(fps)
        self.time_base = time_base or Fraction(1, 90000)
        if self.kind == "gif":
            self.time_base = Fraction(1, 100)
        self.crf = crf
        self.count = 0
        self._last_pts = -1
        self._container = None
        self._stream = None
        self._atomic = None
        self._work: Path | None = None

    def __enter__(self) -> "VideoWriter":
        from climode.io import atomic_path

        self._atomic = atomic_path(self.path, directory=self.kind == "frames")
        self._work = self._atomic.__enter__()
        if self.kind == "frames":
            self._work.mkdir()
        return self

    def _open(self, height: int, width: int) -> None:
        av = require("av", "video")
        self._container = av.open(str(self._work), mode="w")
        if self.kind == "gif":
            stream = self._container.add_stream("gif", rate=self.rate.limit_denominator(100000))
            stream.pix_fmt = "pal8"
            # whole frames: each has its own palette, so no frame may be coded as a change of the previous one
            stream.options = {"gifflags": "-offsetting-transdiff"}
        else:
            stream = self._container.add_stream("libx264", rate=self.rate.limit_denominator(100000))
            stream.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
            stream.options = {"crf": str(self.crf)}
        stream.width, stream.height = width, height
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        self._stream = stream

    def write(self, frame: np.ndarray, time: float) -> None:
        """Append ``frame`` (uint8 ``[H, W, 3]``) shown at ``time`` seconds."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise DataError(f"VideoWriter takes uint8 RGB frames [H, W, 3], got {frame.dtype} {frame.shape}")
        if self.kind == "frames":
            from PIL import Image

            Image.fromarray(frame).save(self._work / f"frame_{self.count:06d}.png")
            self.count += 1
            return
        av = require("av", "video")
        if self._container is None:
            self._open(*frame.shape[:2])
        pts = int(round(time / self.time_base))
        if pts <= self._last_pts:
            raise DataError(f"frame times must increase by at least {float(self.time_base):g} s in {self.path.name}; "
                            f"got {time:g} s after a frame at {self._last_pts * float(self.time_base):g} s")
        self._last_pts = pts
        if self.kind == "gif":
            out = av.VideoFrame.from_ndarray(_palette_frame(frame), format="pal8")
        else:
            out = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out.pts = pts
        out.time_base = self.time_base
        for packet in self._stream.encode(out):
            self._container.mux(packet)
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if self._container is not None:
                if exc_type is None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
                self._container.close()
            if exc_type is None and self.count == 0:
                raise DataError(f"no frame to write to {self.path}")
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return bool(self._atomic.__exit__(exc_type, exc, tb))


def read_times(path: str | os.PathLike) -> Sequence[float]:
    """Presentation times (seconds) of every frame of a video file, from the decoded frames' timestamps."""
    av = require("av", "video")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(f.pts * f.time_base) for f in container.decode(stream)]
