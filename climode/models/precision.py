"""Mixed precision: where the convolutions of a model run in bfloat16.

``config.amp`` turns on bf16 autocast on CUDA; ``config.amp_cpu`` also on the
CPU, which pays off only where the CPU has native bf16 arithmetic (AVX512-BF16
or AMX; oneDNN then runs a 3x3 convolution about twice as fast as in float32).
The ODE functions always run in float32 (see :mod:`climode.models.odefunc`).
"""

from __future__ import annotations

import contextlib
import functools
import logging

import torch

log = logging.getLogger(__name__)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions in hardware (AVX512-BF16, AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(config, device: torch.device):
    """The autocast context for ``config`` on ``device`` (a null context in float32)."""
    if device.type == "cuda" and getattr(config, "amp", False):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and getattr(config, "amp_cpu", False):
        if not cpu_has_native_bf16():
            _warn_slow_bf16()
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def _warn_slow_bf16() -> None:
    log.warning("amp_cpu is on but this CPU has no native bf16; the model will run slower than in float32")
