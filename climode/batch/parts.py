"""``--parts i/N``: part i of N of a batch's task list, for job arrays and cron entries.

Parts are numbered from **1** to N.  Part i holds the tasks
``[floor((i-1) T / N), floor(i T / N))`` of the plan's T tasks (init-major,
basin-minor): contiguous, deterministic (the same spec always splits the same
way, whatever the store holds) and disjoint, and together the N parts are the
whole batch.  ``--parts slurm`` reads the part from a SLURM job array's
environment (``SLURM_ARRAY_TASK_ID`` relative to ``SLURM_ARRAY_TASK_MIN`` and
``SLURM_ARRAY_TASK_STEP``, of ``SLURM_ARRAY_TASK_COUNT``), so
``--array=0-3``, ``--array=1-4`` and ``--array=0-30:10`` all give parts 1 to 4.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from climode.errors import ConfigError

T = TypeVar("T")

_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
HELP = ("--parts takes i/N with 1 <= i <= N (parts are numbered from 1), e.g. 2/8, "
        "or 'slurm' inside a SLURM job array")


@dataclass(frozen=True)
class Part:
    """Part ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (self.count >= 1 and 1 <= self.index <= self.count):
            hint = "; for a job array numbered from 0 use --parts slurm" if self.index == 0 else ""
            raise ConfigError(f"part {self.index}/{self.count} does not exist: {HELP}{hint}")

    def bounds(self, total: int) -> tuple[int, int]:
        """First and one-past-last position of this part in a list of ``total`` items."""
        return (self.index - 1) * total // self.count, self.index * total // self.count

    def select(self, items: Sequence[T]) -> list[T]:
        start, stop = self.bounds(len(items))
        return list(items[start:stop])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _env_int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = environ.get(name)
    if value is None and default is not None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise ConfigError(f"--parts slurm needs {name} from a SLURM job array (sbatch --array=...), "
                          f"got {value!r}") from None


def parse_part(text: str, environ: Mapping[str, str] | None = None) -> Part:
    """``'2/8'`` -> Part(2, 8); ``'slurm'`` -> this array task's part."""
    environ = os.environ if environ is None else environ
    if text.strip().lower() == "slurm":
        task, first = _env_int(environ, "SLURM_ARRAY_TASK_ID"), _env_int(environ, "SLURM_ARRAY_TASK_MIN")
        step, count = _env_int(environ, "SLURM_ARRAY_TASK_STEP", 1), _env_int(environ, "SLURM_ARRAY_TASK_COUNT")
        return Part((task - first) // max(step, 1) + 1, count)
    match = _PART.match(text)
    if not match:
        raise ConfigError(f"cannot read --parts {text!r}: {HELP}")
    return Part(int(match.group(1)), int(match.group(2)))
