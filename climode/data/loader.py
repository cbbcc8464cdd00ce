"""A torch Dataset of observation windows over xarray sequences (climate fields or video).

:class:`WindowDataset` cuts windows drawn by a protocol (:mod:`climode.data.sampling`)
out of one or more sequences (seasons, videos; windows never cross from one
sequence into another) and reads only the frames each window needs.
:func:`collate_windows` pads samples with different numbers of inputs or targets
into one batch with masks; :func:`make_loader` wires both into a DataLoader.

Fork safety.  netCDF4/HDF5 handles must not be shared across a ``fork``:

- sequences given as paths (:class:`SequenceSource`, a ``.nc`` path, a glob, a
  ``.zarr`` store) are opened lazily, once per process, the first time a window
  is read there; the handles opened in ``__init__`` to read metadata are closed
  again before it returns;
- for xarray objects opened by the caller, each new process first forgets the
  open files it inherited in xarray's global file cache (without closing the
  parent's handles), so xarray's ``CachingFileManager`` reopens every file in
  that process on first use, exactly as it does after unpickling;
- reads run with dask's synchronous scheduler (a forked thread pool would hang);
  zarr resets its own event loop after a fork.  A dask-backed sequence is read
  chunk by chunk from its graph, flattened once (:class:`_DaskFrames`), so a
  window costs what its own time steps cost, however long the archive.

The process check runs on every read, so this holds with any DataLoader; the
:func:`worker_init` of :func:`make_loader` also limits torch to one thread.
"""

from __future__ import annotations

import abc

import glob
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset, Sampler

from climode.data.normalize import Normalizer
from climode.data.sampling import SHUFFLE_DOMAIN, WindowProtocol, WindowSpec, window_rng
from climode.errors import ConfigError, DataError
from climode.time import hours_since

log = logging.getLogger(__name__)

__all__ = [
    "SequenceSource",
    "StaticChannels",
    "WindowDataset",
    "WindowSampler",
    "collate_windows",
    "make_loader",
    "worker_init",
    "from_array",
    "hours_since",
    "check_regular",
    "observed_steps",
]

_LAT_NAMES = ("lat", "latitude")


