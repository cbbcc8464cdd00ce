"""Throughput of ``climode batch`` on local workers, and its overhead against ``predict`` in a loop.

One spec of 16 forecasts (16 init times, 3-hourly, x the atlantic basin, leads
+3 h to +24 h: 8 lead times) with the bundled model on the embedded sample.
Measured back to back in this one process, alternating, ``--repeats`` times:

- ``loop``: one process loads the model (torch on 1 thread, as a worker) and
  calls ``Forecaster.predict`` for the 16 tasks in a loop (cold: load + data
  open + forecasts; warm: the forecasts alone);
- ``batch_1`` / ``batch_2``: ``run_batch`` on a LocalCluster of 1 / 2 worker
  processes (1 thread each) already started, into a new store each time:
  cold = the first run of a fresh cluster (the worker loads the model),
  warm = a later run (model cached on the worker).  Includes planning, moving
  results to the client, the zarr writes, the fsyncs and the completion markers.

Overhead = batch_1 time / loop time - 1 (cold vs cold, warm vs warm).  Also
counted: forward GFLOP of one forecast (torch.utils.flop_counter), bytes
written per forecast, model loads per worker.  Prints one JSON line.

    python benchmarks/batch.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

INIT = {"start": "2000-08-01T09:00", "end": "2000-08-03T06:00", "every": "3h"}  # 16 init times
LEADS = "+3h..+24h/3h"


def make_spec(output: Path):
    from climode.batch.spec import spec_from_dict

    return spec_from_dict({"output": str(output), "init": dict(INIT), "lead_times": LEADS, "device": "cpu",
                           "basins": {"atlantic": "atlantic"}, "checkpoint": None, "data": None})


def loop(tasks) -> tuple[float, float, object]:
    """Cold (load + open + forecasts) and warm (forecasts only) seconds of predict in a loop."""
    import dask
    import torch

    from climode.batch.run import open_source
    from climode.forecast import Forecaster

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = Forecaster.from_checkpoint(None, "cpu")
    ds = open_source(None, model.variables)
    t1 = time.perf_counter()
    with dask.config.set(scheduler="synchronous"):
        for task in tasks:
            model.predict(ds, LEADS, basin=task.region, init=task.init)
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, (model, ds)


def gflop_per_forecast(model, ds, task) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.predict(ds, LEADS, basin=task.region, init=task.init)
    return counter.get_total_flops() / 1e9


def batch_time(client, tmp: Path, name: str) -> tuple[float, int]:
    from climode.batch import run_batch

    out = tmp / f"{name}.zarr"
    t0 = time.perf_counter()
    summary = run_batch(make_spec(out), client, progress=False)
    wall = time.perf_counter() - t0
    assert summary.done == summary.total == 16 and summary.ok, summary
    return wall, sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def model_loads(client) -> list[int]:
    return sorted(client.run(lambda: __import__("climode.batch.run", fromlist=["MODEL_LOADS"]).MODEL_LOADS).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from climode.batch import make_cluster, plan_batch
    from climode.batch.spec import ClusterSpec

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tasks = plan_batch(make_spec(tmp / "plan.zarr")).tasks
        results: dict[str, dict[str, list[float]]] = {k: {"cold": [], "warm": []} for k in ("loop", "batch_1", "batch_2")}
        startup: dict[str, list[float]] = {"batch_1": [], "batch_2": []}
        loads: dict[str, list[int]] = {}
        size = 0
        gflop = None
        for r in range(args.repeats):
            cold, warm, (model, ds) = loop(tasks)
            results["loop"]["cold"].append(cold)
            results["loop"]["warm"].append(warm)
            if gflop is None:
                gflop = gflop_per_forecast(model, ds, tasks[0])
            del model, ds
            for workers in (1, 2):
                key = f"batch_{workers}"
                t0 = time.perf_counter()
                cluster, client = make_cluster(ClusterSpec(kind="local", n_workers=workers, dashboard_address=None))
                try:
                    client.wait_for_workers(workers)
                    startup[key].append(time.perf_counter() - t0)
                    wall, size = batch_time(client, tmp, f"{key}-cold-{r}")
                    results[key]["cold"].append(wall)
                    results[key]["warm"].append(batch_time(client, tmp, f"{key}-warm-{r}")[0])
                    loads[key] = model_loads(client)
                finally:
                    client.close()
                    cluster.close()
                print(f"repeat {r}: {key} done", file=sys.stderr)

    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in results.items()}
    n = len(tasks)
    print(json.dumps({
        "benchmark": "batch",
        "machine": machine(),
        "forecasts": n,
        "lead_times": LEADS,
        "repeats": args.repeats,
        "seconds": results,
        "median_seconds": med,
        "cluster_startup_seconds": {k: statistics.median(v) for k, v in startup.items()},
        "forecasts_per_minute": {k: {m: 60 * n / s for m, s in d.items()} for k, d in med.items()},
        "batch_1_overhead_vs_loop": {m: med["batch_1"][m] / med["loop"][m] - 1 for m in ("cold", "warm")},
        "speedup_2_vs_1_workers": {m: med["batch_1"][m] / med["batch_2"][m] for m in ("cold", "warm")},
        "model_loads_per_worker_after_two_runs": loads,
        "gflop_per_forecast": gflop,
        "store_bytes_per_forecast": size / n,
    }))


if __name__ == "__main__":
    main()
