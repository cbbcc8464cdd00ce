"""Sequences of frames read from xarray objects and files, safely across ``fork``.

A sequence is one time-ordered run of frames ``[time, C, H, W]`` (a season, a
video) with its hours since its first frame; :func:`open_sequence` makes one from
an xarray object, a path / glob / :class:`SequenceSource` or a numpy array, and
:class:`~climode.data.windows.WindowDataset` reads windows out of it.

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
  chunk by chunk from its graph, flattened once (:class:`DaskFrames`), so a
  window costs what its own time steps cost, however long the archive.

The dataset checks its process on every read, so this holds with any
DataLoader; :func:`climode.data.loader.worker_init` also limits torch to one thread.
"""

from __future__ import annotations

import abc
import glob
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from climode.data.normalize import pick_channels
from climode.errors import DataError
from climode.time import hours_since

log = logging.getLogger(__name__)

__all__ = [
    "DaskFrames",
    "FileSequence",
    "FrameSequence",
    "SequenceSource",
    "XarraySequence",
    "forget_inherited_file_cache",
    "from_array",
    "hours_since",
    "open_sequence",
]

_LAT_NAMES = ("lat", "latitude")


# --------------------------------------------------------------------------- fork safety
_keep_inherited: list[Any] = []
_cache_pid = os.getpid()


def forget_inherited_file_cache() -> None:
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


class FrameSequence(abc.ABC):
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
            pick, positions = pick_channels(obj, variables, channel_dim, name)
            ydim, xdim = _spatial_dims(obj, ["time", channel_dim], name)
            da = obj.transpose("time", channel_dim, ydim, xdim)
            arrays = [da.isel({channel_dim: i}).variable for i in positions]
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


class DaskFrames:
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
    return DaskFrames(var.data) if var.chunks is not None else var


def _read_channels(readers: list[Any], idx: np.ndarray | slice) -> np.ndarray:
    with _synchronous():
        frames = [r.read(idx) if isinstance(r, DaskFrames) else np.asarray(r[idx].values) for r in readers]
    out = np.stack(frames, axis=1) if len(frames) > 1 else frames[0][:, None]
    return out.astype(np.float32, copy=False)


class XarraySequence(FrameSequence):
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


class FileSequence(FrameSequence):
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



def open_sequence(item: Any, variables: Sequence[str] | None, channel_dim: str, name: str) -> FrameSequence:
    """The sequence of one item: an xarray object, a path / glob / :class:`SequenceSource`, or ``[T, C, H, W]``."""
    if isinstance(item, (xr.Dataset, xr.DataArray)):
        if "time" not in item.dims:
            raise DataError(f"{name} has no 'time' dimension (dims {tuple(item.dims)})")
        return XarraySequence(item, variables, channel_dim, name)
    if isinstance(item, (str, os.PathLike)):
        item = SequenceSource.from_path(item)
    if isinstance(item, SequenceSource):
        return FileSequence(item, variables, channel_dim, name)
    if isinstance(item, np.ndarray):
        if item.ndim != 4:
            raise DataError(f"{name}: a video array must be [T, C, H, W], got shape {item.shape}")
        return XarraySequence(from_array(item)[0], variables, channel_dim, name)
    raise DataError(f"{name} is a {type(item).__name__}: give an xarray object, a path or a numpy array")
