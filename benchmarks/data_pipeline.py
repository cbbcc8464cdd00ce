"""Benchmark the data pipeline: samples per second and peak memory through the DataLoader.

Builds, in a temporary directory, a CAM5-like archive (U850, V850, PSL on a
40 x 72 grid, 3-hourly, noleap calendar) about 100 times the size of a batch,
twice: as a multi-file NetCDF archive and as a zarr store.  Then, for each format
and worker count, a fresh process iterates a ``make_loader`` over a
``WindowDataset`` with the CAM5 protocol (5 irregular inputs, 5 targets) and
reports samples per second, seconds per batch, and peak memory (the loader
process's own peak, VmHWM; getrusage max RSS of its largest worker; the peak of
the summed RSS of the process tree sampled by psutil, which counts pages
shared after fork once per process).  Prints one JSON line.

    python benchmarks/data_pipeline.py [--batch 8] [--workers 0,2] [--steps N] [--model-step-s 4.8]

``--model-step-s`` adds the ratio of loader seconds per batch to the model's
training step time (below 1: the loader keeps up).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger("climode.benchmarks.data_pipeline")

VARS = ("U850", "V850", "PSL")
FRAMES_PER_SAMPLE = 10  # 5 inputs + 5 targets


def _dataset(first_step: int, n_steps: int, nlat: int, nlon: int, seed: int):
    import xarray as xr

    rng = np.random.default_rng([seed, first_step])
    time_axis = xr.date_range("2000-01-01", periods=first_step + n_steps, freq="3h", calendar="noleap",
                              use_cftime=True)[first_step:]
    shape = (n_steps, nlat, nlon)
    base = {"U850": (0.0, 8.0), "V850": (0.0, 6.0), "PSL": (101000.0, 1200.0)}
    data = {}
    for v in VARS:
        mean, std = base[v]
        field = rng.standard_normal(shape, dtype=np.float32)
        field *= np.float32(std)
        field += np.float32(mean)
        data[v] = (("time", "lat", "lon"), field, {"units": "Pa" if v == "PSL" else "m s-1"})
    return xr.Dataset(
        data,
        coords={
            "time": time_axis,
            "lat": np.linspace(-89.0, 89.0, nlat),
            "lon": np.linspace(0.0, 360.0, nlon, endpoint=False),
        },
    )


def build_archive(root: Path, steps: int, nlat: int, nlon: int, n_files: int, zarr_chunk: int) -> dict:
    """Write the NetCDF files and the zarr store piece by piece (never the whole archive in memory)."""
    root.mkdir(parents=True, exist_ok=True)
    nc_dir = root / "netcdf"
    nc_dir.mkdir(exist_ok=True)
    store = root / "archive.zarr"
    bounds = np.linspace(0, steps, n_files + 1).astype(int)
    t0 = time.perf_counter()
    for k in range(n_files):
        ds = _dataset(int(bounds[k]), int(bounds[k + 1] - bounds[k]), nlat, nlon, seed=0)
        ds.to_netcdf(nc_dir / f"cam5_{k:03d}.nc")
        ds = ds.chunk({"time": zarr_chunk, "lat": nlat, "lon": nlon})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if k == 0:
                ds.to_zarr(store, mode="w", zarr_format=2, consolidated=True)
            else:
                ds.to_zarr(store, append_dim="time", zarr_format=2, consolidated=True)
    elapsed = time.perf_counter() - t0

    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    return {
        "netcdf": str(nc_dir / "cam5_*.nc"),
        "zarr": str(store),
        "netcdf_mb": size(nc_dir) / 1e6,
        "zarr_mb": size(store) / 1e6,
        "build_s": elapsed,
    }


def _vm_hwm_mb() -> float:
    """Peak resident memory of this process image (Linux VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _TreePeak:
    """Samples the summed RSS of this process and its children (psutil) in a thread."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._proc = psutil.Process()
        self._psutil = psutil
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = self._proc.memory_info().rss
        for child in self._proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except self._psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "_TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(source: str, stats: str, workers: int, batch: int, batches: int, warmup: int) -> dict:
    """Iterate the loader in this (fresh) process and report throughput and memory."""
    import psutil
    import torch

    from climode.data.loader import WindowDataset, make_loader
    from climode.data.normalize import Normalizer
    from climode.data.sampling import CAM5Protocol

    torch.set_num_threads(1)
    rss_before = psutil.Process().memory_info().rss
    norm = Normalizer.load(stats)
    dataset = WindowDataset(source, list(VARS), CAM5Protocol(), norm, seed=0,
                            samples_per_epoch=(batches + warmup) * batch, static=True)
    loader = make_loader(dataset, batch_size=batch, num_workers=workers, shuffle=True, seed=0)
    with _TreePeak() as tree:
        t_start = time.perf_counter()
        it = iter(loader)
        n = 0
        t_first = None
        for i, b in enumerate(it):
            if i == 0:
                t_first = time.perf_counter() - t_start
            if i == warmup - 1:
                t0 = time.perf_counter()
            if i >= warmup:
                n += int(b["inputs"].shape[0])
        elapsed = time.perf_counter() - t0
        del it
    dataset.close()
    # getrusage's RUSAGE_SELF max RSS survives execve, so it would include the
    # parent's peak from building the archive; VmHWM is this process image's own.
    ru_self = _vm_hwm_mb()
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "workers": workers,
        "samples_per_s": n / elapsed,
        "s_per_batch": elapsed / batches,
        "first_batch_s": t_first,
        "rss_before_mb": rss_before / 2**20,
        "peak_rss_loader_mb": ru_self,
        "maxrss_largest_worker_mb": ru_children if workers else None,
        "peak_tree_rss_mb": tree.peak / 2**20,
    }


def _measure_in_subprocess(args, source: str, stats: str, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--_measure", source, "--_stats", stats, "--workers", str(workers),
           "--batch", str(args.batch), "--batches", str(args.batches), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed ({source}, {workers} workers):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="samples per batch (default 8)")
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts, comma separated (default 0,2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="3-hourly time steps in the archive (default: 100 batches' worth of frames)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per configuration (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="batches before timing starts (default 2)")
    parser.add_argument("--grid", default="40x72", help="lat x lon grid (default 40x72)")
    parser.add_argument("--files", type=int, default=4, help="NetCDF files in the archive (default 4)")
    parser.add_argument("--zarr-chunk", type=int, default=4, help="time steps per zarr chunk (default 4)")
    parser.add_argument("--model-step-s", type=float, default=None,
                        help="measured model training step time in seconds; reports loader/model ratio")
    parser.add_argument("--dir", default=None, help="build the archive here and keep it (default: a temp dir)")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    parser.add_argument("--_stats", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if args._measure:
        result = measure(args._measure, args._stats, int(args.workers), args.batch, args.batches, args.warmup)
        sys.stdout.write(json.dumps(result) + "\n")
        return result

    nlat, nlon = (int(v) for v in args.grid.lower().split("x"))
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    steps = args.steps or 100 * args.batch * FRAMES_PER_SAMPLE
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="climode-bench-"))
    try:
        info = build_archive(root, steps, nlat, nlon, args.files, args.zarr_chunk)
        from climode.data.normalize import compute_stats, open_lazy

        t0 = time.perf_counter()
        compute_stats(open_lazy(info["netcdf"]), list(VARS), path=root / "stats.json")
        stats_s = time.perf_counter() - t0
        batch_mb = args.batch * FRAMES_PER_SAMPLE * len(VARS) * nlat * nlon * 4 / 1e6
        results = {}
        for fmt in ("netcdf", "zarr"):
            for w in workers:
                r = _measure_in_subprocess(args, info[fmt], str(root / "stats.json"), w)
                if args.model_step_s:
                    r["loader_to_model_step_ratio"] = r["s_per_batch"] / args.model_step_s
                results[f"{fmt}_w{w}"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
        report = {
            "benchmark": "data_pipeline",
            "grid": [nlat, nlon],
            "variables": list(VARS),
            "steps": steps,
            "batch": args.batch,
            "batch_mb": round(batch_mb, 2),
            "netcdf_mb": round(info["netcdf_mb"], 1),
            "zarr_mb": round(info["zarr_mb"], 1),
            "archive_to_batch": round(info["netcdf_mb"] / batch_mb, 1),
            "build_s": round(info["build_s"], 2),
            "stats_s": round(stats_s, 2),
            "cpu_count": os.cpu_count(),
            "model_step_s": args.model_step_s,
            "results": results,
        }
        sys.stdout.write(json.dumps(report) + "\n")
        return report
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
