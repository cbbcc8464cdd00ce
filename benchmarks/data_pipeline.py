"""Benchmark the data pipeline training uses: samples per second, peak memory, and the loader/step ratio.

Builds, in a temporary directory, a CAM5-like archive (U850, V850, PSL, 3-hourly,
noleap calendar, by default on the 36 x 68 grid of ``recipes/hurricanes_cpu.yaml``:
1.5 degrees over the North Atlantic) about 100 times the size of a batch, twice:
as a multi-file NetCDF archive and as a zarr store.  Everything then runs the
way ``climode train`` does: the recipe's data section pointed at the archive goes
through :func:`climode.training.data.build_training_data` (``climode.open_dataset``
lazily with dask, the region, padding to the stride, the static channels, the
statistics computed once and stored) into a ``WindowDataset`` drawn by a
DataLoader as the trainer builds it (the recipe's CAM5 protocol: 5 irregular
inputs, 5 targets).

For each format and worker count a fresh process reports samples per second,
seconds per batch and peak memory (the loader process's own peak, VmHWM;
getrusage max RSS of its largest worker; the peak of the summed RSS of the
process tree sampled by psutil, which counts pages shared after fork once per
process).  Another fresh process builds the model from the recipe's
``ModelConfig`` (completed by the data as the trainer does), and times training
steps (``TrainStep``, with the discriminators when the recipe trains them) on
batches of the same grid and size; ``loader_to_model_step_ratio`` is loader
seconds per batch over that step time (below 1: the loader keeps a step fed,
even without overlap).  Prints one JSON line.

    python benchmarks/data_pipeline.py [--batch 8] [--workers 0,2] [--steps N] [--model-steps 3]
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
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "hurricanes_cpu.yaml"
GRID_ORIGIN = (6.0, 255.0)  # first lat, lon of the recipe's region lat=6:58.5,lon=255:355.5
GRID_STEP = 1.5


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
            # the recipe's North Atlantic box at 1.5 degrees (36 x 68 by default)
            "lat": GRID_ORIGIN[0] + GRID_STEP * np.arange(nlat),
            "lon": GRID_ORIGIN[1] + GRID_STEP * np.arange(nlon),
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


def _recipe(path: str, source: str, batch: int, samples: int):
    """The recipe with its data section pointed at ``source`` (the archive is its region already)."""
    import dataclasses

    from climode.training.recipe import load_recipe

    recipe = load_recipe(path)
    data = dataclasses.replace(recipe.data, dataset=source, split=None, validation_split=None, region=None,
                               batch_size=batch, samples_per_epoch=samples, seeds=None)
    return dataclasses.replace(recipe, data=data)


def _training_data(recipe, stats: str):
    """The trainer's data: build_training_data with the recipe's stride, statistics stored at ``stats``."""
    from climode.models.config import ModelConfig
    from climode.training.data import build_training_data

    stride = 2 ** int(recipe.model.config.get("n_downs", ModelConfig().n_downs))
    return build_training_data(recipe.data, multiple=stride, seed=recipe.train.seed, stats_path=stats)


def _trainer_loader(data, batch: int, workers: int, epoch: int = 0):
    """The trainer's loader (``make_loader``): shuffled epoch keys, padded batches, worker_init."""
    from climode.data.loader import make_loader

    return make_loader(data.train, batch, workers, shuffle=True, seed=0, epoch=epoch)


def measure(recipe_path: str, source: str, stats: str, workers: int, batch: int, batches: int, warmup: int) -> dict:
    """Iterate the training loader in this (fresh) process and report throughput and memory."""
    import psutil
    import torch

    torch.set_num_threads(1)
    rss_before = psutil.Process().memory_info().rss
    recipe = _recipe(recipe_path, source, batch, (batches + warmup) * batch)
    t0 = time.perf_counter()
    data = _training_data(recipe, stats)
    setup_s = time.perf_counter() - t0
    loader = _trainer_loader(data, batch, workers)
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
    data.train.close()
    # getrusage's RUSAGE_SELF max RSS survives execve, so it would include the
    # parent's peak from building the archive; VmHWM is this process image's own.
    ru_self = _vm_hwm_mb()
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "workers": workers,
        "samples_per_s": n / elapsed,
        "s_per_batch": elapsed / batches,
        "first_batch_s": t_first,
        "setup_s": setup_s,
        "batch_shape": list(b["inputs"].shape),
        "rss_before_mb": rss_before / 2**20,
        "peak_rss_loader_mb": ru_self,
        "maxrss_largest_worker_mb": ru_children if workers else None,
        "peak_tree_rss_mb": tree.peak / 2**20,
    }


