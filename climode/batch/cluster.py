"""Dask clusters for batches: a LocalCluster, a dask-jobqueue cluster, or a running scheduler.

``distributed`` and ``dask_jobqueue`` are imported here, inside the functions,
so ``import climode`` never needs them; without them every function raises a
one-line :class:`~climode.errors.ConfigError` naming the pip command.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from typing import Any

from climode.batch.spec import JOBQUEUE_KINDS, BatchSpec, ClusterSpec
from climode.errors import ConfigError

log = logging.getLogger(__name__)

#: dask-jobqueue cluster class of each jobqueue kind.
JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster"}


def require_hpc(module: str):
    """Import ``distributed`` or ``dask_jobqueue``, or say how to install them."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"climode batch needs {module}, which is not installed; "
                          f'install it with: pip install "climode[hpc]"') from exc


def _cluster_spec(spec: BatchSpec | ClusterSpec) -> ClusterSpec:
    return spec.cluster if isinstance(spec, BatchSpec) else spec


def jobqueue_options(spec: BatchSpec | ClusterSpec) -> dict[str, Any]:
    """Keyword arguments of the dask-jobqueue class: ``cluster.jobqueue`` plus one thread per worker.

    ``processes`` defaults to ``cores``, so each worker process has one thread
    (and one torch thread): the model is not thread-parallel at this size and
    processes do not share the GIL.
    """
    cs = _cluster_spec(spec)
    options = dict(cs.jobqueue)
    options.setdefault("processes", cs.processes_per_job)
    return options


def jobqueue_cluster(spec: BatchSpec | ClusterSpec):
    """The (unscaled) SLURMCluster, PBSCluster or SGECluster of the spec; nothing is submitted yet."""
    cs = _cluster_spec(spec)
    if cs.kind not in JOBQUEUE_KINDS:
        raise ConfigError(f"cluster.kind {cs.kind!r} is not a jobqueue kind ({', '.join(JOBQUEUE_KINDS)})")
    jobqueue = require_hpc("dask_jobqueue")
    cls = getattr(jobqueue, JOBQUEUE_CLASSES[cs.kind])
    try:
        return cls(**jobqueue_options(cs))
    except (TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cluster.jobqueue for {cls.__name__}: {first}") from exc


def job_script(spec: BatchSpec | ClusterSpec) -> str:
    """The batch script one job of a jobqueue kind would run (nothing is submitted)."""
    cluster = jobqueue_cluster(spec)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def describe(spec: BatchSpec | ClusterSpec) -> str:
    """One line saying where the tasks would run."""
    cs = _cluster_spec(spec)
    if cs.kind == "local":
        return f"local cluster: {cs.n_workers} worker process(es), 1 thread each"
    if cs.kind == "address":
        return f"the running Dask scheduler at {cs.address}"
    return (f"{JOBQUEUE_CLASSES[cs.kind]}: {cs.n_jobs} job(s) of {cs.processes_per_job} worker process(es), "
            "1 thread each")


#: Thread limits for local workers.  distributed's default ("pre-spawn-environ")
#: writes them into the *parent's* os.environ before each spawn, where every later
#: subprocess of the caller inherits them; as "environ" they are set in the worker
#: process only, before it first imports torch (the tasks import it lazily).
_LOCAL_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _local_cluster(distributed, cs: ClusterSpec):
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}, "distributed.nanny.environ": _LOCAL_WORKER_ENV}):
        return distributed.LocalCluster(n_workers=cs.n_workers, threads_per_worker=1, processes=True,
                                        dashboard_address=cs.dashboard_address)


def make_cluster(spec: BatchSpec | ClusterSpec) -> tuple[Any, Any]:
    """A ``(cluster, client)`` pair for the spec's ``cluster`` section.

    ``local``: a LocalCluster of ``n_workers`` processes with one thread each;
    ``slurm``/``pbs``/``sge``: the dask-jobqueue cluster scaled to
    ``jobs`` batch jobs; ``address``: ``(None, Client(address))``.  Close the
    client, then the cluster (or use :func:`connect`).
    """
    cs = _cluster_spec(spec)
    distributed = require_hpc("distributed")
    if cs.kind == "address":
        try:
            return None, distributed.Client(cs.address)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot connect to the Dask scheduler at {cs.address}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if cs.kind == "local":
        if cs.jobqueue:
            log.info("cluster.jobqueue is not used by a local cluster")
        cluster = _local_cluster(distributed, cs)
    else:
        cluster = jobqueue_cluster(cs)
        log.info("submitting %d %s job(s)", cs.n_jobs, cs.kind)
        cluster.scale(jobs=cs.n_jobs)
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


@contextlib.contextmanager
def connect(spec: BatchSpec | ClusterSpec) -> Iterator[Any]:
    """``with connect(spec) as client:`` -- a client on the spec's cluster, closed (with the cluster) after."""
    cluster, client = make_cluster(spec)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
