"""One-command GPU check of climode: training, memory saving, precision and forecasts; prints one JSON line.

    python benchmarks/gpu_check.py                 # on a machine with CUDA, under five minutes on one GPU
    python benchmarks/gpu_check.py --device cpu    # dry run of the same code paths on the CPU, small sizes

On the GPU it trains the reference preset (128x128 RGB, batch 8, 5 -> 5, default
solvers) for a few steps in float32, in bf16 (where the GPU has native bf16),
with memory saving (``memory_saving_level="full"``) and with the decoder on
climode's host-grid rk4 instead of dopri5; for each it reports
the median step time, the peak memory, and the host syncs, uploads and float64
operations of one step (``climode.training.host_syncs``).  It then forecasts
with the bundled model on the GPU and on the CPU and reports their largest
difference per variable, and the precision the forecast ran in.  Without CUDA it
stops with a one-line message unless ``--device cpu`` is given, which runs the
same paths at ``--size 32 --batch 2`` by default to prove they work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402

from climode.models.config import ModelConfig, SolverConfig  # noqa: E402
from climode.models.precision import autocast_dtype, precision_name  # noqa: E402
from climode.models.vidode import VidODE  # noqa: E402
from climode.training.host_syncs import count_host_traffic, optimizer_host_tensors  # noqa: E402
from climode.training.step import TrainStep  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    p.add_argument("--size", type=int, help="frame size (default 128 on a GPU, 32 on the CPU)")
    p.add_argument("--batch", type=int, help="batch size (default 8 on a GPU, 2 on the CPU)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per mode after 2 warm-up steps")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(batch: int, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, 10, 3, size, size, generator=g)
    times = torch.arange(10, dtype=torch.float64).expand(batch, 10)
    host = {"input_mask": torch.ones(batch, 5), "target_mask": torch.ones(batch, 5)}
    return {"inputs": frames[:, :5].to(device), "targets": frames[:, 5:].to(device),
            "input_times": times[:, :5], "target_times": times[:, 5:],
            "input_mask": host["input_mask"].to(device), "target_mask": host["target_mask"].to(device), "host": host}


def train_mode(config: ModelConfig, device: torch.device, batch: dict, steps: int) -> dict:
    """Median step time, peak memory and host traffic of TrainStep on ``config``."""
    torch.manual_seed(0)
    model = VidODE(config).to(device)
    step = TrainStep(model, torch.optim.Adamax(model.parameters(), lr=1e-4))
    for _ in range(2):
        step(batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        result = step(batch)
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()
    host = [batch["input_times"], batch["target_times"], *batch["host"].values(), *optimizer_host_tensors(step.optimizer)]
    with count_host_traffic(host, device=device) as traffic:
        step(batch)
    return {
        "precision": precision_name(config, device),
        "step_s": round(statistics.median(times), 4),
        "peak_memory_mb": round(peak, 1),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "syncs_per_step": traffic.n_syncs,
        "uploads_per_step": traffic.n_uploads,
        "float64_ops_per_step": sum(traffic.float64.values()),
        "sync_sites": dict(traffic.syncs.most_common(6)),
        "nfe_encoder": result.losses["nfe_encoder"],
        "nfe_decoder": result.losses["nfe_decoder"],
        "loss": round(result.losses["total"], 6),
        "finite": bool(np.isfinite(result.losses["total"])),
    }


def forecast_check(device: torch.device) -> dict:
    """The bundled model's forecast on ``device`` against the CPU's: largest difference per variable."""
    import climode

    out = {}
    runs = {}
    for where in dict.fromkeys(["cpu", str(device)]):
        model = climode.load_model(device=where)
        t0 = time.perf_counter()
        runs[where] = model.predict(None, "+3h,+6h,+24h")
        out[f"seconds_{where}"] = round(time.perf_counter() - t0, 3)
        out[f"precision_{where}"] = "bfloat16" if autocast_dtype(model.model.config, torch.device(where)) else "float32"
    a, b = runs["cpu"], runs[str(device)]
    out["max_abs_diff"] = {v: float(np.nanmax(np.abs(a[v].values - b[v].values))) for v in a.data_vars}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with a GPU, "
              "or pass --device cpu for a dry run of the same code paths", file=sys.stderr)
        return 2
    on_gpu = device.type == "cuda"
    size = args.size or (128 if on_gpu else 32)
    batch_size = args.batch or (8 if on_gpu else 2)
    start = time.perf_counter()
    report: dict = {"device": str(device), "size": size, "batch": batch_size, "machine": machine()}
    if on_gpu:
        report["gpu"] = torch.cuda.get_device_name(device)
        report["capability"] = list(torch.cuda.get_device_capability(device))
    batch = _batch(batch_size, size, device)
    modes = {
        "float32": ModelConfig.reference(amp=False, amp_cpu=False),
        "bf16": ModelConfig.reference(amp=True, amp_cpu=not on_gpu),
        "memory_saving_full": ModelConfig.reference(amp=False, amp_cpu=False, memory_saving=True,
                                                    memory_saving_level="full"),
        # the decoder on climode's host-grid rk4 (one step per frame) instead of dopri5: no solver syncs
        "float32_rk4_decoder": ModelConfig.reference(amp=False, amp_cpu=False,
                                                     decoder_solver=SolverConfig(method="rk4", step_size=0.1)),
    }
    report["train"] = {name: train_mode(cfg, device, batch, args.steps) for name, cfg in modes.items()}
    report["forecast"] = forecast_check(device)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
