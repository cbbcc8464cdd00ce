"""Which tasks of a store are being run, by whom alive: byte-range locks on one file in the store.

Each task (basin group, init index) has one byte of ``<store>/.climode-batch.lock``.
A run locks the bytes of all its tasks, exclusively and without waiting, before
it computes anything: a second run over any of the same tasks is refused with a
one-line error (:class:`StoreBusyError`), while runs of disjoint ``--parts``
write the same store side by side.  Byte 0 serialises changes of the store's
layout (creating a basin group, removing leftovers); it is held for moments only.

The kernel drops a process's locks when it ends, however it ends (SIGKILL
included), so there is no stale lock to clean up.  Linux open-file-description
locks (``F_OFD_SETLK``), POSIX record locks elsewhere; both work on local file
systems and NFS (Lustre: mounted with ``flock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from climode.errors import ClimodeError

#: The lock file, inside the store (zarr ignores it).
LOCK_NAME = ".climode-batch.lock"
#: Bytes per basin group: more than the init times one spec may have (spec.MAX_INITS).
_GROUP_SLOT = 1 << 17
_BUSY = (errno.EACCES, errno.EAGAIN)


class StoreBusyError(ClimodeError):
    """Another live process is running some of the same tasks of this store."""


def task_offset(group: str, index: int) -> int:
    """The byte that stands for task ``index`` of ``group`` (byte 0 is the layout lock)."""
    return (zlib.crc32(group.encode("utf-8")) + 1) * _GROUP_SLOT + index


def runs(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted offsets as ``(start, length)`` runs of consecutive bytes."""
    out: list[list[int]] = []
    for offset in sorted(set(offsets)):
        if out and offset == out[-1][0] + out[-1][1]:
            out[-1][1] += 1
        else:
            out.append([offset, 1])
    return [(start, length) for start, length in out]


class StoreLock:
    """The lock file of one store, opened once; :meth:`close` releases everything."""

    def __init__(self, store: str | os.PathLike):
        self.path = Path(store) / LOCK_NAME
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        self._held: list[tuple[int, int]] = []

    def _fcntl(self, kind: int, start: int, length: int, wait: bool) -> bool:
        """Set (or clear) a lock on ``length`` bytes from ``start``; False if another holder has one."""
        try:
            if hasattr(fcntl, "F_OFD_SETLK"):
                cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
                # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid} (l_pid 0 for OFD locks)
                fcntl.fcntl(self.fd, cmd, struct.pack("hhqqi", kind, os.SEEK_SET, start, length, 0).ljust(64, b"\0"))
            else:  # pragma: no cover - not Linux
                op = {fcntl.F_WRLCK: fcntl.LOCK_EX, fcntl.F_UNLCK: fcntl.LOCK_UN}[kind]
                fcntl.lockf(self.fd, op | (0 if wait or kind == fcntl.F_UNLCK else fcntl.LOCK_NB), length, start)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
        return True

    def claim(self, tasks: Iterable[tuple[str, int]], store: str = "") -> None:
        """Lock every ``(group, init index)`` of ``tasks``, or none of them and raise StoreBusyError."""
        for start, length in runs(task_offset(group, index) for group, index in tasks):
            if not self._fcntl(fcntl.F_WRLCK, start, length, wait=False):
                self.release()
                raise StoreBusyError(
                    f"another climode batch is running tasks of this batch in {store or self.path.parent}; "
                    "wait for it to finish (then rerun to complete what is missing), or give each run its own --parts")
            self._held.append((start, length))

    def release(self) -> None:
        for start, length in self._held:
            self._fcntl(fcntl.F_UNLCK, start, length, wait=False)
        self._held.clear()

    @contextlib.contextmanager
    def layout(self) -> Iterator[None]:
        """Hold the store's layout lock (waiting for it) while groups are created or leftovers removed."""
        self._fcntl(fcntl.F_WRLCK, 0, 1, wait=True)
        try:
            yield
        finally:
            self._fcntl(fcntl.F_UNLCK, 0, 1, wait=False)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the last descriptor of the open file description: its locks go with it
            self.fd = -1
            self._held.clear()
