"""Keep freed host memory in the process instead of returning it to the kernel.

glibc's malloc serves every block above a (dynamic, at most 32 MiB) threshold
with its own ``mmap`` and gives it back with ``munmap`` when freed.  A CPU
training step allocates and frees the same few hundred large activation and
gradient tensors every step, so each step maps fresh pages and faults on every
one of them: at the reference preset a third of the step's CPU time went to the
kernel.  PyTorch's CPU performance guide swaps in jemalloc or tcmalloc through
``LD_PRELOAD`` for this; a running Python process cannot, but it can tell glibc
(``mallopt``) to serve large blocks from the heap and never trim it, so the
pages of one step are reused by the next, which is what a caching allocator
does.  Resident memory stays near the step's peak until the process exits.

Memory saving (activation checkpointing) wants the opposite: the smallest peak.
There glibc's dynamic threshold (it grows to 32 MiB) lets the many 4-32 MiB
recomputed activations fragment the heap, about 850 MB of peak above the live
bytes at the reference preset; ``release_large_blocks`` pins the threshold at
8 MiB so those blocks are mapped and returned one by one.  Measured at the
reference preset with ``memory_saving_level="full"``: 4 MiB gives the
smallest peak (1158 MB) but 1.86x the default step (page faults on every
reuse), 8 MiB 1416 MB for 1.34-1.45x, 16 MiB 1428 MB for 1.40-1.43x
(docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_MMAP_THRESHOLD = -3


def _glibc():
    """glibc's handle, or None (not Linux, musl, no libc found)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory() -> bool:
    """Tell glibc malloc to reuse freed large blocks; False where that is not possible.

    Only glibc on Linux is changed (other platforms and allocators, such as a
    preloaded jemalloc, are left alone).  Call it once, before training.
    """
    libc = _glibc()  # musl and others have other tunables
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1
    if ok:
        log.info("glibc malloc keeps freed memory for reuse (no mmap per tensor, no trimming)")
    return ok


def release_large_blocks(threshold: int = 8 << 20) -> bool:
    """Have glibc map every block of ``threshold`` bytes or more on its own and unmap it when freed.

    For memory-saving runs: the smallest peak, paid for by page faults when a
    block is reused.  False where glibc's ``mallopt`` is not available.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1
    if ok:
        log.info("glibc malloc maps and returns blocks of %d MiB and more one by one", threshold >> 20)
    return ok
