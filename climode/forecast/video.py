"""Frame-rate conversion and continuation of a video file with a trained video model.

The use case of the Vid-ODE paper's Figure 1: a video in, the same video at
another frame rate out, with frames at fractional times.

* :func:`interpolate`: output frames at ``k`` times the frame rate (``factor``),
  at a new rate (``fps``) or at explicit times (``times``, seconds).  Positions
  are exact fractions of a frame (N frames at factor k give k(N-1)+1); an output
  time that is a source frame's time is that source frame, byte for byte; the
  others come from the model at their fractional times.
* :func:`extrapolate`: the video followed by ``frames`` predicted frames.

Both stream: the source is decoded frame by frame and the model sees a window
of ``n_inputs`` frames (the windows overlap by one frame), so memory does not
grow with the length.  Frames larger than the model's training size are cut
into overlapping tiles of that size and blended back with a sin^2 taper
(:class:`climode.basins.tiles.Tiler`), so no seam shows; smaller ones are
edge-padded to it.

Interpolated frames blend the model run forward and on the time-reversed
window, each weighted by its nearness to the query (:class:`TwoWayInterpolation`):
Vid-ODE warps the frame before a query, the reversed run the frame after it.

Model time: the bundled model was trained (protocol ``frame_rate``) with its
inputs every 1, 2 or 4 frames of its training videos; for interpolation one
source frame is mapped to the largest stride (4 model frames: factors 2 and 4
land on frames it was trained on), for continuation to the smallest (1).
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from climode.errors import CheckpointError, ConfigError, DataError, ModelInputError
from climode.models.checkpoint_meta import CheckpointMeta

log = logging.getLogger(__name__)

__all__ = ["VideoModel", "TimePlan", "load_video_model", "interpolate", "extrapolate", "BUNDLED_VIDEO"]

ZOO = Path(__file__).resolve().parent.parent / "zoo"
BUNDLED_VIDEO = ZOO / "video_rgb_cpu.json"


# --------------------------------------------------------------------------- the model
class TwoWayInterpolation(torch.nn.Module):
    """Interpolation from both sides: the blend of the model run forward in time and run on the
    time-reversed window (inputs reversed, times mirrored), for queries inside the observed span.

    Vid-ODE composes a query frame by warping the observed frame *before* it; the reversed run
    warps the frame *after* it, so the blend uses both neighbours as the flow-based references do.
    ``weighting="time"`` (the default) weights each run by its nearness to the query, as Super
    SloMo weights its two warped neighbours: at a fraction ``s`` of the gap from the previous
    observation, ``(1 - s)`` forward and ``s`` reversed; ``"equal"`` takes the plain mean.
    """

    def __init__(self, model: torch.nn.Module, weighting: str = "time"):
        super().__init__()
        if weighting not in ("time", "equal"):
            raise ValueError(f"weighting {weighting!r} is unknown; use time or equal")
        self.model, self.weighting = model, weighting
        self.config = getattr(model, "config", None)

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None):
        from climode.models.base import ForecastOutput
        from climode.models.vidode import as_batch_times

        b = inputs.shape[0]
        times = as_batch_times(input_times, b, "input_times")
        queries = as_batch_times(query_times, b, "query_times")
        mask = np.ones(times.shape) if input_mask is None else as_batch_times(input_mask, b, "input_mask")
        end = np.where(mask > 0, times, -np.inf).max(axis=1, keepdims=True)
        ahead = self.model(inputs, times, queries, input_mask).frames
        if np.any(queries > end + 1e-9):
            raise ModelInputError("two-way interpolation needs every query inside the observed frames")
        back_mask = None if input_mask is None else torch.as_tensor(mask[:, ::-1].copy(), device=inputs.device)
        behind = self.model(inputs.flip(1), end - times[:, ::-1], end - queries, back_mask).frames
        weight = self._forward_weight(times, mask, queries) if self.weighting == "time" else np.full(queries.shape, 0.5)
        w = torch.as_tensor(weight, dtype=ahead.dtype, device=ahead.device).view(*weight.shape, *([1] * (ahead.dim() - 2)))
        return ForecastOutput(frames=w * ahead + (1 - w) * behind)

    @staticmethod
    def _forward_weight(times: np.ndarray, mask: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(b, q) weight of the forward run: 1 - s, where s is the query's fraction of its gap
        between the observations before and after it (0.5 at an observation, where both agree)."""
        from climode.models.baselines.interpolation import neighbours

        s = np.full(queries.shape, 0.5)
        for b in range(queries.shape[0]):
            observed = np.flatnonzero(mask[b] > 0)
            for k, q in enumerate(queries[b]):
                before, after, w = neighbours(times[b], observed, float(q))
                if before != after:
                    s[b, k] = w
                elif q < times[b, observed[0]]:
                    s[b, k] = 1.0  # before the first observation: only the reversed run interpolates
        return 1.0 - s


