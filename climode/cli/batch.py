"""``climode batch SPEC.yaml``: many forecasts (init times x basins) on a Dask cluster into one zarr store."""

from __future__ import annotations

import argparse

EXAMPLES = """
The spec (YAML) names the checkpoint, data, basins, init times, lead times, the output
zarr store and the cluster; see docs/batch.md and recipes/batch/atlantic.yaml.
A rerun skips the tasks the output already holds. Exit code 1 if any task failed
(the others are written), 2 for a bad spec.

  climode batch recipes/batch/atlantic.yaml --dry-run
  climode batch spec.yaml --workers 2
  climode batch spec.yaml --cluster slurm --set cluster.jobqueue.walltime=02:00:00
  climode batch spec.yaml --cluster tcp://10.0.0.5:8786
  climode batch spec.yaml --output /scratch/run2.zarr --parts 3/8     # part 3 of 8 (numbered from 1)
  climode batch spec.yaml --parts slurm                                 # inside sbatch --array=...

Runs over disjoint parts may write one store at the same time; a run over tasks
that another live run is running is refused (exit 2). Ctrl-C stops a run (exit 130);
a rerun completes it. See docs/hpc.md for job arrays and cron.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("batch", help="run many forecasts on a Dask cluster into one zarr store",
                              description="Forecast every init time x basin of a spec on a Dask cluster "
                                          "(local, SLURM, PBS, SGE or a running scheduler).",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="a batch spec (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec entry, e.g. --set cluster.jobqueue.queue=short (repeatable)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (local: the cluster size; jobqueue: enough jobs for N workers)")
    p.add_argument("--cluster", metavar="KIND|ADDRESS",
                   help="local, slurm, pbs, sge, or the address of a running scheduler (tcp://host:8786)")
    p.add_argument("--output", metavar="STORE", help="the output zarr store, instead of the spec's output")
    p.add_argument("--parts", metavar="I/N",
                   help="run only part I of N of the task list (I from 1 to N; contiguous, disjoint parts), "
                        "or 'slurm': the part of this SLURM job-array task")
    p.add_argument("--dry-run", action="store_true",
                   help="print the task list (and the job script of a jobqueue cluster); submit nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar; print only failures and errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from climode.batch import BatchSummary, connect, job_script, load_spec, plan_batch, run_batch
    from climode.batch.cluster import describe, require_hpc
    from climode.batch.parts import parse_part
    from climode.batch.run import describe_plan, pending_tasks
    from climode.batch.store import BatchStore
    from climode.batch.spec import JOBQUEUE_KINDS, KINDS
    from climode.errors import ConfigError

    overrides: list = list(args.overrides)
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError("--workers must be at least 1")
        overrides += [("cluster.n_workers", args.workers), ("cluster.jobs", None)]
    if args.cluster:
        if args.cluster in KINDS and args.cluster != "address":
            overrides.append(("cluster.kind", args.cluster))
        else:
            overrides += [("cluster.kind", "address"), ("cluster.address", args.cluster)]
    if args.output is not None:
        overrides.append(("output", args.output))
    part = parse_part(args.parts) if args.parts is not None else None
    spec = load_spec(args.spec, overrides)
    plan = plan_batch(spec, part)
    if args.dry_run:
        print(describe_plan(plan))
        print(f"cluster: {describe(spec)}")
        if spec.cluster.kind in JOBQUEUE_KINDS:
            print("job script:")
            print(job_script(spec))
        print("dry run: nothing submitted")
        return 0
    if not pending_tasks(plan):  # nothing to do: do not start (or submit) a cluster
        summary = BatchSummary(plan.output, len(plan.tasks), skipped=len(plan.tasks))
    else:
        require_hpc("distributed")  # imported first: it sets its loggers' levels on import
        root = logging.getLogger().getEffectiveLevel()
        if root > logging.DEBUG:  # distributed logs at INFO; show its warnings only, unless -vv
            logging.getLogger("distributed").setLevel(max(root, logging.WARNING))
        # the tasks are locked before a cluster starts: a refused run submits nothing
        with BatchStore(plan).claimed(plan.tasks) as store, connect(spec) as client:
            if not args.quiet:
                of_part = f" (part {part} of the batch's {plan.n_all_tasks})" if part else ""
                print(f"climode batch: {len(plan.tasks)} task(s){of_part} on {describe(spec)}")
            summary = run_batch(spec, client, progress=not args.quiet, plan=plan, store=store)
    text = str(summary)
    if args.quiet:
        text = "\n".join(line for line in text.splitlines() if line.startswith("failed:"))
    if text:
        print(text)
    return 0 if summary.ok else 1
