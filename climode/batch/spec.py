"""Batch specs: a YAML file validated into a typed :class:`BatchSpec`.

A spec names the checkpoint, the data, the basins, the init times, the lead
times, the output zarr store and the Dask cluster.  Unknown keys and bad values
are :class:`~climode.errors.ConfigError` naming the key; ``--set key=value``
overrides any entry.  Init times are checked here for syntax only: they become
dates in the data's calendar (noleap, 360_day, standard...) when the batch is
planned (:func:`init_times`), because only the data know their calendar.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climode.config import Override, from_dict, load_config
from climode.errors import ClimodeError, ConfigError
from climode.time import add_hours, data_time, format_time, iso_fields

#: Cluster kinds: a LocalCluster, a dask-jobqueue cluster, or an existing scheduler.
JOBQUEUE_KINDS = ("slurm", "pbs", "sge")
KINDS = ("local", *JOBQUEUE_KINDS, "address")
#: The most tasks' init times one spec may ask for.
MAX_INITS = 100_000

_GROUP = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ISO_HELP = "write init times as ISO dates such as 2000-08-01 or 2000-08-01T06:00"


@dataclass
class ClusterSpec:
    """Where the tasks run.

    ``kind``: ``local`` (a LocalCluster of ``n_workers`` processes, one thread
    each), ``slurm``/``pbs``/``sge`` (dask-jobqueue; ``jobs`` batch jobs, by
    default enough jobs for ``n_workers`` workers) or ``address`` (connect to
    the running scheduler at ``address``).  ``jobqueue`` is passed to the
    dask-jobqueue cluster class (cores, memory, queue, account, walltime,
    job_extra_directives, ...).
    """

    kind: str = "local"
    n_workers: int = 2
    jobs: int | None = None
    address: str | None = None
    dashboard_address: str | None = ":8787"
    jobqueue: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"cluster.kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        if not isinstance(self.n_workers, int) or isinstance(self.n_workers, bool) or self.n_workers < 1:
            raise ConfigError(f"cluster.n_workers must be a whole number >= 1, got {self.n_workers!r}")
        if self.jobs is not None and (not isinstance(self.jobs, int) or isinstance(self.jobs, bool) or self.jobs < 1):
            raise ConfigError(f"cluster.jobs must be a whole number >= 1, got {self.jobs!r}")
        if self.kind == "address" and not self.address:
            raise ConfigError("cluster.kind address needs cluster.address, e.g. tcp://10.0.0.5:8786")
        if self.jobqueue is None:
            self.jobqueue = {}
        if not isinstance(self.jobqueue, dict):
            raise ConfigError(f"cluster.jobqueue must be a mapping, got {type(self.jobqueue).__name__}")

    @property
    def processes_per_job(self) -> int:
        """Worker processes per batch job: ``jobqueue.processes``, else one per core (one thread each)."""
        return int(self.jobqueue.get("processes") or self.jobqueue.get("cores") or 1)

    @property
    def n_jobs(self) -> int:
        """Batch jobs to submit for a jobqueue kind."""
        return self.jobs if self.jobs is not None else math.ceil(self.n_workers / self.processes_per_job)


@dataclass
class InitSpec:
    """Init times: an explicit list, every ``every`` from ``start`` to ``end`` (inclusive), the ``latest`` N times.

    ``latest: N`` takes the N newest time steps of the data (``init: latest``
    is ``latest: 1``): a forecast from the newest observations, for a cron job.
    """

    times: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    every: str | None = None
    latest: int | None = None

    def __post_init__(self) -> None:
        if self.times is None:
            self.times = []
        if isinstance(self.times, (str, dt.date)):
            self.times = [self.times]
        if not isinstance(self.times, list):
            raise ConfigError(f"init.times must be a list of ISO dates, got {type(self.times).__name__}")
        self.times = [_iso_text(t, "init.times") for t in self.times]
        self.start = None if self.start is None else _iso_text(self.start, "init.start")
        self.end = None if self.end is None else _iso_text(self.end, "init.end")
        ranged = (self.start, self.end, self.every)
        if any(v is not None for v in ranged) and not all(v is not None for v in ranged):
            raise ConfigError("init.start, init.end and init.every go together: give all three or none")
        if self.every is not None:
            self.every = str(self.every)
            if self.every_hours <= 0:
                raise ConfigError(f"init.every must be a positive duration such as 6h or 1d, got {self.every!r}")
            if iso_fields(self.end, what="init time") < iso_fields(self.start, what="init time"):
                raise ConfigError(f"init.end {self.end} is before init.start {self.start}")
        if self.latest is not None and (not isinstance(self.latest, int) or isinstance(self.latest, bool)
                                        or self.latest < 1):
            raise ConfigError(f"init.latest must be a whole number >= 1 (the newest time steps), got {self.latest!r}")
        if not self.times and self.start is None and self.latest is None:
            raise ConfigError("init needs times (a list of ISO dates), start, end and every, or latest")

    @property
    def every_hours(self) -> float:
        from climode.forecast.times import parse_duration

        try:
            sign, hours = parse_duration(str(self.every))
        except ClimodeError as exc:
            raise ConfigError(f"init.every {self.every!r} is not a duration; use e.g. 6h or 1d") from exc
        return -1.0 if sign else hours


@dataclass
class BatchSpec:
    """A batch of forecasts: every init time x every basin, written into one zarr store.

    ``basins`` is a list (group names derived from the entries) or a mapping
    group name -> basin code, alias or box; None/empty means the data's whole
    domain (group ``domain``).  ``lead_times`` uses the syntax of ``climode
    forecast --times`` restricted to forecast periods (``+3h..+15h/3h``).
    ``checkpoint``/``data`` None mean the bundled model / the embedded sample.
    """

    output: str
    init: InitSpec
    lead_times: str = "+3h,+6h"
    basins: dict[str, str | None] = field(default_factory=lambda: {"domain": None})
    checkpoint: str | None = None
    data: str | None = None
    variables: dict[str, str] | None = None  # the data's names of the model's variables, e.g. {PSL: slp}
    units: dict[str, str] | None = None  # units where the files have none or wrong ones, e.g. {PSL: hPa}
    device: str = "auto"
    description: str = ""
    cluster: ClusterSpec = field(default_factory=ClusterSpec)

    def __post_init__(self) -> None:
        if isinstance(self.init, str) and self.init.strip() == "latest":
            self.init = InitSpec(latest=1)
        elif isinstance(self.init, (list, str, dt.date)):
            self.init = InitSpec(times=self.init)
        elif isinstance(self.init, dict):
            self.init = from_dict(InitSpec, self.init, prefix="init.")
        if isinstance(self.cluster, dict):
            self.cluster = from_dict(ClusterSpec, self.cluster, prefix="cluster.")
        elif self.cluster is None:
            self.cluster = ClusterSpec()
        if isinstance(self.lead_times, (list, tuple)):
            self.lead_times = ",".join(str(t) for t in self.lead_times)
        self.lead_times = str(self.lead_times)
        lead_hours(self.lead_times)  # raises on bad syntax
        self.basins = _basins(self.basins)
        if not isinstance(self.output, str) or not self.output.rstrip("/").endswith(".zarr"):
            raise ConfigError(f"output must be a zarr store path ending in .zarr, got {self.output!r}")
        self.output = self.output.rstrip("/")
        for name in ("checkpoint", "data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a path (or null), got {value!r}")
        from climode.data.mapping import check_units, check_variables

        self.variables = check_variables(self.variables, "variables") if self.variables else None
        self.units = check_units(self.units, "units") if self.units else None
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"device {self.device!r} is unknown; use auto, cpu, cuda or cuda:N")

    @property
    def lead_hours(self) -> list[float]:
        return lead_hours(self.lead_times)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BatchSpec":
        """Validate a spec mapping (what :func:`load_config` calls)."""
        return spec_from_dict(data)


# ---------------------------------------------------------------- values
def _iso_text(value: Any, key: str) -> str:
    """An ISO string from YAML, which turns unquoted dates into date/datetime objects."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        value = format_time(value)
    elif isinstance(value, dt.date):
        value = value.strftime("%Y-%m-%d")
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} is not a date; {ISO_HELP}")
    try:
        iso_fields(value, what="init time")
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    return value.strip()


