"""Atomic writes: a crash never leaves a half-written file where a good one is expected.

Everything is written to a temporary sibling first and moved into place with
:func:`os.replace`, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    With ``directory=True`` the target is a directory (a zarr store): an existing
    one is replaced as a whole.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work = tmp / target.name
    try:
        yield work
        if directory:
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(work, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(work, target)
        else:
            os.replace(work, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_dataset(ds, path: str | os.PathLike) -> Path:
    """Write an xarray dataset to NetCDF (``.nc``) or zarr (``.zarr``) atomically."""
    from climode.errors import ClimodeError

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".nc", ".nc4", ".netcdf"):
        with atomic_path(target) as tmp:
            ds.to_netcdf(tmp)
    elif suffix == ".zarr":
        with atomic_path(target, directory=True) as tmp:
            ds.to_zarr(tmp, mode="w")
    else:
        raise ClimodeError(f"cannot write {target}: use a .nc or .zarr file name")
    return target