class MirrorEnsemble(torch.nn.Module):
    """Self-ensemble over mirror images: the mean of the model on the frames as given, mirrored
    left-right, upside down and both, each prediction mirrored back (4 model runs).

    Motion seen in a mirror is motion too, so the four runs are equally valid predictions whose
    errors partly cancel: the test-time augmentation of EDSR's self-ensemble and RIFE's ``--TTA``.
    For video only: climate fields are not mirror-symmetric (the Coriolis force, land).
    """

    FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.config = getattr(model, "config", None)

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None):
        from climode.models.base import ForecastOutput

        total = None
        for dims in self.FLIPS:
            seen = inputs.flip(dims) if dims else inputs
            frames = self.model(seen, input_times, query_times, input_mask).frames
            frames = frames.flip(dims) if dims else frames
            total = frames if total is None else total + frames
        return ForecastOutput(frames=total / len(self.FLIPS))


def continuation_chunk(protocol: dict) -> int:
    """Frames a video model predicts at once when continuing: its training lead (``n_future`` or
    ``n_targets`` of its protocol), at least 1."""
    return max(1, int(protocol.get("n_future", protocol.get("n_targets", 1))))


class ChunkedContinuation(torch.nn.Module):
    """Continuation as ``climode extrapolate`` runs it: ``chunk`` frames at a time from the newest
    ``n_inputs`` frames, each chunk's frames (clipped to [0, 1]) becoming inputs of the next.

    The model is trained to a lead of ``chunk`` frames; this keeps every query within it of the
    frames it starts from, at the cost of feeding back its own errors.  Queries must follow the
    inputs; inputs must all be observed.
    """

    def __init__(self, model: torch.nn.Module, n_inputs: int, chunk: int):
        super().__init__()
        self.model, self.n_inputs, self.chunk = model, int(n_inputs), int(chunk)
        self.config = getattr(model, "config", None)

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None):
        from climode.models.base import ForecastOutput
        from climode.models.vidode import as_batch_times

        b = inputs.shape[0]
        times = as_batch_times(input_times, b, "input_times")
        queries = as_batch_times(query_times, b, "query_times")
        if input_mask is not None and not bool((torch.as_tensor(input_mask) > 0).all()):
            raise ModelInputError("chunked continuation needs every input frame observed")
        if np.any(queries <= times.max(axis=1, keepdims=True)) or np.any(np.diff(queries, axis=1) <= 0):
            raise ModelInputError("chunked continuation needs increasing query times after the inputs")
        frames, known, out = inputs, times, []
        for lo in range(0, queries.shape[1], self.chunk):
            window = frames[:, -self.n_inputs:]
            predicted = self.model(window, known[:, -self.n_inputs:], queries[:, lo : lo + self.chunk]).frames
            predicted = predicted.clamp(0.0, 1.0)
            out.append(predicted)
            frames = torch.cat([window, predicted], dim=1)
            known = np.concatenate([known[:, -self.n_inputs:], queries[:, lo : lo + self.chunk]], axis=1)
        return ForecastOutput(frames=torch.cat(out, dim=1))


