"""Reading the times users ask for.

Pinned semantics (docs/forecast.md):

- ``60h`` (no sign): hours after the first input used (the paper's offsets);
- ``+3h``: a forecast period after ``forecast_reference_time``, the last input used;
- ``2000-08-03T12:00``: an absolute valid time in the data's calendar (any ISO 8601
  form, read by :func:`climode.time.iso_hours_since`);
- ``A..B/S``: every S from A to B inclusive, e.g. ``60h..72h/3h`` or ``+3h..+15h/3h``.

Units: ``h`` hours, ``d`` days, ``m`` minutes.  Everything is turned into hours
after the first input; sorting and de-duplication are reported back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from climode.errors import ClimodeError
from climode.time import iso_hours_since

_DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*([hdm])$", re.IGNORECASE)
#: No duration past this many hours (a million years) is read: it is a typo, and would overflow.
MAX_HOURS = 24.0 * 366 * 1_000_000
_UNIT_HOURS = {"h": 1.0, "d": 24.0, "m": 1.0 / 60.0}
HELP = ("use 60h (hours after the first input), +3h (after the last input), an absolute time such as "
        "2000-08-03T12:00 (any ISO 8601 form numpy, pandas or cftime print), or a range such as 60h..72h/3h")


@dataclass
class TimeRequest:
    """Requested valid times as hours after the first input, sorted and unique."""

    hours: list[float]
    notes: list[str] = field(default_factory=list)


def parse_duration(text: str) -> tuple[str, float]:
    """``'+3h'`` -> ('+', 3.0); ``'60h'`` -> ('', 60.0); raises on anything else."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ClimodeError(f"cannot read time {text!r}; {HELP}")
    sign, value, unit = m.groups()
    hours = float(value) * _UNIT_HOURS[unit.lower()]
    if not math.isfinite(hours) or hours > MAX_HOURS:
        raise ClimodeError(f"time {text.strip()!r} is too far away (more than {MAX_HOURS:g} h); {HELP}")
    return sign, -hours if sign == "-" else hours


def _token_hours(text: str, first_input: Any, init_hours: float) -> float:
    absolute = iso_hours_since(text, first_input)
    if absolute is not None:
        return absolute
    sign, hours = parse_duration(text)
    return init_hours + hours if sign in ("+", "-") else hours


def parse_times(spec: str | Sequence[Any], *, first_input: Any, init_hours: float) -> TimeRequest:
    """Parse a comma-separated ``spec`` (or a list of items) into hours after the first input."""
    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(",")
    hours: list[float] = []
    for raw in items:
        text = str(raw).strip()
        if not text:
            continue
        if ".." in text:
            span, _, step = text.partition("/")
            start, _, stop = span.partition("..")
            if not step:
                raise ClimodeError(f"range {text!r} needs a step, e.g. 60h..72h/3h")
            s_sign, step_h = parse_duration(step)
            if step_h <= 0 or s_sign == "-":
                raise ClimodeError(f"range {text!r} needs a positive step")
            a = _token_hours(start, first_input, init_hours)
            b = _token_hours(stop, first_input, init_hours)
            if b < a:
                raise ClimodeError(f"range {text!r} ends before it starts")
            n = int(round((b - a) / step_h))
            if n > 10000:
                raise ClimodeError(f"range {text!r} asks for {n + 1} times; ask for fewer than 10000")
            hours += [a + k * step_h for k in range(n + 1) if a + k * step_h <= b + 1e-9]
        else:
            hours.append(_token_hours(text, first_input, init_hours))
    if not hours:
        raise ClimodeError(f"no times given; {HELP}")
    notes = []
    rounded = [round(h, 6) for h in hours]
    unique = sorted(set(rounded))
    if len(unique) < len(rounded):
        notes.append(f"dropped {len(rounded) - len(unique)} duplicated time(s)")
    if rounded != sorted(rounded):
        notes.append("sorted the requested times")
    return TimeRequest(hours=unique, notes=notes)
