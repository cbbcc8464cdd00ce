"""Shared helpers of the benchmark scripts: machine facts, peak memory, conv throughput."""

from __future__ import annotations

import contextlib
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


def module_gflops(counter, parts: dict[str, str]) -> dict[str, float]:
    """GFLOP (forward + backward) of each module of a ``FlopCounterMode`` run, by climode's part names.

    ``parts`` maps a module name as the counter records it (the class of the
    outermost module called, then attribute names: ``"VidODE.decoder"``, or
    ``"Decoder"`` when the code calls the submodule directly) to the name
    printed; a part's count includes its submodules and every call of it.
    """
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    out = {}
    for path, label in parts.items():
        matches = [v for k, v in counts.items() if k == path]
        out[label] = round(max(matches, default=0) / 1e9, 1)
    # work no listed part was credited with: small heads, losses, and the backward of a module whose
    # output the tracker cannot follow (climode's G returns a dataclass, so only its forward is credited)
    out["other"] = round(counter.get_total_flops() / 1e9 - sum(out.values()), 1)
    return out


@contextlib.contextmanager
def first_module_names():
    """Inside, the flop counter keeps the first name it gave a module.

    torchdiffeq wraps an ODE function in a new ``_PerturbFunc`` per solve, and
    torch's ``ModuleTracker`` renames a module after each parent it is seen
    under, so both ODE functions would be counted as ``_PerturbFunc.base_func``;
    with this they keep their names under the model (``VidODE.decoder_ode``).
    Only the per-module attribution changes, not the counts.
    """
    from torch.utils.module_tracker import ModuleTracker

    original = ModuleTracker._get_mod_name

    def get_mod_name(self, mod):
        if mod not in self._known_modules:
            self._known_modules[mod] = type(mod).__name__
        name = self._known_modules[mod]
        if mod not in self._seen_modules:
            for child_name, child in mod.named_children():
                self._known_modules.setdefault(child, f"{name}.{child_name}")
                get_mod_name(self, child)
            self._seen_modules.add(mod)
        return name

    ModuleTracker._get_mod_name = get_mod_name
    try:
        yield
    finally:
        ModuleTracker._get_mod_name = original