@dataclass
class VideoModel:
    """A trained video model ready for whole frames: windowing, model time and tiling."""

    forecaster: object  # climode.forecast.Forecaster
    tile: tuple[int, int]
    overlap: tuple[int, int]
    tile_batch: int = 32
    #: average the model over mirror images (:class:`MirrorEnsemble`): 4x the model runs, better frames
    mirrors: bool = True

    @property
    def meta(self) -> CheckpointMeta:
        return self.forecaster.meta

    @property
    def protocol(self) -> dict:
        return dict(self.meta.protocol)

    @property
    def n_inputs(self) -> int:
        """Frames the model sees at once (its training windows' input count)."""
        p = self.protocol
        return max(2, int(p.get("n_inputs", self.forecaster.n_inputs)))

    @property
    def n_future(self) -> int:
        """Frames predicted at once when continuing (its training lead), at least 1."""
        return continuation_chunk(self.protocol)

    def model_frames(self, task: str) -> int:
        """Model frames per source frame: the training stride of the inputs for ``task``."""
        p = self.protocol
        strides = p.get("strides")
        if strides:
            return int(max(strides) if task == "interpolate" else min(strides))
        if p.get("name") == "interpolation":
            return 2
        return 1

    def predict(self, frames: np.ndarray, input_times: Sequence[float], query_times: Sequence[float], *,
                two_way: bool = False) -> np.ndarray:
        """Frames uint8 ``[K, H, W, 3]`` at ``query_times`` from uint8 ``frames`` ``[T, H, W, 3]`` at ``input_times``
        (model time units), tile by tile; ``two_way``: :class:`TwoWayInterpolation` (queries inside the inputs);
        with ``mirrors`` set, each run is a :class:`MirrorEnsemble`."""
        from climode.basins.tiles import Tiler

        model = MirrorEnsemble(self.forecaster.model) if self.mirrors else self.forecaster.model
        model = TwoWayInterpolation(model) if two_way else model
        stride = 2 ** int((self.meta.config or {}).get("n_downs", 0))
        tiler = Tiler(self.tile, self.overlap, multiple=stride, pad_mode="edge")
        x = frames.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # [T, 3, H, W]
        plan = tiler.plan(*x.shape[-2:])
        tiles = tiler.split(x)  # [n_tiles, T, 3, th, tw]
        device = self.forecaster.device or torch.device("cpu")
        out = np.empty((tiles.shape[0], len(query_times), *tiles.shape[2:]), dtype=np.float32)
        t_in = torch.as_tensor(np.asarray(input_times, dtype=np.float64))
        t_q = torch.as_tensor(np.asarray(query_times, dtype=np.float64))
        with torch.no_grad():
            for lo in range(0, tiles.shape[0], self.tile_batch):
                batch = torch.from_numpy(np.ascontiguousarray(tiles[lo : lo + self.tile_batch])).to(device)
                out[lo : lo + len(batch)] = model(batch, t_in, t_q).frames.float().cpu().numpy()
        stitched = tiler.stitch(out, plan)  # [K, 3, H, W]
        return np.clip(np.rint(stitched * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _resolve_checkpoint(checkpoint: str | os.PathLike | None) -> Path:
    if checkpoint is None:
        if not BUNDLED_VIDEO.exists():
            raise CheckpointError("the bundled video model is missing from this installation; pass --checkpoint")
        return BUNDLED_VIDEO
    from climode.training.checkpoint import checkpoint_path

    return checkpoint_path(Path(checkpoint).expanduser())  # a file, run directory or shipped name


def load_video_model(checkpoint: str | os.PathLike | None = None, device: str | None = "auto", *,
                     tile: int | None = None, overlap: int | None = None, tile_batch: int = 32,
                     mirrors: bool = True) -> VideoModel:
    """The bundled RGB video model, or a checkpoint (file, run directory or bundled name) of one.

    A climate checkpoint is refused by name.  ``tile`` defaults to the model's
    training frame size and ``overlap`` to a quarter of it; ``mirrors=False`` skips the
    mirror self-ensemble (4x fewer model runs).
    """
    from climode.forecast.forecaster import Forecaster

    path = _resolve_checkpoint(checkpoint)
    forecaster = Forecaster.from_checkpoint(path, device, video=True)
    meta = forecaster.meta
    name = Path(forecaster.path).stem if forecaster.path else str(path)
    if not meta.is_video:
        raise CheckpointError(f"checkpoint {name} is a climate model ({', '.join(forecaster.variables)}), not a "
                              "video model: use it with climode forecast, or omit --checkpoint for the bundled video model")
    if len(forecaster.variables) != 3:
        raise CheckpointError(f"checkpoint {name} predicts {len(forecaster.variables)} channel(s); "
                              "frame-rate conversion needs an RGB (3-channel) video model")
    shape = meta.grid.get("shape") or [meta.recipe_data.get("frame_size") or 64] * 2
    stride = 2 ** int((meta.config or {}).get("n_downs", 0))
    size = int(tile or shape[0])
    if size < stride or size % stride:
        raise ConfigError(f"tile size {size} must be a positive multiple of {stride} (the model's stride)")
    lap = size // 4 if overlap is None else int(overlap)
    if not 0 <= lap < size:
        raise ConfigError(f"tile overlap {lap} must be >= 0 and smaller than the tile size {size}")
    return VideoModel(forecaster, (size, size), (lap, lap), tile_batch, mirrors)


# --------------------------------------------------------------------------- output times
class TimePlan:
    """Which output positions (in source frames, exact fractions) lie in each gap ``[i, i + 1)``.

    Build with :meth:`factor`, :meth:`fps` or :meth:`times`; ``rate`` is the output
    frame rate (None for explicit times).
    """

    def __init__(self, kind: str, value, source_rate: Fraction):
        self.kind = kind
        self.value = value
        self.source_rate = Fraction(source_rate)

    @classmethod
    def factor(cls, k: int, source_rate: Fraction) -> "TimePlan":
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"--factor must be a whole number >= 1, got {k!r}")
        return cls("factor", k, source_rate)

    @classmethod
    def fps(cls, fps: Fraction, source_rate: Fraction) -> "TimePlan":
        return cls("fps", Fraction(fps), source_rate)

    @classmethod
    def times(cls, seconds: Iterable[float | str], source_rate: Fraction) -> "TimePlan":
        values = sorted({Fraction(str(s)) * source_rate for s in seconds})
        if not values:
            raise ConfigError("--times needs at least one time in seconds")
        if values[0] < 0:
            raise ConfigError(f"--times must be >= 0 s (the first frame is at 0 s), got {float(values[0] / source_rate):g}")
        return cls("times", values, source_rate)

    @property
    def rate(self) -> Fraction | None:
        if self.kind == "factor":
            return self.source_rate * self.value
        if self.kind == "fps":
            return self.value
        return None

    @property
    def step(self) -> Fraction | None:
        """Output spacing in source frames (None for explicit times)."""
        return None if self.rate is None else self.source_rate / self.rate

    def in_gap(self, i: int) -> list[Fraction]:
        """Output positions p with i <= p < i + 1, ascending."""
        if self.kind == "times":
            lo = bisect.bisect_left(self.value, i)
            hi = bisect.bisect_left(self.value, i + 1)
            return self.value[lo:hi]
        step = self.step
        first = math.ceil(Fraction(i) / step)
        out = []
        m = first
        while m * step < i + 1:
            out.append(m * step)
            m += 1
        return out

    def count(self, n_frames: int) -> int:
        """Output frames for ``n_frames`` source frames."""
        if self.kind == "times":
            return sum(1 for p in self.value if p <= n_frames - 1)
        return math.floor(Fraction(n_frames - 1) / self.step) + 1

    def check_end(self, n_frames: int) -> None:
        """Explicit times after the last source frame are an error (continuation is ``climode extrapolate``)."""
        if self.kind == "times" and self.value[-1] > n_frames - 1:
            last = float(Fraction(n_frames - 1) / self.source_rate)
            raise ConfigError(f"--times {float(self.value[-1] / self.source_rate):g} s is after the last frame "
                              f"({last:g} s); interpolation stays inside the video (use climode extrapolate to continue it)")


# --------------------------------------------------------------------------- commands
def _bar(total: int | None, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not progress)


def interpolate_frames(frames: Iterable[np.ndarray], plan: TimePlan, model: VideoModel, *,
                       n_frames: int | None = None, progress: bool = False) -> Iterator[tuple[Fraction, np.ndarray]]:
    """(position in source frames, uint8 frame) for every output position of ``plan``, in order.

    A position that is a source frame yields that frame unchanged; the others are
    predicted from the window of ``model.n_inputs`` source frames around them.
    """
    n_in = model.n_inputs
    scale = model.model_frames("interpolate")
    history: deque[tuple[int, np.ndarray]] = deque(maxlen=n_in)
    start = 0  # first gap not yet emitted
    bar = _bar(n_frames, "interpolate", progress)

    def emit_gaps(last: int) -> Iterator[tuple[Fraction, np.ndarray]]:
        nonlocal start
        window = list(history)
        w0 = window[0][0]
        positions = [p for g in range(start, last) for p in plan.in_gap(g)]
        queries = [p for p in positions if p.denominator != 1]
        predicted = {}
        if queries:
            stack = np.stack([f for _, f in window])
            t_in = [(idx - w0) * scale for idx, _ in window]
            t_q = [float((p - w0) * scale) for p in queries]
            predicted = dict(zip(queries, model.predict(stack, t_in, t_q, two_way=True)))
        frames_by_index = dict(window)
        for p in positions:
            yield p, frames_by_index[int(p)] if p.denominator == 1 else predicted[p]
        start = last

    try:
        count = 0
        for index, frame in enumerate(frames):
            if index and frame.shape != history[-1][1].shape:
                raise DataError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, the video started at "
                                f"{history[-1][1].shape[1]}x{history[-1][1].shape[0]}")
            history.append((index, frame))
            count = index + 1
            bar.update(1)
            if index - start == n_in - 1:  # a full window: emit its gaps, keep its last frame
                yield from emit_gaps(index)
        if count == 0:
            raise DataError("the video has no frames")
        plan.check_end(count)
        last = count - 1
        if start < last:
            yield from emit_gaps(last)
        if Fraction(last) in plan.in_gap(last):
            yield Fraction(last), history[-1][1]
    finally:
        bar.close()


