"""Host index arrays sent to the device in one copy per forward.

A forward's gathers (observed frames, encoder updates, decoder chains) are
indexed by arrays that the plans (:mod:`climode.models.timeline`) compute on
the host.  Uploading each one as it is needed costs one small pageable copy
apiece (about a hundred per step); :class:`DeviceIndex` collects them, sends
them as one int64 buffer (pinned and ``non_blocking`` on CUDA), and hands out
views of it.
"""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np
import torch


class DeviceIndex:
    """``add`` host index arrays under keys, ``send`` them once, then read the device views by key."""

    def __init__(self) -> None:
        self._host: dict[Hashable, np.ndarray] = {}
        self._device: dict[Hashable, torch.Tensor] | None = None

    def add(self, key: Hashable, array: Any, dtype: Any = np.int64) -> Hashable:
        """Register ``array`` (int64 indices, or float32 values with ``dtype=np.float32``) under ``key``."""
        if self._device is not None:
            raise RuntimeError("DeviceIndex.add after send: register every array before the upload")
        if np.dtype(dtype) not in (np.dtype(np.int64), np.dtype(np.float32)):
            raise TypeError(f"DeviceIndex holds int64 indices and float32 values, not {np.dtype(dtype)}")
        self._host[key] = np.ascontiguousarray(array, dtype=dtype).ravel()
        return key

    def send(self, device: torch.device | str) -> "DeviceIndex":
        """One host-to-device copy per dtype (int64 indices, float32 values), pinned and non_blocking on CUDA."""
        device = torch.device(device)
        self._device = {}
        for dtype in (np.int64, np.float32):
            keys = [k for k, a in self._host.items() if a.dtype == dtype]
            if not keys:
                continue
            sizes = [self._host[k].size for k in keys]
            buffer = torch.from_numpy(np.concatenate([self._host[k] for k in keys]))
            if device.type == "cuda":
                buffer = buffer.pin_memory()
            buffer = buffer.to(device, non_blocking=device.type == "cuda")  # on the CPU: the same tensor
            self._device.update(zip(keys, torch.split(buffer, sizes)))
        return self

    def __getitem__(self, key: Hashable) -> torch.Tensor:
        if self._device is None:
            raise RuntimeError("DeviceIndex read before send")
        return self._device[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._host