def measure_model_step(recipe_path: str, source: str, stats: str, batch: int, steps: int, warmup: int) -> dict:
    """Time ``TrainStep`` of the recipe's model on batches of the archive (drawn before the clock starts)."""
    import statistics

    import torch

    from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
    from climode.training.step import Discriminators, TrainStep
    from climode.training.trainer import build_model, discriminators_enabled, model_config_for

    recipe = _recipe(recipe_path, source, batch, (steps + warmup) * batch)
    data = _training_data(recipe, stats)
    batches = list(_trainer_loader(data, batch, 0))
    config = model_config_for(recipe, data)
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model.name, config)
    o = recipe.optim
    opt_cls = {"adamax": torch.optim.Adamax, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o.name]
    optimizer = opt_cls([p for p in model.parameters() if p.requires_grad], lr=o.lr, weight_decay=o.weight_decay)
    disc = None
    if discriminators_enabled(recipe):
        spec = data.train.window(0, 0)[2]
        channels = config["in_channels"]
        d_img = ImageDiscriminator(channels)
        d_seq = SequenceDiscriminator(channels, len(spec.input_offsets) + len(spec.target_offsets))
        disc = Discriminators(d_img, d_seq, opt_cls([*d_img.parameters(), *d_seq.parameters()], lr=o.disc_lr or o.lr))
    step = TrainStep(model, optimizer, disc, recipe.loss, grad_clip=o.grad_clip)
    times = []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        step(b)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {
        "model": recipe.model.name,
        "recipe": Path(recipe_path).name,
        "config": {k: v for k, v in config.items() if not isinstance(v, dict)},
        "discriminators": disc is not None,
        "batch_shape": list(batches[0]["inputs"].shape),
        "torch_threads": torch.get_num_threads(),
        "steps_timed": len(times),
        "step_s_median": statistics.median(times),
        "step_s_min": min(times),
        "step_s_max": max(times),
    }


def _in_subprocess(args, *extra: str) -> dict:
    cmd = [sys.executable, __file__, *extra, "--batch", str(args.batch), "--batches", str(args.batches),
           "--warmup", str(args.warmup), "--recipe", str(args.recipe), "--model-steps", str(args.model_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed ({' '.join(extra)}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="samples per batch (default 8, as the recipe)")
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts, comma separated (default 0,2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="3-hourly time steps in the archive (default: 100 batches' worth of frames)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per configuration (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="batches before timing starts (default 2)")
    parser.add_argument("--grid", default="36x68", help="lat x lon grid at 1.5 degrees (default 36x68, the recipe's)")
    parser.add_argument("--files", type=int, default=4, help="NetCDF files in the archive (default 4)")
    parser.add_argument("--zarr-chunk", type=int, default=4, help="time steps per zarr chunk (default 4)")
    parser.add_argument("--recipe", default=str(RECIPE), help="recipe whose data section and model are used")
    parser.add_argument("--model-steps", type=int, default=3, help="training steps timed after one warm-up (default 3)")
    parser.add_argument("--dir", default=None, help="build the archive here and keep it (default: a temp dir)")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    parser.add_argument("--_model_step", help=argparse.SUPPRESS)
    parser.add_argument("--_stats", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if args._measure:
        result = measure(args.recipe, args._measure, args._stats, int(args.workers), args.batch, args.batches,
                         args.warmup)
        sys.stdout.write(json.dumps(result) + "\n")
        return result
    if args._model_step:
        result = measure_model_step(args.recipe, args._model_step, args._stats, args.batch, args.model_steps, 1)
        sys.stdout.write(json.dumps(result) + "\n")
        return result

    nlat, nlon = (int(v) for v in args.grid.lower().split("x"))
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    steps = args.steps or 100 * args.batch * FRAMES_PER_SAMPLE
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="climode-bench-"))
    try:
        info = build_archive(root, steps, nlat, nlon, args.files, args.zarr_chunk)
        stats_s, stored_s = {}, {}
        for fmt in ("netcdf", "zarr"):
            recipe = _recipe(args.recipe, info[fmt], args.batch, args.batch)
            stats = root / f"stats_{fmt}.json"
            t0 = time.perf_counter()
            _training_data(recipe, str(stats))  # computes the statistics lazily (dask) and stores them
            stats_s[fmt] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            _training_data(recipe, str(stats))  # reads them back
            stored_s[fmt] = round(time.perf_counter() - t0, 2)
        model = _in_subprocess(args, "--_model_step", info["netcdf"], "--_stats", str(root / "stats_netcdf.json"))
        batch_mb = args.batch * FRAMES_PER_SAMPLE * len(VARS) * nlat * nlon * 4 / 1e6
        results = {}
        for fmt in ("netcdf", "zarr"):
            for w in workers:
                r = _in_subprocess(args, "--_measure", info[fmt], "--_stats", str(root / f"stats_{fmt}.json"),
                                   "--workers", str(w))
                r["loader_to_model_step_ratio"] = r["s_per_batch"] / model["step_s_median"]
                results[f"{fmt}_w{w}"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
        report = {
            "benchmark": "data_pipeline",
            "path": "recipe data section -> build_training_data (climode.open_dataset, lazy) -> WindowDataset "
                    "-> trainer DataLoader",
            "grid": [nlat, nlon],
            "variables": list(VARS),
            "steps": steps,
            "batch": args.batch,
            "batch_mb": round(batch_mb, 2),
            "netcdf_mb": round(info["netcdf_mb"], 1),
            "zarr_mb": round(info["zarr_mb"], 1),
            "archive_to_batch": round(info["netcdf_mb"] / batch_mb, 1),
            "build_s": round(info["build_s"], 2),
            "stats_compute_and_store_s": stats_s,
            "setup_with_stored_stats_s": stored_s,
            "cpu_count": os.cpu_count(),
            "model_step": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in model.items()},
            "results": results,
        }
        sys.stdout.write(json.dumps(report) + "\n")
        return report
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
