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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tell glibc malloc to reuse freed large blocks; False where that is not possible.

    Only glibc on Linux is changed (other platforms and allocators, such as a
    preloaded jemalloc, are left alone).  Call it once, before training.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others have other tunables
            return False
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        log.info("glibc malloc keeps freed memory for reuse (no mmap per tensor, no trimming)")
    return ok