def interpolate(source, output: str | os.PathLike, *, factor: int | None = None, fps: float | None = None,
                times: Sequence[float] | None = None, model: VideoModel | None = None, overwrite: bool = False,
                progress: bool = True) -> dict:
    """Convert the frame rate of ``source`` (a path or :class:`~climode.data.video_io.VideoSource`) into ``output``.

    Exactly one of ``factor`` (k times the frame rate), ``fps`` (a new rate) and
    ``times`` (seconds) is given.  Returns a summary (frames in and out, rates).
    """
    from climode.data.video_io import VideoWriter, as_rate, check_output, open_video

    chosen = [name for name, v in (("factor", factor), ("fps", fps), ("times", times)) if v is not None]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --factor, --fps and --times")
    target = check_output(output, overwrite)
    video = source if not isinstance(source, (str, os.PathLike)) else open_video(source)
    if factor is not None:
        plan = TimePlan.factor(factor, video.rate)
    elif fps is not None:
        plan = TimePlan.fps(as_rate(fps), video.rate)
    else:
        plan = TimePlan.times(times, video.rate)
    if video.n_frames:
        plan.check_end(video.n_frames)
    model = model or load_video_model()
    out_rate = plan.rate or video.rate
    time_base = 1 / out_rate if plan.rate is not None else None
    n_out = 0
    with VideoWriter(target, out_rate, time_base=time_base) as writer:
        for position, frame in interpolate_frames(video.frames(), plan, model, n_frames=video.n_frames,
                                                  progress=progress):
            writer.write(frame, float(position / video.rate))
            n_out += 1
    log.info("wrote %d frames to %s", n_out, target)
    return {"input": str(video.path), "output": str(target), "frames_in": video.n_frames, "frames_out": n_out,
            "fps_in": float(video.rate), "fps_out": None if plan.rate is None else float(plan.rate)}


