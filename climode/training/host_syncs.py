"""Count the host round trips a step would make on a GPU, from a run on the CPU.

On a GPU every read of a device tensor by Python (``.item()``, ``float(t)``,
``bool(t)``, ``.cpu()``, ``.numpy()``, ...) waits for all queued kernels: a
device-to-host synchronisation; so does an operation whose output size depends
on device values (indexing with a boolean mask, ``nonzero``, ``unique``).  On the CPU nothing waits, so this module
tracks which tensors *would* live on the device while a block runs under a
``TorchFunctionMode``:

- tensors made inside the block by a factory without ``device=`` (``torch.tensor``,
  ``torch.from_numpy``, so a DataLoader's collate) live on the host, and so does
  whatever is computed from host tensors only;
- everything else is on the device: parameters, gradients, tensors that existed
  before the block, tensors made with ``device=`` or moved with ``.to(...)``, and
  whatever is computed from any of them.

Each read of a device tensor is a *sync*, each move or ``device=`` factory of
host data an *upload* (a host-to-device copy), and each operation that makes a
float64 tensor on the device is counted too (MPS has no float64, consumer GPUs
run it at a small fraction of float32), all attributed to the file and line
outside torch that made them.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

#: tensor methods that read a tensor's values into Python: a device-to-host sync on a GPU
SYNC_METHODS = frozenset({"item", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy", "tolist",
                          "__array__", "__format__"})
#: operations whose output size depends on the values: the host waits for them to know it
SIZE_FROM_VALUES = frozenset({"nonzero", "masked_select", "argwhere", "unique", "unique_consecutive"})
_HOST = "_climode_host"
_SKIP = (str(Path(torch.__file__).parent) + "/", str(Path(__file__)), str(Path(contextlib.__file__)))


@dataclass
class HostTraffic:
    """Syncs, uploads and float64 operations on the device counted in a block, by ``file:line``."""

    syncs: Counter = field(default_factory=Counter)
    uploads: Counter = field(default_factory=Counter)
    float64: Counter = field(default_factory=Counter)

    @property
    def n_syncs(self) -> int:
        return sum(self.syncs.values())

    @property
    def n_uploads(self) -> int:
        return sum(self.uploads.values())


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
    if frame is None:
        return "?"
    path = frame.f_code.co_filename
    for marker in ("/climode/", "/torchdiffeq/", "/tests/", "/benchmarks/"):
        if marker in path:
            path = marker.strip("/") + "/" + path.rsplit(marker, 1)[1]
            break
    return f"{path}:{frame.f_lineno}"


def _names_device(args) -> bool:
    """Whether the positional arguments of ``Tensor.to`` name a device (not only a dtype)."""
    return any(isinstance(a, (torch.device, str, int, torch.Tensor)) and not isinstance(a, bool) for a in args)


def _on_host(t: torch.Tensor) -> bool:
    """Tensors on an accelerator are on the device; CPU tensors count as host where marked so."""
    return t.device.type == "cpu" and getattr(t, _HOST, not _SIMULATING[0])


#: functions that create a tensor on the device from sizes and scalars alone: no host-to-device copy
DEVICE_FACTORIES = frozenset({"arange", "zeros", "ones", "empty", "full", "linspace", "logspace", "eye", "rand",
                              "randn", "randint", "zeros_like", "ones_like", "empty_like", "full_like",
                              "rand_like", "randn_like"})

#: True while counting on the CPU as if it were a GPU (unmarked CPU tensors count as device tensors)
_SIMULATING = [True]


def _tensors(out) -> list:
    """The tensors in ``out``, also inside torch's named return tuples (``sort(...).values``)."""
    found = []
    for leaf in tree_flatten(out)[0]:
        found.extend(_tensors(list(leaf)) if isinstance(leaf, tuple) else [leaf])
    return found


def _mark(out, host: bool) -> None:
    for t in _tensors(out):
        if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
            try:
                setattr(t, _HOST, host)
            except (AttributeError, RuntimeError):  # e.g. tensors that refuse attributes
                pass


class _Tracker(TorchFunctionMode):
    def __init__(self, traffic: HostTraffic):
        super().__init__()
        self.traffic = traffic

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if name in SYNC_METHODS and tensors and not _on_host(tensors[0]):
            self.traffic.syncs[f"{_caller()} {name}"] += 1
        elif name in SIZE_FROM_VALUES and tensors and not _on_host(tensors[0]):
            self.traffic.syncs[f"{_caller()} {name}"] += 1
        elif name in ("__getitem__", "__setitem__") and any(
                t.dtype == torch.bool and not _on_host(t) for t in tensors[1:]):
            self.traffic.syncs[f"{_caller()} {name}[bool mask]"] += 1
        out = func(*args, **kwargs)
        moved = kwargs.get("device") is not None or name == "cuda" or (name == "to" and _names_device(args[1:]))
        if moved:
            # a factory (torch.arange(..., device=)) fills device memory there: nothing crosses from the host
            if (any(_on_host(t) for t in tensors) or not tensors) and name not in DEVICE_FACTORIES:
                self.traffic.uploads[_caller()] += 1
            if any(out is t for t in tensors):  # .to(cpu) of a CPU tensor returns it: keep the host original
                out = out.view_as(out)
            _mark(out, False)
        elif name not in SYNC_METHODS:
            _mark(out, bool(tensors) and all(_on_host(t) for t in tensors) or not tensors)
        if name not in SYNC_METHODS and any(t.dtype == torch.float64 and not _on_host(t) for t in _tensors(out)
                                            if isinstance(t, torch.Tensor)):
            self.traffic.float64[_caller()] += 1
        return out


def optimizer_host_tensors(*optimizers) -> list[torch.Tensor]:
    """The ``step`` counters of torch optimisers: kept on the host unless capturable or fused."""
    return [v for opt in optimizers if opt is not None for state in opt.state.values()
            for k, v in state.items() if k == "step" and isinstance(v, torch.Tensor)]


@contextlib.contextmanager
def count_host_traffic(host: list[torch.Tensor] = (), device: torch.device | None = None) -> Iterator[HostTraffic]:
    """Count the syncs and uploads of the block as if its device were a GPU (see the module docstring).

    ``host`` lists tensors made before the block that live on the host all the same.
    On an accelerator ``device`` (a real GPU run) tensors are where torch says they are.
    """
    _SIMULATING[0] = device is None or torch.device(device).type == "cpu"
    _mark(list(host), True)
    traffic = HostTraffic()
    from_numpy = torch.from_numpy  # a factory that torch function modes do not see

    def host_from_numpy(array):
        out = from_numpy(array)
        _mark(out, True)
        return out

    torch.from_numpy = host_from_numpy
    try:
        with _Tracker(traffic):
            yield traffic
    finally:
        torch.from_numpy = from_numpy
        _SIMULATING[0] = True