# --------------------------------------------------------------------------- time
def check_regular(hours: np.ndarray, step_hours: float | None, name: str, times: Any = None) -> float:
    """Check ``hours`` is strictly increasing with a constant step; return the step.

    ``step_hours`` is the step the protocol needs (``None``: any constant step).
    """
    if hours.size < 2:
        return float(step_hours or 1.0)
    diffs = np.diff(hours)
    label = (lambda i: str(times[i])) if times is not None else (lambda i: f"index {i}")
    bad = np.flatnonzero(~(diffs > 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{name}: time is not strictly increasing at {label(i + 1)}; sort it and drop duplicates")
    expected = float(step_hours) if step_hours is not None else float(diffs[0])
    off = np.flatnonzero(np.abs(diffs - expected) > 1e-6 * max(1.0, expected))
    if off.size:
        i = int(off[0])
        raise DataError(
            f"{name}: time axis is not a regular {expected:g} h grid (step of {diffs[i]:g} h after "
            f"{label(i)}); the protocol needs {expected:g} h steps: fill missing steps with NaN frames "
            "(e.g. ds.reindex(time=...)) or resample"
        )
    return expected


def observed_steps(finite: np.ndarray) -> np.ndarray:
    """Which steps of a window are observed: ``finite`` [T, C, H, W] -> bool [T].

    A step is observed (mask 1) only when every channel has at least one finite
    cell; a step where any one variable is entirely missing is unobserved for
    that sample (mask 0), as in the forecaster.  Cells missing inside an observed
    step stay missing cell by cell (``valid``, and NaN targets kept out of the loss).
    """
    if finite.ndim < 2:
        raise DataError(f"observed_steps needs [time, channel, ...] flags, got shape {finite.shape}")
    return finite.reshape(finite.shape[0], finite.shape[1], -1).any(axis=2).all(axis=1)


# --------------------------------------------------------------------------- fork safety
_keep_inherited: list[Any] = []
_cache_pid = os.getpid()


def _forget_inherited_file_cache() -> None:
    """In a forked child, drop (without closing) the open files inherited in xarray's cache."""
    global _cache_pid
    pid = os.getpid()
    if pid == _cache_pid:
        return
    _cache_pid = pid
    try:
        from xarray.backends import file_manager
    except ImportError:  # pragma: no cover
        return
    # No lock: only the forking thread exists in the child, and a lock held by
    # another thread of the parent at fork time would never be released here.
    for holder in (getattr(file_manager.FILE_CACHE, "_cache", None), getattr(file_manager, "_EVICTED_PINNED", None)):
        if isinstance(holder, dict):
            _keep_inherited.extend(holder.values())  # never closed: the parent owns them
            holder.clear()
    log.debug("process %d forgot %d inherited open files", pid, len(_keep_inherited))


def _synchronous():
    import dask

    return dask.config.set(scheduler="synchronous")


# --------------------------------------------------------------------------- sequences
@dataclass(frozen=True)
class SequenceSource:
    """One continuous sequence stored in files, opened lazily in each process.

    ``paths``: NetCDF files concatenated along time (sorted by their first time),
    or one zarr store.  ``opener(path) -> xr.Dataset`` overrides how a file is
    opened (it must be a picklable top-level function and open lazily).
    """

    paths: tuple[str, ...]
    opener: Callable[[str], xr.Dataset] | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike | Sequence[str | os.PathLike], opener=None) -> "SequenceSource":
        """A path, a glob pattern, or a list of files forming one sequence."""
        if isinstance(path, (str, os.PathLike)):
            text = os.fspath(path)
            paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        else:
            paths = [os.fspath(p) for p in path]
        if not paths:
            raise DataError(f"no files match {path}")
        for p in paths:
            if not os.path.exists(p):
                raise DataError(f"no such file or store: {p}")
        return cls(tuple(paths), opener)


def _default_open(path: str) -> xr.Dataset:
    if path.rstrip("/").endswith(".zarr") or os.path.isdir(path):
        return xr.open_zarr(path, chunks=None)
    return xr.open_dataset(path, chunks=None)


class _Sequence(abc.ABC):
    """A time-ordered run of frames [time, C, H, W] with hours since its first frame."""

    channels: tuple[str, ...]
    hours: np.ndarray
    times: np.ndarray
    grid: tuple[int, int]
    lat: np.ndarray | None
    coords: dict[str, np.ndarray]

    @abc.abstractmethod
    def read(self, idx: np.ndarray) -> np.ndarray:
        """Frames at time indices ``idx`` as float32 [len(idx), C, H, W]."""

    def reopen(self) -> None:
        """Forget file handles opened in another process."""

    @property
    def n_time(self) -> int:
        return int(self.hours.size)


def _spatial_dims(da: xr.DataArray, skip: Sequence[str], name: str) -> tuple[str, str]:
    dims = [d for d in da.dims if d not in skip]
    if "time" not in da.dims or len(dims) != 2:
        raise DataError(
            f"{name} has dims {da.dims}: expected (time, lat, lon) or (time, channel, y, x)"
        )
    return dims[0], dims[1]


def _describe(obj: xr.Dataset | xr.DataArray, variables: Sequence[str] | None, channel_dim: str, name: str):
    """Channel names and per-channel (time, y, x) variables of an xarray object."""
    if isinstance(obj, xr.DataArray):
        if channel_dim in obj.dims:
            labels = ([str(c) for c in obj[channel_dim].values] if channel_dim in obj.coords
                      else [f"c{i}" for i in range(obj.sizes[channel_dim])])
            pick = list(variables) if variables is not None else labels
            missing = [v for v in pick if v not in labels]
            if missing:
                raise DataError(f"{name} has no channel {missing[0]!r}; it has {labels}")
            ydim, xdim = _spatial_dims(obj, ["time", channel_dim], name)
            da = obj.transpose("time", channel_dim, ydim, xdim)
            arrays = [da.isel({channel_dim: labels.index(v)}).variable for v in pick]
            return pick, arrays, da
        obj = obj.to_dataset(name=str(obj.name) if obj.name is not None else "c0")
    names = list(variables) if variables is not None else [
        str(v) for v in obj.data_vars if "time" in obj[v].dims and obj[v].ndim == 3
    ]
    if not names:
        raise DataError(f"{name} has no (time, lat, lon) variables; pass variables=")
    missing = [v for v in names if v not in obj.data_vars]
    if missing:
        raise DataError(f"{name} has no variable {missing[0]!r}; it has {list(map(str, obj.data_vars))}")
    arrays = []
    ref = None
    for v in names:
        ydim, xdim = _spatial_dims(obj[v], ["time"], f"{name} variable {v!r}")
        da = obj[v].transpose("time", ydim, xdim)
        if ref is None:
            ref = da
        elif da.dims != ref.dims:
            raise DataError(f"{name}: variable {v!r} is on dims {da.dims[1:]}, not {ref.dims[1:]}")
        arrays.append(da.variable)
    return names, arrays, ref


def _lat_of(ref: xr.DataArray) -> np.ndarray | None:
    for n in _LAT_NAMES:
        if n in ref.coords and ref[n].ndim == 1 and ref[n].dims[0] in ref.dims[-2:]:
            if ref[n].dims[0] == ref.dims[-2]:
                return np.asarray(ref[n].values, dtype=np.float64)
    return None


def _coords_of(ref: xr.DataArray) -> dict[str, np.ndarray]:
    return {str(d): np.asarray(ref[d].values) for d in ref.dims[-2:] if d in ref.coords}


def _read_arrays(arrays: list[xr.Variable], idx: np.ndarray) -> np.ndarray:
    with _synchronous():
        frames = [np.asarray(a[idx].values) for a in arrays]
    out = np.stack(frames, axis=1) if len(frames) > 1 else frames[0][:, None]
    return out.astype(np.float32, copy=False)


class _DaskFrames:
    """Time steps of a dask-backed ``(time, y, x)`` array, computing only the chunks they fall in.

    The graph is flattened once (in the process that builds the dataset, so
    forked workers inherit it); each read culls it to the chunks of the
    requested steps and runs them synchronously here.  A read therefore costs
    what its chunks cost, however long the archive: indexing the dask array
    itself would re-walk and re-optimise the whole graph on every compute.
    """

    def __init__(self, array: Any):
        self._graph = dict(array.__dask_graph__())
        self._keys = array.__dask_keys__()
        self._starts = np.concatenate([[0], np.cumsum(array.chunks[0])]).astype(np.int64)
        self.n_time = int(array.shape[0])

    def read(self, idx: np.ndarray | slice) -> np.ndarray:
        from dask.local import get_sync
        from dask.optimization import cull

        steps = np.arange(self.n_time)[idx] if isinstance(idx, slice) else np.asarray(idx, dtype=np.int64)
        blocks = np.unique(np.searchsorted(self._starts, steps, side="right") - 1)
        keys = [self._keys[b] for b in blocks]  # [time block][y block][x block]
        flat = [k for block in keys for row in block for k in row]
        graph, _ = cull(self._graph, flat)
        values = dict(zip(flat, get_sync(graph, flat)))
        frames = np.concatenate([np.block([[values[k] for k in row] for row in block]) for block in keys], axis=0)
        first = np.concatenate([np.arange(self._starts[b], self._starts[b + 1]) for b in blocks])
        return frames[np.searchsorted(first, steps)]


def _reader(var: xr.Variable) -> Any:
    """How to read frames of one channel: chunk by chunk for dask, by (lazy) indexing otherwise."""
    # var.chunks is None unless dask-backed; var.data would load a lazily indexed variable
    return _DaskFrames(var.data) if var.chunks is not None else var


def _read_channels(readers: list[Any], idx: np.ndarray | slice) -> np.ndarray:
    with _synchronous():
        frames = [r.read(idx) if isinstance(r, _DaskFrames) else np.asarray(r[idx].values) for r in readers]
    out = np.stack(frames, axis=1) if len(frames) > 1 else frames[0][:, None]
    return out.astype(np.float32, copy=False)


class _XarraySequence(_Sequence):
    """A sequence held as an xarray object (in memory, or lazily backed by files through dask)."""

    def __init__(self, obj, variables, channel_dim: str, name: str):
        names, arrays, ref = _describe(obj, variables, channel_dim, name)
        self.channels = tuple(names)
        self._arrays = arrays
        self._readers = [_reader(a) for a in arrays]
        time = obj["time"]
        self.times = np.asarray(time.values)
        self.hours = hours_since(self.times)
        self.grid = tuple(int(s) for s in arrays[0].shape[1:])  # type: ignore[assignment]
        self.lat = _lat_of(ref)
        self.coords = _coords_of(ref)

    def read(self, idx: np.ndarray) -> np.ndarray:
        if idx.size and idx[-1] - idx[0] + 1 == idx.size:
            idx = slice(int(idx[0]), int(idx[-1]) + 1)  # type: ignore[assignment]
        return _read_channels(self._readers, idx)


class _FileSequence(_Sequence):
    """A sequence stored in one or more files; each process opens them itself."""

    def __init__(self, source: SequenceSource, variables, channel_dim: str, name: str):
        self.source = source
        self._variables = variables
        self._channel_dim = channel_dim
        self._name = name
        opener = source.opener or _default_open
        metas = []
        for path in source.paths:
            ds = opener(path)
            try:
                names, arrays, ref = _describe(ds, variables, channel_dim, f"{name} ({path})")
                metas.append((path, tuple(names), tuple(arrays[0].shape[1:]), np.asarray(ds["time"].values),
                              _lat_of(ref), _coords_of(ref)))
            finally:
                ds.close()  # no handle survives __init__: nothing to share across a fork
        origin = metas[0][3][0]
        metas.sort(key=lambda m: float(hours_since(m[3][:1], origin)[0]))
        self.paths = tuple(m[0] for m in metas)
        self.channels = metas[0][1]
        self.grid = metas[0][2]  # type: ignore[assignment]
        for m in metas[1:]:
            if m[1] != self.channels or m[2] != self.grid:
                raise DataError(
                    f"{name}: {m[0]} has variables {list(m[1])} on a {m[2]} grid, but {metas[0][0]} has "
                    f"{list(self.channels)} on {self.grid}; files of one sequence must match"
                )
        self.times = np.concatenate([m[3] for m in metas])
        self.hours = hours_since(self.times)
        lengths = [len(m[3]) for m in metas]
        self._first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lat = metas[0][4]
        self.coords = metas[0][5]
        self._pid: int | None = None
        self._open: list[tuple[xr.Dataset, list[xr.Variable]]] = []

    def reopen(self) -> None:
        self._pid = None
        self._open = []  # inherited handles are dropped, not closed

    def _handles(self) -> list[tuple[xr.Dataset, list[xr.Variable]]]:
        if self._pid != os.getpid():
            opener = self.source.opener or _default_open
            self._open = []
            for path in self.paths:
                ds = opener(path)
                self._open.append((ds, _describe(ds, self._variables, self._channel_dim, path)[1]))
            self._pid = os.getpid()
        return self._open

    def read(self, idx: np.ndarray) -> np.ndarray:
        handles = self._handles()
        file_of = np.searchsorted(self._first, idx, side="right") - 1
        parts = []
        for f in np.unique(file_of):
            local = idx[file_of == f] - self._first[f]
            if local[-1] - local[0] + 1 == local.size:
                local = slice(int(local[0]), int(local[-1]) + 1)
            parts.append(_read_arrays(handles[f][1], local))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pid"] = None
        state["_open"] = []
        return state

    def close(self) -> None:
        if self._pid == os.getpid():
            for ds, _ in self._open:
                ds.close()
        self.reopen()


def from_array(frames: np.ndarray, times: Any = None, channels: Sequence[str] | None = None) -> list[xr.DataArray]:
    """Wrap frames ``[N, T, C, H, W]`` (or one video ``[T, C, H, W]``) as sequences for :class:`WindowDataset`.

    ``times``: ``None`` (frame numbers 0..T-1), one axis ``[T]`` for all
    videos, or ``[N, T]``; numbers (hours or frames) or datetimes.  No copy is made.
    """
    arr = np.asarray(frames)
    if arr.ndim == 4:
        arr = arr[None]
    if arr.ndim != 5:
        raise DataError(f"frames must be [N, T, C, H, W] or [T, C, H, W], got shape {arr.shape}")
    n, t, c = arr.shape[:3]
    names = list(channels) if channels is not None else [f"c{i}" for i in range(c)]
    if len(names) != c:
        raise DataError(f"{len(names)} channel names for {c} channels")
    if times is None:
        axis = np.broadcast_to(np.arange(t, dtype=np.float64), (n, t))
    else:
        axis = np.asarray(times)
        if axis.ndim == 1:
            axis = np.broadcast_to(axis, (n, axis.size))
        if axis.shape != (n, t):
            raise DataError(f"times must have shape [{t}] or [{n}, {t}], got {np.shape(times)}")
    return [
        xr.DataArray(arr[i], dims=("time", "channel", "y", "x"), coords={"time": axis[i], "channel": names})
        for i in range(n)
    ]


# --------------------------------------------------------------------------- static channels
@dataclass(frozen=True)
class StaticChannels:
    """Time-invariant input channels: cos(latitude) and optionally a land-sea mask on the same grid."""

    cos_lat: bool = True
    land_sea_mask: xr.DataArray | None = None

    def build(self, seq: _Sequence, name: str) -> np.ndarray:
        layers = []
        h, w = seq.grid
        if self.cos_lat:
            if seq.lat is None:
                raise DataError(f"{name} has no 'lat' coordinate for the cos-latitude static channel; "
                                "pass static=StaticChannels(cos_lat=False, ...) or add one")
            layers.append(np.broadcast_to(np.cos(np.deg2rad(seq.lat))[:, None], (h, w)))
        if self.land_sea_mask is not None:
            lsm = self.land_sea_mask
            if lsm.ndim != 2 or lsm.shape != (h, w):
                raise DataError(f"land_sea_mask has shape {lsm.shape} but {name} is on a {h} x {w} grid")
            for d in lsm.dims:
                if d in lsm.coords and str(d) in seq.coords:
                    if not np.allclose(np.asarray(lsm[d].values, dtype=float), np.asarray(seq.coords[str(d)], dtype=float)):
                        raise DataError(f"land_sea_mask {d!r} coordinates differ from those of {name}; regrid it")
            layers.append(np.nan_to_num(np.asarray(lsm.values, dtype=np.float64)))
        if not layers:
            raise ConfigError("StaticChannels has no channel enabled")
        return np.stack(layers).astype(np.float32)


# --------------------------------------------------------------------------- dataset
class WindowDataset(Dataset):
    """Windows drawn by ``protocol`` from one or more sequences, as normalised tensors.

    ``datasets``: an xarray Dataset (time, lat, lon), a DataArray (time, channel,
    y, x), a path / glob / :class:`SequenceSource`, a numpy array ``[N, T, C, H, W]``,
    or a list of these (each one a separate sequence).  ``variables``: channels
    to use, in order (default: all).  ``normalizer``: statistics (default: identity).

    With ``samples_per_epoch=None`` item ``i`` is the ``i``-th window start (every
    ``stride`` frames of every sequence); otherwise each item draws a sequence and
    start at random.  Either way item ``i`` of epoch ``e`` depends only on
    ``(seed, e, i)``.  Items may also be indexed by ``(epoch, i)``.
    """

    def __init__(
        self,
        datasets: Any,
        variables: Sequence[str] | None = None,
        protocol: WindowProtocol | None = None,
        normalizer: Normalizer | None = None,
        seed: int = 0,
        samples_per_epoch: int | None = None,
        static: StaticChannels | bool | xr.DataArray | None = None,
        *,
        stride: int = 1,
        channel_dim: str = "channel",
    ):
        if protocol is None or not isinstance(protocol, WindowProtocol):
            raise ConfigError(f"protocol must be a climode.data.sampling protocol, got {protocol!r}")
        if int(stride) != stride or stride < 1:
            raise ConfigError(f"stride must be a positive integer, got {stride!r}")
        if samples_per_epoch is not None and (int(samples_per_epoch) != samples_per_epoch or samples_per_epoch < 1):
            raise ConfigError(f"samples_per_epoch must be a positive integer or None, got {samples_per_epoch!r}")
        window_rng(seed, 0, 0)  # validates the seed
        self.protocol = protocol
        self.seed = int(seed)
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self.stride = int(stride)
        self.epoch = 0
        self._sequences = [self._make_sequence(item, variables, channel_dim, i)
                           for i, item in enumerate(self._items(datasets))]
        self.channels = self._sequences[0].channels
        for i, seq in enumerate(self._sequences[1:], 1):
            if seq.channels != self.channels:
                raise DataError(f"sequence {i} has channels {list(seq.channels)}, sequence 0 has {list(self.channels)}")
        self.normalizer = Normalizer.identity(self.channels) if normalizer is None else normalizer.select(self.channels)
        self.step_hours: list[float] = []
        for i, seq in enumerate(self._sequences):
            self.step_hours.append(check_regular(seq.hours, protocol.step_hours, f"sequence {i}", seq.times))
        need = protocol.max_length
        self._starts = np.array(
            [max(0, (seq.n_time - need) // self.stride + 1) if seq.n_time >= need else 0 for seq in self._sequences],
            dtype=np.int64,
        )
        if self._starts.sum() == 0:
            longest = max(seq.n_time for seq in self._sequences)
            raise DataError(f"the protocol needs windows of {need} frames but the longest sequence has {longest}; "
                            "use longer sequences or a shorter protocol")
        short = [i for i, n in enumerate(self._starts) if n == 0]
        if short:
            log.warning("sequences %s are shorter than the %d frames a window needs: they give no windows",
                        short, need)
        self._cum = np.concatenate([[0], np.cumsum(self._starts)])
        if static is True:
            static = StaticChannels()
        elif isinstance(static, xr.DataArray):
            static = StaticChannels(land_sea_mask=static)
        elif static is False:
            static = None
        self.static = static
        self._static = [None if static is None else static.build(seq, f"sequence {i}")
                        for i, seq in enumerate(self._sequences)]
        self._pid = os.getpid()
        log.info("WindowDataset: %d sequences, %d windows, channels %s, %s",
                 len(self._sequences), self.n_windows, list(self.channels), protocol)

    @staticmethod
    def _items(datasets: Any) -> list[Any]:
        if isinstance(datasets, np.ndarray):
            return list(from_array(datasets))
        items = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
        if not items:
            raise DataError("no datasets given")
        return items

    @staticmethod
    def _make_sequence(item: Any, variables, channel_dim: str, i: int) -> _Sequence:
        name = f"sequence {i}"
        if isinstance(item, (xr.Dataset, xr.DataArray)):
            if "time" not in item.dims:
                raise DataError(f"{name} has no 'time' dimension (dims {tuple(item.dims)})")
            return _XarraySequence(item, variables, channel_dim, name)
        if isinstance(item, (str, os.PathLike)):
            item = SequenceSource.from_path(item)
        if isinstance(item, SequenceSource):
            return _FileSequence(item, variables, channel_dim, name)
        if isinstance(item, np.ndarray):
            if item.ndim != 4:
                raise DataError(f"{name}: a video array must be [T, C, H, W], got shape {item.shape}")
            return _XarraySequence(from_array(item)[0], variables, channel_dim, name)
        raise DataError(f"{name} is a {type(item).__name__}: give an xarray object, a path or a numpy array")

    # -- indexing ------------------------------------------------------------
    @property
    def n_windows(self) -> int:
        """Number of distinct window starts over all sequences."""
        return int(self._cum[-1])

    def __len__(self) -> int:
        return self.samples_per_epoch if self.samples_per_epoch is not None else self.n_windows

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s random windows (deterministic in ``seed`` and ``epoch``)."""
        if int(epoch) != epoch or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def window(self, index: int, epoch: int | None = None) -> tuple[int, int, WindowSpec]:
        """``(sequence, start frame, spec)`` of item ``index`` in ``epoch`` (default: the current one)."""
        rng = window_rng(self.seed, self.epoch if epoch is None else epoch, index)
        flat = index if self.samples_per_epoch is None else int(rng.integers(self.n_windows))
        seq = int(np.searchsorted(self._cum, flat, side="right") - 1)
        start = int(flat - self._cum[seq]) * self.stride
        return seq, start, self.protocol.sample(rng)

    def reopen(self) -> None:
        """Drop file handles inherited from another process (called in each worker)."""
        _forget_inherited_file_cache()
        for seq in self._sequences:
            seq.reopen()
        self._pid = os.getpid()

    def close(self) -> None:
        """Close the files this process opened."""
        for seq in self._sequences:
            if isinstance(seq, _FileSequence):
                seq.close()

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"window {index} out of range for {n} windows")
        if self._pid != os.getpid():
            self.reopen()
        seq_id, start, spec = self.window(index, epoch)
        return self._load(seq_id, start, spec, index)

    def _load(self, seq_id: int, start: int, spec: WindowSpec, index: int) -> dict[str, torch.Tensor]:
        seq = self._sequences[seq_id]
        in_off = np.asarray(spec.input_offsets, dtype=np.int64)
        tg_off = np.asarray(spec.target_offsets, dtype=np.int64)
        offsets = np.union1d(in_off, tg_off)
        raw = seq.read(start + offsets)
        frames = self.normalizer.normalize(raw, channel_axis=1).astype(np.float32, copy=False)
        inputs = frames[np.searchsorted(offsets, in_off)]
        targets = frames[np.searchsorted(offsets, tg_off)]
        finite = np.isfinite(inputs)
        input_mask = observed_steps(finite)
        if not input_mask.any():
            raise DataError(
                f"window at frame {start} of sequence {seq_id} ({seq.times[start]}) has no input step with "
                f"every variable of {list(self.channels)} present; drop all-missing periods from the data"
            )
        valid = finite[input_mask].any(axis=0)
        inputs = np.where(finite, inputs, np.float32(0.0))
        target_mask = observed_steps(np.isfinite(targets))
        hours = seq.hours[start + offsets]
        origin = hours[np.searchsorted(offsets, in_off[input_mask][0])]
        item = {
            "inputs": torch.from_numpy(np.ascontiguousarray(inputs)),
            "input_times": torch.from_numpy(hours[np.searchsorted(offsets, in_off)] - origin),
            "input_mask": torch.from_numpy(input_mask.astype(np.float32)),
            "targets": torch.from_numpy(np.ascontiguousarray(targets)),
            "target_times": torch.from_numpy(hours[np.searchsorted(offsets, tg_off)] - origin),
            "target_mask": torch.from_numpy(target_mask.astype(np.float32)),
            "valid": torch.from_numpy(valid.astype(np.float32)),
            "start": torch.tensor(start, dtype=torch.int64),
            "sequence": torch.tensor(seq_id, dtype=torch.int64),
            "sample_index": torch.tensor(index, dtype=torch.int64),
        }
        if self._static[seq_id] is not None:
            item["static"] = torch.from_numpy(self._static[seq_id])
        return item


# --------------------------------------------------------------------------- batching
def _last_step(times: torch.Tensor) -> float:
    steps = torch.diff(times.to(torch.float64))
    steps = steps[steps > 0]
    return float(steps[-1]) if steps.numel() else 1.0


def _padded_times(times: torch.Tensor, size: int, step: float) -> torch.Tensor:
    """``times`` extended to ``size`` entries, ``step`` apart after the last real one."""
    n = times.numel()
    if n >= size:
        return times
    last = float(times[-1]) if n else 0.0
    pad = last + step * torch.arange(1, size - n + 1, dtype=torch.float64)
    return torch.cat([times.to(torch.float64), pad])


def collate_windows(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack window items into a batch, padding inputs and targets to the batch maximum.

    Padded entries have mask 0, inputs 0, targets NaN, and times that continue
    after the last real time so every row stays sorted.
    """
    if not items:
        raise ConfigError("cannot collate an empty list of windows")
    shape = tuple(items[0]["valid"].shape)
    for it in items[1:]:
        if tuple(it["valid"].shape) != shape:
            raise DataError(f"windows of one batch have different channel/grid shapes {shape} and "
                            f"{tuple(it['valid'].shape)}; batch sequences of one grid together")
    b = len(items)
    t = max(int(it["inputs"].shape[0]) for it in items)
    k = max(int(it["targets"].shape[0]) for it in items)
    out = {
        "inputs": torch.zeros((b, t, *shape), dtype=torch.float32),
        "input_times": torch.zeros((b, t), dtype=torch.float64),
        "input_mask": torch.zeros((b, t), dtype=torch.float32),
        "targets": torch.full((b, k, *shape), float("nan"), dtype=torch.float32),
        "target_times": torch.zeros((b, k), dtype=torch.float64),
        "target_mask": torch.zeros((b, k), dtype=torch.float32),
    }
    for i, it in enumerate(items):
        n, m = it["inputs"].shape[0], it["targets"].shape[0]
        out["inputs"][i, :n] = it["inputs"]
        out["input_mask"][i, :n] = it["input_mask"]
        step = _last_step(torch.cat([it["input_times"], it["target_times"]]).sort().values)
        out["input_times"][i] = _padded_times(it["input_times"], t, step)
        out["targets"][i, :m] = it["targets"]
        out["target_mask"][i, :m] = it["target_mask"]
        last_input = out["input_times"][i, n - 1 : n]
        out["target_times"][i] = _padded_times(it["target_times"], k, step) if m else (
            _padded_times(last_input, k + 1, step)[1:])
    for key in ("valid", "start", "sequence", "sample_index"):
        out[key] = torch.stack([it[key] for it in items])
    has_static = ["static" in it for it in items]
    if any(has_static):
        if not all(has_static):
            raise DataError("some windows of the batch have static channels and some do not")
        out["static"] = torch.stack([it["static"] for it in items])
    return out


class WindowSampler(Sampler):
    """Yields ``(epoch, index)`` keys, the epoch read from the dataset when iteration starts.

    Passing the epoch with each key keeps ``set_epoch`` effective even with
    persistent workers.  ``shuffle`` permutes the indices with a generator seeded
    by ``(seed, epoch)``.
    """

    def __init__(self, dataset: WindowDataset, shuffle: bool = False, seed: int = 0):
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        n = len(self.dataset)
        if self.shuffle:
            seq = np.random.SeedSequence(self.seed, spawn_key=(SHUFFLE_DOMAIN, epoch))
            order = np.random.Generator(np.random.PCG64(seq)).permutation(n)
        else:
            order = np.arange(n)
        return iter([(epoch, int(i)) for i in order])


def worker_init(worker_id: int) -> None:
    """DataLoader worker start-up: one torch thread, and file handles of this process only."""
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    dataset = getattr(info, "dataset", None)
    if isinstance(dataset, WindowDataset):
        dataset.reopen()
    else:
        _forget_inherited_file_cache()


def make_loader(
    dataset: WindowDataset,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """A DataLoader of padded window batches (see :func:`collate_windows`).

    Keeps partial batches unless ``drop_last``.  Works with ``num_workers > 0``
    (fork, forkserver or spawn): each worker uses one torch thread and opens its
    own files.  Call
    ``dataset.set_epoch(e)`` before iterating to get epoch ``e``'s windows.
    """
    if not isinstance(dataset, WindowDataset):
        raise ConfigError(f"make_loader needs a WindowDataset, got {type(dataset).__name__}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if int(num_workers) != num_workers or num_workers < 0:
        raise ConfigError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["worker_init_fn"] = worker_init
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
        if multiprocessing_context is not None:
            kwargs["multiprocessing_context"] = multiprocessing_context
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        sampler=WindowSampler(dataset, shuffle=shuffle, seed=seed),
        num_workers=int(num_workers),
        collate_fn=collate_windows,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(int(seed)),
        **kwargs,
    )
