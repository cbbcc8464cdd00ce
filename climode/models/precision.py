"""Mixed precision: where the convolutions of a model run in bfloat16.

``config.amp`` turns on bf16 autocast on CUDA devices with native bf16
(compute capability 8.0 or higher; older GPUs such as V100 and T4 would emulate
it, so they fall back to float32 and say so); ``config.amp_cpu`` also on the
CPU, which pays off only where the CPU has native bf16 arithmetic (AVX512-BF16
or AMX; oneDNN then runs a 3x3 convolution about twice as fast as in float32).
The ODE functions always run in full float32, without TF32 (see
:mod:`climode.models.odefunc` and :func:`full_float32_convolutions`).
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


def cuda_has_native_bf16(device: torch.device) -> bool:
    """True on GPUs of compute capability 8.0 or higher (``is_bf16_supported`` also counts emulation)."""
    return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def autocast_dtype(config, device: torch.device) -> torch.dtype | None:
    """The dtype autocast runs ``config``'s convolutions in on ``device`` (None: float32)."""
    if device.type == "cuda" and getattr(config, "amp", False):
        if cuda_has_native_bf16(device):
            return torch.bfloat16
        _warn_emulated_bf16(str(device))
    if device.type == "cpu" and getattr(config, "amp_cpu", False):
        if not cpu_has_native_bf16():
            _warn_slow_bf16()
        return torch.bfloat16
    return None


def precision_name(config, device: torch.device) -> str:
    """``"bfloat16"`` or ``"float32"``: what a checkpoint sidecar records as its training precision."""
    dtype = autocast_dtype(config, device)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(config, device: torch.device):
    """The autocast context for ``config`` on ``device`` (a null context in float32)."""
    dtype = autocast_dtype(config, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def full_float32_convolutions():
    """cuDNN convolutions in IEEE float32 (no TF32) inside the block, the global setting restored after.

    torch lets cuDNN run float32 convolutions as TF32 on Ampere and later (10-bit
    mantissa, about 5e-4 relative error), close to the adaptive solvers' rtol of
    1e-3; the ODE functions use this so the solver's error control sees float32.
    """
    conv = torch.backends.cudnn.conv
    previous = conv.fp32_precision
    conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision = previous


@functools.cache
def _warn_emulated_bf16(device: str) -> None:
    log.warning("amp is on but %s has no native bf16 (compute capability below 8.0): running in float32", device)


@functools.cache
def _warn_slow_bf16() -> None:
    log.warning("amp_cpu is on but this CPU has no native bf16; the model will run slower than in float32")
