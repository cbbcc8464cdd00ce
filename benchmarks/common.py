"""Shared helpers of the benchmark scripts: machine facts, peak memory, conv throughput."""

from __future__ import annotations

import os
import platform
import resource
import time

import torch


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def conv_gflops(device: torch.device, repeats: int = 5, bf16: bool = False) -> float:
    """Best throughput (GFLOP/s) of a large 3x3 convolution, the machine's practical peak.

    Tries both memory layouts (NCHW and channels-last) and keeps the faster;
    ``bf16`` runs it under bf16 autocast, as a mixed-precision step does.
    """
    flop = 2 * 8 * 128 * 128 * 9 * 64 * 64
    best = float("inf")
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(8, 128, 64, 64, device=device).to(memory_format=layout)
        conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device).to(memory_format=layout)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            conv(x)
            for _ in range(repeats):
                t0 = time.perf_counter()
                conv(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9
