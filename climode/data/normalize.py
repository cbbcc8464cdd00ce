"""Per-channel normalisation statistics: computed once, stored as JSON, applied anywhere.

:func:`compute_stats` reduces each variable (NaN-skipping mean and standard
deviation over time and space) lazily: on dask-backed datasets the work is a
chunk-wise tree reduction, so the archive is never loaded into memory.
:func:`load_or_compute_stats` stores them once as JSON (checked against a
:func:`files_fingerprint` of the data) and reads them back afterwards.
:class:`Normalizer` applies the statistics to xarray objects, numpy arrays and
torch tensors alike.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from climode.errors import DataError
from climode.io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["Normalizer", "compute_stats", "files_fingerprint", "load_or_compute_stats", "open_lazy",
           "stats_cache_dir"]

_FORMAT = "climode-normalizer"
_VERSION = 1


@dataclass(frozen=True)
class Normalizer:
    """``(x - mean) / std`` per channel; ``variables`` names the channels in order."""

    variables: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", tuple(str(v) for v in self.variables))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.count is not None:
            object.__setattr__(self, "count", tuple(int(v) for v in self.count))
        n = len(self.variables)
        if len(self.mean) != n or len(self.std) != n or (self.count is not None and len(self.count) != n):
            raise DataError("normalizer statistics must have one mean and one std per variable")
        if len(set(self.variables)) != n:
            raise DataError(f"normalizer variables must be unique, got {list(self.variables)}")
        for v, m, s in zip(self.variables, self.mean, self.std):
            if not (math.isfinite(m) and math.isfinite(s) and s > 0):
                raise DataError(f"normalizer for {v!r} has mean {m} and std {s}: std must be finite and > 0")

    # -- construction -------------------------------------------------------
    @classmethod
    def identity(cls, variables: Sequence[str]) -> "Normalizer":
        """A normalizer that changes nothing."""
        return cls.scale(variables, 1.0)

    @classmethod
    def scale(cls, variables: Sequence[str], scale: float, offset: float = 0.0) -> "Normalizer":
        """``(x - offset) / scale`` for every channel, e.g. ``scale=255`` maps 8-bit video to [0, 1]."""
        n = len(variables)
        return cls(tuple(variables), (offset,) * n, (scale,) * n)

    def select(self, variables: Sequence[str]) -> "Normalizer":
        """The statistics of ``variables``, in that order."""
        missing = [v for v in variables if v not in self.variables]
        if missing:
            raise DataError(
                f"normalizer has no statistics for {missing}; it covers {list(self.variables)}: "
                "recompute them with climode.data.normalize.compute_stats"
            )
        idx = [self.variables.index(v) for v in variables]
        count = None if self.count is None else tuple(self.count[i] for i in idx)
        return Normalizer(tuple(variables), tuple(self.mean[i] for i in idx), tuple(self.std[i] for i in idx), count)

    # -- serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "variables": list(self.variables),
            "mean": list(self.mean),
            "std": list(self.std),
        }
        if self.count is not None:
            out["count"] = list(self.count)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Normalizer":
        if not isinstance(data, dict) or data.get("format", _FORMAT) != _FORMAT:
            raise DataError("not a climode normalizer: expected a mapping with format 'climode-normalizer'")
        if int(data.get("version", _VERSION)) > _VERSION:
            raise DataError(f"normalizer version {data['version']} is newer than this climode; upgrade climode")
        try:
            return cls(tuple(data["variables"]), tuple(data["mean"]), tuple(data["std"]),
                       None if data.get("count") is None else tuple(data["count"]))
        except KeyError as exc:
            raise DataError(f"normalizer is missing the {exc.args[0]!r} entry") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics as a small JSON file (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Normalizer":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read normalizer statistics {path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"normalizer statistics {path} is not valid JSON ({exc.msg}); delete it to recompute") from None
        return cls.from_dict(data)

    # -- application --------------------------------------------------------
    def normalize(self, x: Any, channel_axis: int = -3, channel_dim: str = "channel") -> Any:
        """Normalise ``x``: an xarray Dataset (by variable name), a DataArray (by ``channel_dim``
        or its name), or a numpy array / torch tensor with channels on ``channel_axis``."""
        return self._apply(x, channel_axis, channel_dim, inverse=False)

    def denormalize(self, x: Any, channel_axis: int = -3, channel_dim: str = "channel") -> Any:
        """The inverse of :meth:`normalize`: back to physical units."""
        return self._apply(x, channel_axis, channel_dim, inverse=True)

    def _apply(self, x: Any, channel_axis: int, channel_dim: str, inverse: bool) -> Any:
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        if _is_xarray(x):
            return self._apply_xarray(x, mean, std, channel_dim, inverse)
        if _is_torch(x):
            import torch

            dtype = x.dtype if x.is_floating_point() else torch.float32
            shape = self._broadcast_shape(tuple(x.shape), channel_axis)
            m = torch.as_tensor(mean, dtype=dtype, device=x.device).reshape(shape)
            s = torch.as_tensor(std, dtype=dtype, device=x.device).reshape(shape)
            x = x.to(dtype)
            return x * s + m if inverse else (x - m) / s
        arr = np.asarray(x)
        dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float32)
        shape = self._broadcast_shape(arr.shape, channel_axis)
        m = mean.astype(dtype).reshape(shape)
        s = std.astype(dtype).reshape(shape)
        arr = arr.astype(dtype, copy=False)
        return arr * s + m if inverse else (arr - m) / s

    def _broadcast_shape(self, shape: tuple[int, ...], channel_axis: int) -> tuple[int, ...]:
        ndim = len(shape)
        if not -ndim <= channel_axis < ndim:
            raise DataError(f"channel_axis {channel_axis} is out of range for an array of shape {shape}")
        axis = channel_axis % ndim
        if shape[axis] != len(self.variables):
            raise DataError(
                f"array has {shape[axis]} channels on axis {channel_axis} (shape {shape}) but the "
                f"normalizer has {len(self.variables)} ({list(self.variables)}); pass the right channel_axis"
            )
        out = [1] * ndim
        out[axis] = len(self.variables)
        return tuple(out)

    def _apply_xarray(self, x: Any, mean: np.ndarray, std: np.ndarray, channel_dim: str, inverse: bool) -> Any:
        import xarray as xr

        def one(da: xr.DataArray, m: Any, s: Any) -> xr.DataArray:
            dtype = da.dtype if np.issubdtype(da.dtype, np.floating) else np.dtype(np.float32)
            m = m.astype(dtype) if isinstance(m, xr.DataArray) else dtype.type(m)
            s = s.astype(dtype) if isinstance(s, xr.DataArray) else dtype.type(s)
            da = da.astype(dtype, copy=False)
            out = da * s + m if inverse else (da - m) / s
            out.attrs = dict(da.attrs)
            if not inverse:
                out.attrs["units"] = "1"
                if "units" in da.attrs:
                    out.attrs["physical_units"] = da.attrs["units"]
            elif "physical_units" in da.attrs:
                out.attrs["units"] = out.attrs.pop("physical_units")
            return out

        if isinstance(x, xr.Dataset):
            present = [v for v in self.variables if v in x.data_vars]
            if not present:
                raise DataError(f"dataset has none of the normalizer's variables {list(self.variables)}")
            out = x.copy()
            for v in present:
                i = self.variables.index(v)
                out[v] = one(x[v], mean[i], std[i])
            return out
        if channel_dim in x.dims:
            labels = [str(v) for v in x[channel_dim].values] if channel_dim in x.coords else None
            if labels is not None and all(lab in self.variables for lab in labels):
                idx = [self.variables.index(lab) for lab in labels]
            elif x.sizes[channel_dim] == len(self.variables):
                idx = list(range(len(self.variables)))
            else:
                raise DataError(
                    f"DataArray has {x.sizes[channel_dim]} {channel_dim!r} entries but the normalizer "
                    f"covers {list(self.variables)}"
                )
            m = xr.DataArray(mean[idx], dims=[channel_dim])
            s = xr.DataArray(std[idx], dims=[channel_dim])
            return one(x, m, s)
        if x.name in self.variables:
            i = self.variables.index(x.name)
            return one(x, mean[i], std[i])
        raise DataError(
            f"cannot tell which channel DataArray {x.name!r} is: give it a {channel_dim!r} dimension "
            f"or name it after one of {list(self.variables)}"
        )


def _is_xarray(x: Any) -> bool:
    return type(x).__module__.startswith("xarray.")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def open_lazy(path: str | os.PathLike) -> Any:
    """Open a NetCDF file, a glob of NetCDF files or a zarr store as a dask-backed dataset.

    Dask chunks are large multiples of the on-disk chunks ("auto"), so a
    reduction over a finely chunked store is not drowned in per-task overhead.
    """
    import xarray as xr

    text = os.fspath(path)
    if text.rstrip("/").endswith(".zarr") or (os.path.isdir(text) and not glob.has_magic(text)):
        return xr.open_zarr(text, chunks="auto")
    files = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
    if not files or not all(os.path.exists(f) for f in files):
        raise DataError(f"no data at {text}: give an existing .nc file, a glob of .nc files or a .zarr store")
    if len(files) == 1:
        return xr.open_dataset(files[0], chunks="auto")
    return xr.open_mfdataset(files, combine="by_coords", chunks="auto")


def pick_channels(data, variables: Sequence[str] | None, channel_dim: str, name: str) -> tuple[list[str], list[int]]:
    """The channels ``variables`` (all by default) of a DataArray with a channel dimension, and their positions.

    Channels are named by the dimension's coordinate, or ``c0, c1, ...`` without one.
    """
    labels = ([str(c) for c in data[channel_dim].values] if channel_dim in data.coords
              else [f"c{i}" for i in range(data.sizes[channel_dim])])
    pick = list(variables) if variables is not None else labels
    missing = [v for v in pick if v not in labels]
    if missing:
        raise DataError(f"{name} has no channel {missing[0]!r}; it has {labels}")
    return pick, [labels.index(v) for v in pick]

def _moments(data: Any, variables: Sequence[str] | None, channel_dim: str, channel_axis: int):
    """Lazy (count, mean, M2) per channel of one item, plus the channel names."""
    import xarray as xr

    if isinstance(data, (str, os.PathLike)):
        data = open_lazy(data)
    if isinstance(data, xr.Dataset):
        names = list(variables) if variables is not None else [
            str(v) for v in data.data_vars if "time" in data[v].dims
        ]
        missing = [v for v in names if v not in data.data_vars]
        if missing:
            raise DataError(f"dataset has no variable {missing[0]!r}; it has {list(map(str, data.data_vars))}")
        arrays = [data[v] for v in names]
    elif isinstance(data, xr.DataArray):
        if channel_dim in data.dims:
            names, positions = pick_channels(data, variables, channel_dim, "DataArray")
            arrays = [data.isel({channel_dim: i}) for i in positions]
        else:
            names = [str(data.name) if data.name is not None else "c0"]
            arrays = [data]
    else:
        arr = np.asarray(data)
        axis = channel_axis % arr.ndim
        names = list(variables) if variables is not None else [f"c{i}" for i in range(arr.shape[axis])]
        if len(names) != arr.shape[axis]:
            raise DataError(f"array has {arr.shape[axis]} channels on axis {channel_axis} but {len(names)} names")
        arr = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1).astype(np.float64)
        count = np.isfinite(arr).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(arr, axis=1) / np.maximum(count, 1), np.nan)
            m2 = np.nansum((arr - mean[:, None]) ** 2, axis=1)
        return names, [(count[i], mean[i], m2[i]) for i in range(len(names))]
    out = []
    for da in arrays:
        x = da.astype(np.float64)
        n = x.count()
        out.append((n, x.mean(skipna=True), x.var(skipna=True) * n))
    return names, [tuple(getattr(v, "data", v) for v in t) for t in out]


def compute_stats(
    data: Any,
    variables: Sequence[str] | None = None,
    *,
    channel_dim: str = "channel",
    channel_axis: int = -3,
    path: str | os.PathLike | None = None,
) -> Normalizer:
    """NaN-skipping mean and std of each channel over all times and cells.

    ``data`` is a dataset, DataArray (channels on ``channel_dim``), numpy array
    (channels on ``channel_axis``), a path (NetCDF, glob or zarr), or a list of
    these (separate seasons or videos), pooled together.  Dask-backed inputs are
    reduced chunk by chunk in a single pass.  With ``path`` the result is also
    written there as JSON.
    """
    import dask

    items = list(data) if isinstance(data, (list, tuple)) else [data]
    if not items:
        raise DataError("no data given to compute normalisation statistics from")
    names: list[str] | None = None
    lazy: list[list[tuple[Any, Any, Any]]] = []
    for item in items:
        item_names, moments = _moments(item, variables, channel_dim, channel_axis)
        if names is None:
            names = item_names
        elif item_names != names:
            raise DataError(f"datasets disagree on variables: {names} vs {item_names}; pass variables=")
        lazy.append(moments)
    (computed,) = dask.compute(lazy)
    assert names is not None
    means, stds, counts = [], [], []
    for c, name in enumerate(names):
        n_tot, mean_tot, m2_tot = 0.0, 0.0, 0.0
        for moments in computed:  # Chan et al.'s pairwise combination
            n, mean, m2 = (float(np.asarray(v)) for v in moments[c])
            if n == 0:
                continue
            delta = mean - mean_tot
            n_new = n_tot + n
            mean_tot += delta * n / n_new
            m2_tot += m2 + delta * delta * n_tot * n / n_new
            n_tot = n_new
        if n_tot == 0:
            raise DataError(f"variable {name!r} has no finite values: cannot compute its statistics")
        std = math.sqrt(max(m2_tot / n_tot, 0.0))
        if not std > 0:
            log.warning("variable %r is constant (%g); using std 1", name, mean_tot)
            std = 1.0
        means.append(mean_tot)
        stds.append(std)
        counts.append(int(n_tot))
    norm = Normalizer(tuple(names), tuple(means), tuple(stds), tuple(counts))
    log.info("normalisation statistics: %s", dict(zip(names, zip(means, stds))))
    if path is not None:
        norm.save(path)
    return norm


def load_or_compute_stats(
    path: str | os.PathLike,
    data: Any,
    variables: Sequence[str] | None = None,
    *,
    key: str | None = None,
    **kwargs: Any,
) -> Normalizer:
    """Reload the statistics stored at ``path``, or compute them once and store them there.

    ``data`` may be a callable returning the data, so nothing is opened when the
    statistics are already stored.  With ``key`` (a fingerprint of the data, see
    :func:`files_fingerprint`) the stored statistics are used only if they were
    computed with the same key; otherwise they are recomputed and replaced.
    """
    target = Path(path)
    if target.exists():
        stored = _read_json(target)
        if key is None or stored.get("source_key") == key:
            norm = Normalizer.from_dict(stored)
            if variables is None or all(v in norm.variables for v in variables):
                log.info("normalisation statistics read from %s", target)
                return norm if variables is None else norm.select(variables)
        log.info("statistics in %s were computed from other data: recomputing them", target)
    norm = compute_stats(data() if callable(data) else data, variables, **kwargs)
    record = norm.to_dict()
    if key is not None:
        record["source_key"] = key
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(record, indent=2) + "\n")
    log.info("normalisation statistics stored in %s", target)
    return norm


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read normalizer statistics {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"normalizer statistics {path} is not valid JSON ({exc.msg}); delete it to recompute") from None
    if not isinstance(data, dict):
        raise DataError(f"normalizer statistics {path} is not a JSON mapping; delete it to recompute")
    return data


#: Files of a zarr store whose change means the data changed (metadata is rewritten on every write).
_ZARR_METADATA = (".zmetadata", ".zarray", ".zattrs", ".zgroup", "zarr.json")


def files_fingerprint(paths: Sequence[str | os.PathLike], **identity: Any) -> str:
    """A hex digest naming these files as they are now (path, size, modification time) plus ``identity``.

    A zarr store counts by its metadata files, which every write rewrites.
    ``identity`` holds whatever else decides the values (variables, region, mapping).
    """
    import hashlib

    from climode import __version__

    entries: list[Any] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            for meta in sorted(path.rglob("*")):
                if meta.name in _ZARR_METADATA and meta.is_file():
                    st = meta.stat()
                    entries.append([str(meta), st.st_size, st.st_mtime_ns])
        else:
            st = path.stat()
            entries.append([str(path), st.st_size, st.st_mtime_ns])
    text = json.dumps({"files": entries, "climode": __version__, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stats_cache_dir() -> Path:
    """Where statistics of file archives are stored: ``$CLIMODE_CACHE/stats``, else ``~/.cache/climode/stats``."""
    root = os.environ.get("CLIMODE_CACHE")
    if root:
        return Path(root).expanduser() / "stats"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "climode" / "stats"
