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


def conv_gflops(device: torch.device, repeats: int = 10, bf16: bool = False) -> float:
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
            conv(x)
            for _ in range(repeats):
                t0 = time.perf_counter()
                conv(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


def conv_train_gflops(device: torch.device, repeats: int = 10, bf16: bool = False) -> float:
    """Throughput (GFLOP/s) of the same large 3x3 convolution trained: forward plus backward.

    The backward pass computes the input and weight gradients (2x the forward's
    FLOPs), so this is the best rate a training step made only of such
    convolutions could reach; channels-last, as climode runs.
    """
    flop = 3 * 2 * 8 * 128 * 128 * 9 * 64 * 64
    x = torch.randn(8, 128, 64, 64, device=device).to(memory_format=torch.channels_last).requires_grad_()
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    grad = torch.randn(8, 128, 64, 64, device=device).to(memory_format=torch.channels_last)
    best = float("inf")
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            y = conv(x)
        torch.autograd.grad(y, [x, conv.weight], grad.to(y.dtype))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9
