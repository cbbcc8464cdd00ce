"""Planning and running a batch: tasks (init time x basin) on Dask workers, results into one store.

:func:`plan_batch` reads the spec against the checkpoint and the data (the
data's calendar turns the init times into dates); :func:`run_batch` skips the
tasks the output already holds, submits the others with ``client.map`` and
writes each result as it arrives.  Workers run :func:`forecast_task`, which
loads the model and opens the data once per worker process and reuses them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climode.batch.parts import Part
from climode.batch.spec import BatchSpec, init_times
from climode.errors import CheckpointError, ClimodeError, ConfigError, DataError
from climode.time import calendar_of, data_time, format_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One forecast: basin group ``basin`` (region ``region``) from init time ``init`` (slot ``index``)."""

    basin: str
    region: str | None
    init: str
    index: int

    def __str__(self) -> str:
        return f"{self.basin} {self.init}"


@dataclass(frozen=True)
class TaskFailure:
    """What a worker returns for a user error (bad data, time or basin) instead of raising it.

    Unexpected exceptions are raised, so the worker logs their traceback.
    """

    message: str


@dataclass
class BatchPlan:
    """A spec made concrete: resolved paths, the model's variables, init times as dates, the tasks."""

    spec: BatchSpec
    output: str
    checkpoint: str | None  # absolute weights path; None = the bundled model
    sha256: str
    data: str | None  # absolute path or glob, a catalog name, or None = the embedded sample
    variables: list[str]
    calendar: str
    data_start: Any
    data_end: Any
    init_times: list[Any]
    lead_hours: list[float]
    tasks: list[Task]  # the tasks of this run: all of them, or those of ``part``
    part: Part | None = None
    n_all_tasks: int = 0

    @property
    def basins(self) -> dict[str, str | None]:
        return self.spec.basins


@dataclass
class BatchSummary:
    """What a run did: tasks written, skipped (already in the output) and failed (with messages)."""

    output: str
    total: int
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [(f"{self.total} task(s): {self.done} written, {self.skipped} already complete, "
                  f"{len(self.failed)} failed; output {self.output}")]
        lines += [f"failed: {task}: {message}" for task, message in self.failed]
        return "\n".join(lines)


# ---------------------------------------------------------------- planning
def _resolve_data(data: str | None) -> str | None:
    """Paths and globs made absolute (workers may start elsewhere); catalog names and URLs kept."""
    if data is None or "://" in data:
        return data
    if os.sep in data or Path(data).exists() or any(c in data for c in "*?["):
        return os.path.abspath(os.path.expanduser(data))
    return data


def open_source(data: str | None, variables: list[str], names: dict | None = None, units: dict | None = None):
    """The spec's data as a lazy canonical dataset (the embedded sample for None), as Forecaster reads it.

    ``names``/``units``: the spec's ``variables``/``units`` mappings; errors suggest spec entries.
    """
    from climode.data.mapping import interface
    from climode.data.open import open_dataset

    if data is None:
        from climode.forecast.sample import default_sample

        data = default_sample()
    wanted = {v: (names or {}).get(v) for v in variables} if names else variables
    with interface("spec"):
        return open_dataset(data, wanted, min_times=1, validate=False, units=units)


def plan_batch(spec: BatchSpec, part: Part | None = None) -> BatchPlan:
    """Check the spec against the checkpoint and data and list the tasks (of ``part`` only, if given)."""
    from climode.forecast import Forecaster

    forecaster = Forecaster.from_checkpoint(spec.checkpoint, "cpu")
    checkpoint = None if spec.checkpoint is None else str(Path(forecaster.path).resolve())
    data = _resolve_data(spec.data)
    output = os.path.abspath(os.path.expanduser(spec.output))
    _check_output(output, data, forecaster.path if spec.checkpoint is not None else None)
    if spec.variables and set(spec.variables) - set(forecaster.variables):
        raise ConfigError(f"variables: {', '.join(sorted(set(spec.variables) - set(forecaster.variables)))} is "
                          f"not a variable of the model ({', '.join(forecaster.variables)})")
    ds = open_source(data, forecaster.variables, spec.variables, spec.units)
    times = ds["time"].values
    inits = init_times(spec.init, times[0], times)
    tasks = [Task(group, region, format_time(t), i)
             for i, t in enumerate(inits) for group, region in spec.basins.items()]
    n_all = len(tasks)
    if part is not None:
        tasks = part.select(tasks)
    return BatchPlan(spec=spec, output=output, checkpoint=checkpoint,
                     sha256=forecaster.meta.sha256 or "", data=data, variables=list(forecaster.variables),
                     calendar=calendar_of(times[0]), data_start=times[0], data_end=times[-1], init_times=inits,
                     lead_hours=spec.lead_hours, tasks=tasks, part=part, n_all_tasks=n_all)