def init_times(init: InitSpec, like: Any, data_times: Any = None) -> list:
    """The init times of ``init`` in the data's calendar, sorted and unique.

    ``like`` is one time value of the data; ``data_times`` (all of them) is
    needed for ``latest``.
    """
    values = [data_time(t, like, what="init time") for t in init.times]
    if init.latest is not None:
        if data_times is None or len(data_times) == 0:
            raise ConfigError("init.latest needs the data's time steps")
        values += sorted(data_times)[-init.latest:]
    if init.start is not None:
        start, end = data_time(init.start, like, what="init time"), data_time(init.end, like, what="init time")
        step = init.every_hours
        t = start
        while t <= end:
            values.append(t)
            if len(values) > MAX_INITS:
                raise ConfigError(f"init asks for more than {MAX_INITS} init times; use a coarser init.every")
            t = add_hours(t, step)
    unique: dict[str, Any] = {}
    for v in values:
        unique.setdefault(format_time(v), v)
    return sorted(unique.values())


def lead_hours(text: str) -> list[float]:
    """Lead times (``+3h,+6h``, ``+3h..+15h/3h``) as sorted hours after each init.

    The syntax is that of ``climode forecast --times``, but every time must be
    a forecast period (signed, counted from the forecast reference time): in a
    batch, ``60h`` or an absolute date would mean a different lead for each init.
    """
    from climode.forecast.times import parse_duration, parse_times

    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError("lead_times is empty; give forecast periods such as +3h,+6h or +3h..+15h/3h")
    for item in items:
        ends = item.partition("/")[0].split("..") if ".." in item else [item]
        for token in ends:
            try:
                sign, _ = parse_duration(token)
            except ClimodeError as exc:
                raise ConfigError(f"lead_times: {exc}") from exc
            if not sign:
                raise ConfigError(f"lead_times: {token.strip()!r} has no sign; in a batch every lead time is a "
                                  f"forecast period after the init, e.g. +{token.strip()}")
    try:
        return parse_times(items, first_input=None, init_hours=0.0).hours
    except ClimodeError as exc:
        raise ConfigError(f"lead_times: {exc}") from exc


