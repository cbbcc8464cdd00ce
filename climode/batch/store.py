"""The batch output: one zarr store, one group per basin, one ``init_time`` slot per task.

Layout of ``OUTPUT.zarr`` (see docs/batch.md)::

    /                      root group; attribute climode_batch (JSON: init times, lead hours,
                           variables, checkpoint sha256, calendar) identifies the batch
    /<basin>/              one group per basin (grids differ between basins)
        U850, V850, PSL    (init_time, lead_time, lat, lon) float32, one chunk per init_time
        done               (init_time) int8: 1 once that task's forecast is completely written
        init_time          requested init times, in the data's calendar
        lead_time          forecast periods (after forecast_reference_time)
        forecast_reference_time (init_time), time (init_time, lead_time): last input used, valid times
        lat, lon

Crash safety: a basin group is created whole in a hidden temporary directory of
the store and renamed into place, so it either exists completely or not at all.
A task writes its own chunks only (chunks are one ``init_time`` long), then sets
its ``done`` element; ``done`` is read to decide what is complete, so a task
interrupted before its marker is simply written again by the next run.  Chunk
files are replaced atomically by zarr's local store, and a task's chunk files
are fsync'd before its marker is set (and the marker after), so a marker never
claims data that a crash of the machine could lose.  Metadata are not
consolidated (they would go stale as groups are added): open groups with
``xr.open_zarr(path, group=basin, consolidated=False)``.

The store must be on a local or shared POSIX file system (the group rename,
byte-range locks).  Runs over disjoint tasks (``--parts``) may write one store
at the same time; a run over tasks another live run holds is refused
(:mod:`climode.batch.lock`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.coding.times import encode_cf_datetime

from climode._version import __version__
from climode.batch.lock import StoreLock
from climode.errors import ConfigError, DataError
from climode.time import add_hours, format_time

if TYPE_CHECKING:  # pragma: no cover
    from climode.batch.run import BatchPlan, Task

log = logging.getLogger(__name__)

#: Root attribute holding the batch's identity (JSON).
ROOT_KEY = "climode_batch"
#: Per-group completion marker.
DONE = "done"
FORMAT = 1


def _time_units(plan: BatchPlan) -> str:
    return "hours since " + format_time(plan.init_times[0]).replace("T", " ")


class BatchStore:
    """Read completion markers from, and write task results into, a batch's zarr store."""

    def __init__(self, plan: BatchPlan):
        self.plan = plan
        self.path = Path(plan.output)
        self._grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.lock: StoreLock | None = None
        self._chunk_keys: dict[tuple[str, str], tuple[Any, int]] = {}
        self._opened: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "format": FORMAT,
            "init_times": [format_time(t) for t in plan.init_times],
            "lead_hours": [float(h) for h in plan.lead_hours],
            "variables": list(plan.variables),
            "calendar": plan.calendar,
            "checkpoint_sha256": plan.sha256,
        }

    def _stored_identity(self) -> dict[str, Any]:
        import zarr

        problem = f"output {self.path} exists but is not a climode batch store; choose another output"
        if not self.path.is_dir():
            raise ConfigError(problem)
        try:
            attrs = dict(zarr.open_group(str(self.path), mode="r").attrs)
            return json.loads(attrs[ROOT_KEY])
        except (KeyError, ValueError, OSError, TypeError) as exc:
            raise ConfigError(problem) from exc

    def check(self) -> None:
        """Raise ConfigError if the store exists and holds another batch (read-only)."""
        if not self.path.exists():
            return
        stored, wanted = self._stored_identity(), self.identity()
        for key, value in wanted.items():
            if stored.get(key) != value:
                raise ConfigError(f"output {self.path} holds another batch (its {key.replace('_', ' ')} differ "
                                  "from this spec's); write to another output or delete it")
        for group, region in self.plan.basins.items():
            if self.has_group(group):
                have = self._group_attrs(group).get("climode_basin", "")
                if have != (region or ""):
                    raise ConfigError(f"output {self.path}: group {group!r} was written for basin "
                                      f"{have or 'domain'!r}, the spec now says {region or 'domain'!r}; "
                                      "rename the basin or use another output")

    def prepare(self) -> None:
        """Create the store (atomically; a concurrent run may create it first) or check it holds this batch."""
        self.check()
        if not self.path.exists():
            attrs = {ROOT_KEY: json.dumps(self.identity()),
                     "climode_batch_spec": json.dumps(self.plan.spec.to_dict(), default=str),
                     "Conventions": "CF-1.8",
                     "history": f"{_now()} climode {__version__} batch"}
            with _new_directory(self.path) as tmp:
                xr.Dataset(attrs=attrs).to_zarr(tmp, mode="w", consolidated=False)
            self.check()  # another run may have created it first, for another batch

    @contextlib.contextmanager
    def claimed(self, tasks: list[Task]) -> Iterator[BatchStore]:
        """Prepare the store, lock ``tasks`` for this process (StoreBusyError if another run holds one),
        remove leftovers of interrupted runs; unlock on exit."""
        self.prepare()
        lock = StoreLock(self.path)
        try:
            lock.claim(((t.basin, t.index) for t in tasks), store=str(self.path))
            with lock.layout():  # a temporary of a live run exists only while it holds the layout lock
                for leftover in self.path.glob(".*.tmp"):
                    log.info("removing %s, left over by an interrupted run", leftover)
                    shutil.rmtree(leftover, ignore_errors=True)
            self.lock = lock
            yield self
        finally:
            self.lock = None
            lock.close()

    # ------------------------------------------------------------ reading
    def has_group(self, group: str) -> bool:
        return (self.path / group).is_dir()

    def _group_attrs(self, group: str) -> dict[str, Any]:
        import zarr

        return dict(zarr.open_group(str(self.path), path=group, mode="r").attrs)

    def completed(self, group: str) -> np.ndarray:
        """Boolean per init time: is that task of ``group`` complete?"""
        import zarr

        n = len(self.plan.init_times)
        if not self.path.exists() or not self.has_group(group):
            return np.zeros(n, dtype=bool)
        done = zarr.open_array(str(self.path), path=f"{group}/{DONE}", mode="r")[:]
        return np.asarray(done) == 1

    def completed_tasks(self) -> set[tuple[str, int]]:
        out = set()
        for group in self.plan.basins:
            out.update((group, int(i)) for i in np.flatnonzero(self.completed(group)))
        return out

    # ------------------------------------------------------------ writing
    def write(self, task: Task, result: xr.Dataset) -> None:
        """Write one task's forecast into its init_time slot, then mark it complete."""
        if not self.has_group(task.basin):
            with self.lock.layout() if self.lock else contextlib.nullcontext():
                if not self.has_group(task.basin):  # a concurrent part may have created it meanwhile
                    self._create_group(task, result)
        region = self._region(task, result)
        arrays = self._arrays(task.basin)
        for name, variable in region.variables.items():  # straight into the slot's chunks (no xarray writer)
            values = variable.values[0]
            if name in ("time", "forecast_reference_time"):  # CF-encoded as xarray wrote the group
                attrs = arrays[name].attrs
                values = encode_cf_datetime(values, attrs["units"], attrs["calendar"], dtype=np.float64)[0]
            arrays[name][task.index] = values
        self._sync(task, list(region.variables))
        arrays[DONE][task.index] = 1
        self._sync(task, [DONE])

    def _arrays(self, group: str) -> dict[str, Any]:
        """The zarr arrays of ``group``, opened once (r+)."""
        if group not in self._opened:
            import zarr

            opened = zarr.open_group(str(self.path), path=group, mode="r+")
            self._opened[group] = {name: opened[name] for name in (*self.plan.variables, "time",
                                                                   "forecast_reference_time", DONE)}
        return self._opened[group]

    def _sync(self, task: Task, names: list[str]) -> None:
        """fsync the chunk files of ``task`` in arrays ``names`` and their directories (for the renames).

        The fsyncs run side by side (the file system commits them together), and
        all of them end before this returns.
        """
        paths = set()
        for name in names:
            chunk = self.path / task.basin / name / self._chunk_key(task.basin, name, task.index)
            paths.update((chunk, chunk.parent))
        existing = [p for p in paths if p.exists()]  # zarr stores no chunk that equals the fill value
        list(_fsync_pool().map(_fsync, existing))

    def _chunk_key(self, group: str, name: str, index: int) -> str:
        """The key of array ``group/name``'s chunk holding init_time ``index`` (the other dims are one chunk)."""
        if (group, name) not in self._chunk_keys:
            import zarr

            array = zarr.open_array(str(self.path), path=f"{group}/{name}", mode="r")
            self._chunk_keys[group, name] = (array.metadata.encode_chunk_key, array.ndim)
        encode, ndim = self._chunk_keys[group, name]
        return encode((index,) + (0,) * (ndim - 1))

    def _grid(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        if group not in self._grids:
            import zarr

            g = zarr.open_group(str(self.path), path=group, mode="r")
            self._grids[group] = (np.asarray(g["lat"][:]), np.asarray(g["lon"][:]))
        return self._grids[group]

    def _region(self, task: Task, result: xr.Dataset) -> xr.Dataset:
        plan = self.plan
        leads = result["forecast_period"].values / np.timedelta64(1, "h")
        if len(leads) != len(plan.lead_hours) or not np.allclose(leads, plan.lead_hours, atol=1e-6):
            raise DataError(f"the forecast's lead times {leads.tolist()} are not the batch's {plan.lead_hours}")
        lat, lon = self._grid(task.basin)
        if (result.sizes["lat"], result.sizes["lon"]) != (lat.size, lon.size) or not (
                np.allclose(result["lat"].values, lat) and np.allclose(result["lon"].values, lon)):
            raise DataError(f"the forecast's grid ({result.sizes['lat']} x {result.sizes['lon']}) differs from the "
                            f"grid of group {task.basin!r} ({lat.size} x {lon.size}) in {self.path}")
        dims = ("init_time", "lead_time", "lat", "lon")
        data = {v: (dims, result[v].transpose("time", "lat", "lon").values[None].astype(np.float32))
                for v in plan.variables}
        coords = {
            "time": (("init_time", "lead_time"), result["time"].values.reshape(1, -1)),
            "forecast_reference_time": (("init_time",), result["forecast_reference_time"].values.reshape(1)),
        }
        return xr.Dataset(data, coords=coords)

    def _create_group(self, task: Task, first: xr.Dataset) -> None:
        """The basin's group with every init_time slot empty (NaN, done = 0), built from its first result."""
        import dask.array as da

        plan = self.plan
        n_init, n_lead = len(plan.init_times), len(plan.lead_hours)
        n_lat, n_lon = first.sizes["lat"], first.sizes["lon"]
        inits = np.array(plan.init_times, dtype=object if not isinstance(plan.init_times[0], np.datetime64) else None)
        planned = np.array([[add_hours(t, h) for h in plan.lead_hours] for t in plan.init_times],
                           dtype=inits.dtype)
        leads = np.array([round(h * 3600) for h in plan.lead_hours], dtype="timedelta64[s]")
        data_vars = {
            v: (("init_time", "lead_time", "lat", "lon"),
                da.full((n_init, n_lead, n_lat, n_lon), np.nan, dtype=np.float32, chunks=(1, n_lead, n_lat, n_lon)),
                dict(first[v].attrs))
            for v in plan.variables
        }
        # written (not left to a fill value, which zarr 2 does not default to 0)
        data_vars[DONE] = (("init_time",), np.zeros(n_init, dtype=np.int8),
                           {"long_name": "1 where the forecast of this init_time is completely written",
                            "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "missing complete"})
        coords = {
            "init_time": ("init_time", inits, {"long_name": "requested initialisation time (inputs at or before it "
                                                            "are used)"}),
            "lead_time": ("lead_time", leads, {"standard_name": "forecast_period",
                                               "long_name": "lead time after forecast_reference_time"}),
            "lat": ("lat", first["lat"].values, dict(first["lat"].attrs)),
            "lon": ("lon", first["lon"].values, dict(first["lon"].attrs)),
            "time": (("init_time", "lead_time"), planned, dict(first["time"].attrs)),
            "forecast_reference_time": (("init_time",), inits.copy(), dict(first["forecast_reference_time"].attrs)),
        }
        attrs = {k: v for k, v in first.attrs.items() if k != "climode_notes"}
        attrs.update(history=f"{_now()} climode {__version__} batch", climode_basin=task.region or "",
                     climode_batch_group=task.basin)
        template = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        time_encoding = {"units": _time_units(plan), "calendar": plan.calendar, "dtype": "float64"}
        encoding = {
            "init_time": dict(time_encoding),
            "time": dict(time_encoding, chunks=(1, n_lead)),
            "forecast_reference_time": dict(time_encoding, chunks=(1,)),
            "lead_time": {"units": "hours", "dtype": "float64"},
            DONE: {"chunks": (1,)},
        }
        with _new_directory(self.path / task.basin) as tmp:
            template.to_zarr(tmp, mode="w", compute=False, encoding=encoding, consolidated=False)
        log.info("created group %s in %s (%d init times x %d lead times, %d x %d grid)",
                 task.basin, self.path, n_init, n_lead, n_lat, n_lon)


@contextlib.contextmanager
def _new_directory(target: Path) -> Iterator[Path]:
    """Build a directory in a hidden temporary beside ``target``, then rename it into place.

    Unlike :func:`climode.io.atomic_path` it never replaces a directory that
    exists meanwhile (another run created it): that one is kept and this one
    dropped.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp / target.name
        try:
            os.rename(tmp / target.name, target)  # fails if target exists and is not empty
        except OSError:
            if not (target.is_dir() and any(target.iterdir())):
                raise
            log.info("%s was created by another run meanwhile", target)
        _fsync(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.cache
def _fsync_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=16, thread_name_prefix="climode-fsync")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