def _check_output(output: str, data: str | None, checkpoint) -> None:
    """The output store is never one of the inputs, and its directory must be writable.

    An existing store is resumed only if it holds this batch (see :class:`BatchStore`)."""
    from climode.forecast.forecaster import input_paths
    from climode.io import clashes_with, probe_writable

    clash = clashes_with(output, input_paths(data, checkpoint))
    if clash is not None:
        raise ConfigError(f"output {output} is the input {clash}: writing it would destroy the data; "
                          "choose another output")
    probe_writable(output)


def describe_plan(plan: BatchPlan) -> str:
    """The task list, with the tasks the output already holds marked ``complete``."""
    from climode.batch.store import BatchStore

    store = BatchStore(plan)
    store.check()
    complete = store.completed_tasks()
    lines = [f"checkpoint: {plan.checkpoint or 'bundled model'}",
             (f"data: {plan.data or 'embedded sample'} ({format_time(plan.data_start)} to "
              f"{format_time(plan.data_end)}, calendar {plan.calendar})"),
             f"lead times: {plan.spec.lead_times} ({', '.join(f'{h:+g} h' for h in plan.lead_hours)})",
             f"output: {plan.output}",
             (f"{plan.n_all_tasks} task(s) = {len(plan.init_times)} init time(s) x {len(plan.basins)} basin(s), "
              f"{len(complete)} already complete" + (":" if plan.part is None else ""))]
    if plan.part is not None:
        lines.append(f"part {plan.part}: {len(plan.tasks)} of the {plan.n_all_tasks} task(s):")
    for task in plan.tasks:
        state = "complete" if (task.basin, task.index) in complete else "to do"
        lines.append(f"  {task.init}  {task.basin:<20} {task.region or '(whole domain)':<28} {state}")
    return "\n".join(lines)


def pending_tasks(plan: BatchPlan, store=None) -> list[Task]:
    """The plan's tasks that the output does not hold yet (all of them for a new output)."""
    from climode.batch.store import BatchStore

    store = store or BatchStore(plan)
    store.check()
    complete = store.completed_tasks()
    return [t for t in plan.tasks if (t.basin, t.index) not in complete]


# ---------------------------------------------------------------- on the workers
_MODELS: dict[tuple, Any] = {}
_DATA: dict[tuple, Any] = {}
_LOCK = threading.Lock()
#: Models this worker process has loaded (read by the tests: once per worker, not per task).
MODEL_LOADS = 0


def _cached_model(checkpoint: str | None, device: str, sha256: str):
    """The worker's Forecaster for ``checkpoint``, loaded once (torch on one thread)."""
    import torch

    global MODEL_LOADS
    key = (checkpoint, device)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None or (sha256 and (model.meta.sha256 or "") != sha256):
            from climode.forecast import Forecaster

            torch.set_num_threads(1)
            model = _MODELS[key] = Forecaster.from_checkpoint(checkpoint, device)
            MODEL_LOADS += 1
    if sha256 and (model.meta.sha256 or "") != sha256:
        raise CheckpointError(f"the checkpoint {checkpoint or '(bundled)'} on this worker is not the one the batch "
                              "was planned with (sha256 differs)")
    return model


def worker_device(device: str, worker_name: Any, n_gpus: int) -> str:
    """The device of one worker: ``cuda`` and ``auto`` become GPU (worker index mod ``n_gpus``).

    Without this every worker of a node would load its model onto cuda:0.  The
    index is the worker's name when it is a number (LocalCluster) or ends in one
    (dask-jobqueue's ``<job>-<process>``); an explicit ``cuda:N`` or ``cpu`` stays.
    """
    if n_gpus < 1 or device not in ("auto", "cuda"):
        return device
    if isinstance(worker_name, int):
        index = worker_name
    else:
        digits = re.search(r"(\d+)$", str(worker_name))
        index = int(digits.group(1)) if digits else zlib.crc32(str(worker_name).encode())
    return f"cuda:{index % n_gpus}"


def _this_worker_device(device: str) -> str:
    import torch

    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):  # not on a Dask worker
        name = 0
    return worker_device(device, name, torch.cuda.device_count() if torch.cuda.is_available() else 0)


def _cached_data(data: str | None, variables: list[str], run_id: str, names=None, units=None):
    """The dataset, opened once per worker and run (a new run reopens it: archives grow)."""
    key = (data, tuple(variables), run_id)
    with _LOCK:
        if key not in _DATA:
            _DATA.clear()
            _DATA[key] = open_source(data, variables, names, units)
        return _DATA[key]