def extrapolate_frames(frames: Iterable[np.ndarray], n_new: int, model: VideoModel, *, n_frames: int | None = None,
                       progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, uint8 frame): the source frames unchanged, then ``n_new`` predicted ones.

    Predictions go ``model.n_future`` frames at a time from the newest
    ``model.n_inputs`` frames (predicted frames become inputs of the next chunk).
    """
    if not isinstance(n_new, int) or n_new < 1:
        raise ConfigError(f"--frames must be a whole number >= 1, got {n_new!r}")
    n_in = model.n_inputs
    scale = model.model_frames("extrapolate")
    history: deque[np.ndarray] = deque(maxlen=n_in)
    bar = _bar(None if n_frames is None else n_frames + n_new, "extrapolate", progress)
    try:
        count = 0
        for index, frame in enumerate(frames):
            history.append(frame)
            count = index + 1
            bar.update(1)
            yield index, frame
        if count == 0:
            raise DataError("the video has no frames")
        made = 0
        while made < n_new:
            chunk = min(model.n_future, n_new - made)
            window = list(history)
            t_in = [k * scale for k in range(len(window))]
            t_q = [(len(window) - 1 + j) * scale for j in range(1, chunk + 1)]
            for frame in model.predict(np.stack(window), t_in, t_q):
                history.append(frame)
                yield count + made, frame
                made += 1
                bar.update(1)
    finally:
        bar.close()


def extrapolate(source, output: str | os.PathLike, *, frames: int = 10, model: VideoModel | None = None,
                overwrite: bool = False, progress: bool = True) -> dict:
    """Write ``source`` followed by ``frames`` predicted frames (same rate and size) to ``output``."""
    from climode.data.video_io import VideoWriter, check_output, open_video

    target = check_output(output, overwrite)
    video = source if not isinstance(source, (str, os.PathLike)) else open_video(source)
    model = model or load_video_model()
    n_out = 0
    with VideoWriter(target, video.rate, time_base=1 / video.rate) as writer:
        for index, frame in extrapolate_frames(video.frames(), frames, model, n_frames=video.n_frames,
                                               progress=progress):
            writer.write(frame, float(index / video.rate))
            n_out += 1
    log.info("wrote %d frames to %s", n_out, target)
    return {"input": str(video.path), "output": str(target), "frames_in": n_out - frames, "frames_out": n_out,
            "fps_in": float(video.rate), "fps_out": float(video.rate)}