def group_name(basin: str | None) -> str:
    """A zarr group name for a basin: the code or alias itself; boxes spelled without = : ,."""
    if basin is None:
        return "domain"
    name = str(basin).strip().replace("=", "").replace(":", "-").replace(",", "_").replace(" ", "")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _basins(value: Any) -> dict[str, str | None]:
    from climode.basins import resolve_region

    if value is None or value == [] or value == {}:
        pairs = [("domain", None)]
    elif isinstance(value, str):
        pairs = [(group_name(value), value)]
    elif isinstance(value, list):
        pairs = [(group_name(b), b) for b in value]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ConfigError(f"basins must be a list or a mapping name -> basin, got {type(value).__name__}")
    out: dict[str, str | None] = {}
    for name, basin in pairs:
        name = str(name)
        if not _GROUP.match(name):
            raise ConfigError(f"basins: {name!r} is not a usable group name; use letters, digits, _ . -")
        if name in out:
            raise ConfigError(f"basins: {name!r} appears twice")
        if basin is not None and not isinstance(basin, str):
            raise ConfigError(f"basins: {name}: {basin!r} is not a basin code, alias or box")
        try:
            resolve_region(basin)
        except ClimodeError as exc:
            raise ConfigError(f"basins: {exc}") from exc
        out[name] = basin
    return out


# ---------------------------------------------------------------- loading
def spec_from_dict(data: dict[str, Any]) -> BatchSpec:
    if not isinstance(data, dict):
        raise ConfigError("a batch spec must be a mapping")
    for key in ("output", "init"):
        if key not in data or data[key] is None:
            allowed = ", ".join(f.name for f in dataclasses.fields(BatchSpec))
            raise ConfigError(f"a batch spec needs {key!r} (keys: {allowed})")
    return from_dict(BatchSpec, data)


def load_spec(path: str | Path, overrides: list[Override] | None = None) -> BatchSpec:
    """Read a YAML batch spec, apply ``--set`` overrides, and validate it."""
    return load_config(BatchSpec, path, overrides, label="batch spec")