def forecast_task(task: Task, *, checkpoint: str | None, sha256: str, device: str, data: str | None,
                  lead_times: str, run_id: str, names: dict | None = None, units: dict | None = None):
    """Run one task on a worker: the Forecaster's dataset (dims time, lat, lon), or a TaskFailure."""
    import dask


    try:
        model = _cached_model(checkpoint, _this_worker_device(device), sha256)
        ds = _cached_data(data, model.variables, run_id, names, units)
        times = ds["time"].values
        init = data_time(task.init, times[0], what="init time")
        if init < times[0] or init > times[-1]:
            raise DataError(f"init time {task.init} is outside the data ({format_time(times[0])} to "
                            f"{format_time(times[-1])})")
        with dask.config.set(scheduler="synchronous"):  # the worker's one thread reads the input window
            return model.predict(ds, lead_times, basin=task.region, init=task.init)
    except ClimodeError as exc:
        return TaskFailure(_first_line(exc) or type(exc).__name__)


# ---------------------------------------------------------------- running
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _failure(exc: BaseException) -> str:
    """One line for a task's exception: a ClimodeError's own message, otherwise its type and first line."""
    text = _first_line(exc)
    if isinstance(exc, ClimodeError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_batch(spec: BatchSpec, client, progress: bool = True, plan: BatchPlan | None = None,
              store=None) -> BatchSummary:
    """Run the spec's tasks that the output does not hold yet on ``client``'s cluster.

    Each result is written as it arrives; a failed task is reported in the
    summary and leaves the others untouched, and a later run retries it.  The
    plan's tasks are locked for this process first (``store``: a
    :meth:`BatchStore.claimed` store, else claimed here); StoreBusyError if
    another live run holds any of them.
    """
    import contextlib

    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from climode.batch.cluster import require_hpc
    from climode.batch.store import BatchStore

    distributed = require_hpc("distributed")
    plan = plan or plan_batch(spec)
    if store is None:
        with BatchStore(plan).claimed(plan.tasks) as claimed:
            return run_batch(spec, client, progress, plan, claimed)
    todo = pending_tasks(plan, store)
    summary = BatchSummary(output=plan.output, total=len(plan.tasks), skipped=len(plan.tasks) - len(todo))
    log.info("%d task(s), %d already complete in %s", len(plan.tasks), summary.skipped, plan.output)
    if not todo:
        return summary
    run_id = uuid.uuid4().hex
    keys = [f"climode-batch-{t.basin}-{t.index}-{run_id[:12]}" for t in todo]
    futures = client.map(forecast_task, todo, key=keys, checkpoint=plan.checkpoint, sha256=plan.sha256,
                         device=spec.device, data=plan.data, lead_times=spec.lead_times, run_id=run_id,
                         names=spec.variables, units=spec.units)
    tasks = {f.key: t for f, t in zip(futures, todo)}
    bar = tqdm(total=len(todo), disable=not progress, unit="task", desc="climode batch")
    try:
        with logging_redirect_tqdm() if progress else contextlib.nullcontext():  # log lines above the bar
            _collect(distributed.as_completed(futures), tasks, store, summary, bar)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    log.info("%s", str(summary).splitlines()[0])
    return summary


def _collect(completed, tasks: dict, store, summary: BatchSummary, bar) -> None:
    """Write each finished task's result as it arrives; record failures and go on."""
    handled = set()
    for future in completed:
        if future.key in handled:  # a result lost with its worker and recomputed can be yielded twice
            continue
        handled.add(future.key)
        task = tasks[future.key]
        try:  # a "lost" future (its worker died holding the result) waits here for its recomputation
            result = TaskFailure("cancelled") if future.status == "cancelled" else future.result()
        except Exception as exc:  # noqa: BLE001 - the task's own error, or its worker died too often
            result = TaskFailure(_failure(exc))
        if isinstance(result, TaskFailure):
            summary.failed.append((str(task), result.message))
            log.warning("task %s failed: %s", task, result.message)
        else:
            try:
                store.write(task, result)
                summary.done += 1
                log.debug("task %s written", task)
            except Exception as exc:  # a bad result must not stop the other tasks' writes
                message = f"writing the result failed: {type(exc).__name__}: {_first_line(exc)}"
                summary.failed.append((str(task), message))
                log.warning("task %s: %s", task, message, exc_info=log.isEnabledFor(logging.DEBUG))
        del result
        future.release()
        bar.update(1)
