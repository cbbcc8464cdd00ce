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
from typing import Any, Iterable, Iterator, Union

#: a path argument: str or any os.PathLike of str
StrPath = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_path(path: StrPath, *, directory: bool = False) -> Iterator[Path]:
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


def atomic_write_bytes(path: StrPath, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: StrPath, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_dataset(ds: Any, path: StrPath) -> Path:
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


# ---------------------------------------------------------------- output safety
def _real(path: StrPath) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def clashes_with(output: StrPath, inputs: Iterable[StrPath]) -> str | None:
    """The input ``output`` would overwrite: the same file (also through a symlink, a hard link or
    a relative path), or a store or directory it lies inside; None if there is none."""
    out = _real(output)
    for item in inputs:
        src = _real(item)
        if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
            return str(os.fspath(item))
        with contextlib.suppress(OSError):
            if os.path.exists(out) and os.path.samefile(out, src):
                return str(os.fspath(item))
    return None


def probe_writable(path: StrPath) -> None:
    """Create and remove a temporary file where ``path`` will be written; a one-line error if that fails.

    The target's parent need not exist yet (it is created on writing): the nearest
    existing ancestor is probed.
    """
    from climode.errors import ClimodeError

    target = Path(os.path.expanduser(os.fspath(path)))
    parent = target.parent if str(target.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():  # a dangling link: nothing can be created under it
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ClimodeError(f"cannot write {target}: {parent} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ClimodeError(f"cannot write {target}: {exc.strerror or exc} ({parent})") from None


def check_output_path(path: StrPath, *, inputs: Iterable[StrPath] = (), overwrite: bool = False, flag: str = "--output",
                      overwrite_hint: str = "--overwrite", existing: Iterable[StrPath] | None = None) -> Path:
    """Refuse, before any work, an output that would destroy data or could not be written.

    - an output that is one of ``inputs`` (or inside one) is always refused;
    - an existing output (or any of ``existing``, the other files it will write) is refused
      unless ``overwrite``; ``overwrite_hint`` says how to allow it (``--overwrite`` on the
      command line, ``overwrite=True`` in Python);
    - an existing directory is refused unless the output is a zarr store (a directory itself);
    - the target's directory must be writable (:func:`probe_writable`).
    """
    from climode.errors import ClimodeError

    target = Path(os.path.expanduser(os.fspath(path)))
    clash = clashes_with(target, inputs)
    if clash is not None:
        raise ClimodeError(f"{flag} {target} is the input {clash}: writing it would destroy the data; "
                           "choose another output name")
    if target.is_dir() and target.suffix.lower() != ".zarr":
        raise ClimodeError(f"{flag} {target} is an existing directory; give a file name")
    present = [p for p in (target, *(existing or ())) if os.path.lexists(p)]
    if present and not overwrite:
        more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
        raise ClimodeError(f"{flag} {present[0]}{more} already exists; choose another name or pass "
                           f"{overwrite_hint} to replace it")
    probe_writable(target)
    return target
