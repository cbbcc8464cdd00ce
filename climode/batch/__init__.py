"""Batch forecasts on a Dask cluster: many init times x basins into one resumable zarr store.

- :func:`load_spec` reads a YAML spec into a typed :class:`BatchSpec` (``spec``);
- :func:`make_cluster` / :func:`connect` give a LocalCluster, a dask-jobqueue
  cluster (SLURM, PBS, SGE) or a client of a running scheduler (``cluster``);
- :func:`plan_batch` lists the tasks and :func:`run_batch` runs those the
  output does not hold yet, writing each result as it arrives (``run``);
- :class:`BatchStore` is the output store and its completion markers (``store``).

``distributed`` and ``dask_jobqueue`` (``pip install "climode[hpc]"``) are
imported only when a cluster is made.  This package builds on
:mod:`climode.forecast` (and the shared :mod:`climode.time`); nothing else in
climode imports it but its command, :mod:`climode.cli.batch`.  See docs/batch.md.
"""

from climode.batch.cluster import connect, job_script, make_cluster
from climode.batch.run import BatchPlan, BatchSummary, Task, plan_batch, run_batch
from climode.batch.spec import BatchSpec, ClusterSpec, InitSpec, load_spec
from climode.batch.store import BatchStore

__all__ = [
    "BatchPlan",
    "BatchSpec",
    "BatchStore",
    "BatchSummary",
    "ClusterSpec",
    "InitSpec",
    "Task",
    "connect",
    "job_script",
    "load_spec",
    "make_cluster",
    "plan_batch",
    "run_batch",
]
