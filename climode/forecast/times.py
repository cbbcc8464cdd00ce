"""Reading the times users ask for.

Pinned semantics (docs/forecast.md):

- ``60h`` (no sign): hours after the first input used (the paper's offsets);
- ``+3h``: a forecast period after ``forecast_reference_time``, the last input used;
- ``2000-08-03T12:00``: an absolute valid time in the data's calendar;
- ``A..B/S``: every S from A to B inclusive, e.g. ``60h..72h/3h`` or ``+3h..+15h/3h``.

Units: ``h`` hours, ``d`` days, ``m`` minutes.  Everything is turned into hours
after the first input; sorting and de-duplication are reported back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from climode.errors import ClimodeError

_DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*([hdm])$", re.IGNORECASE)
#: ISO 8601 dates and times as numpy (``1996-01-17T06:00:00.000000000``), pandas and cftime
#: (``1996-01-17 06:00:00``) and datetime print them: T or space, hours alone or with minutes,
#: seconds and a fraction; an optional ``Z`` or UTC offset (``+00:00``).
_ABSOLUTE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?)?"
                       r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$", re.IGNORECASE)
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


def _absolute_hours(text: str, first_input, calendar: str | None) -> float | None:
    m = _ABSOLUTE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss = (int(g) if g else 0 for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    seconds = float(f"0.{fraction}") if fraction else 0.0
    offset_hours = 0.0
    if zone and zone.upper() != "Z":
        sign = -1.0 if zone[0] == "-" else 1.0
        digits = zone[1:].replace(":", "")
        if int(digits[:2]) > 14 or int(digits[2:] or 0) > 59:
            raise ClimodeError(f"time {text.strip()!r} has no valid UTC offset ({zone}); use Z or -12:00..+14:00")
        offset_hours = sign * (int(digits[:2]) + int(digits[2:] or 0) / 60.0)
    import cftime

    ref = first_input
    calendar = getattr(ref, "calendar", None) or calendar or "standard"
    try:
        if isinstance(ref, cftime.datetime):
            when = cftime.datetime(y, mo, d, hh, mi, ss, calendar=ref.calendar,
                                   has_year_zero=getattr(ref, "has_year_zero", None))
        else:
            import pandas as pd

            when = pd.Timestamp(year=y, month=mo, day=d, hour=hh, minute=mi, second=ss)
            ref = pd.Timestamp(ref)
        hours = (when - ref).total_seconds() / 3600.0
    except (ValueError, OverflowError) as exc:  # pandas' OutOfBoundsDatetime is a ValueError
        raise ClimodeError(f"time {text.strip()!r} does not exist in the data's calendar ({calendar}): "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return hours + seconds / 3600.0 - offset_hours


def _token_hours(text: str, first_input, init_hours: float, calendar: str | None) -> float:
    absolute = _absolute_hours(text, first_input, calendar)
    if absolute is not None:
        return absolute
    sign, hours = parse_duration(text)
    return init_hours + hours if sign in ("+", "-") else hours


def parse_times(spec: str | list, *, first_input, init_hours: float, calendar: str | None = None) -> TimeRequest:
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
            a = _token_hours(start, first_input, init_hours, calendar)
            b = _token_hours(stop, first_input, init_hours, calendar)
            if b < a:
                raise ClimodeError(f"range {text!r} ends before it starts")
            n = int(round((b - a) / step_h))
            if n > 10000:
                raise ClimodeError(f"range {text!r} asks for {n + 1} times; ask for fewer than 10000")
            hours += [a + k * step_h for k in range(n + 1) if a + k * step_h <= b + 1e-9]
        else:
            hours.append(_token_hours(text, first_input, init_hours, calendar))
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
