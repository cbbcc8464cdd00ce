"""Time values of the data: hours between them, ISO 8601 text in and out, in any calendar.

A time value is what a time axis holds: a numpy ``datetime64`` (the
proleptic Gregorian calendar) or a cftime date (``noleap``, ``360_day``,
``standard``, ...); plain numbers are hours (or frames, for video).  Here is the
one way climode turns them into hours (:func:`hours_since`, :func:`hours_between`),
reads ISO text (:func:`parse_iso`, :func:`iso_fields`), makes an ISO time a
value of the data's calendar (:func:`data_time`) or hours after one of its
values (:func:`iso_hours_since`), writes one
(:func:`format_time`) and moves one by some hours (:func:`add_hours`).

This module sits on the bottom floor: it imports nothing from climode but
:mod:`climode.errors`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import cftime
import numpy as np
import numpy.typing as npt

from climode.errors import ClimodeError, ConfigError, DataError

#: How :func:`format_time` writes a time (what ``--init`` and batch specs read back).
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"
#: ISO 8601 dates and times as numpy (``1996-01-17T06:00:00.000000000``), pandas and cftime
#: (``1996-01-17 06:00:00``) and datetime print them: T or space, hours alone or with minutes,
#: seconds and a fraction; an optional ``Z`` or UTC offset (``+00:00``).
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?)?"
                  r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$", re.IGNORECASE)
_ONE_HOUR = dt.timedelta(hours=1)
_ONE_HOUR_64 = np.timedelta64(1, "h")
_FINER_THAN_SECONDS = ("ms", "us", "ns", "ps", "fs", "as")


@dataclass(frozen=True)
class IsoTime:
    """A date and time read from ISO 8601 text, not yet a value of any calendar.

    ``fraction`` is the seconds' fraction (0 <= fraction < 1); ``zone`` is the
    text's ``Z`` or UTC offset (``+02:00``), empty when it has none.
    """

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    fraction: float = 0.0
    zone: str = ""

    @property
    def fields(self) -> tuple[int, int, int, int, int, int]:
        """(year, month, day, hour, minute, second)."""
        return self.year, self.month, self.day, self.hour, self.minute, self.second

    @property
    def utc_offset_hours(self) -> float:
        """Hours the zone is ahead of UTC (``+02:00`` is 2.0, ``Z`` and none are 0)."""
        if not self.zone or self.zone.upper() == "Z":
            return 0.0
        digits = self.zone[1:].replace(":", "")
        return (-1.0 if self.zone[0] == "-" else 1.0) * (int(digits[:2]) + int(digits[2:] or 0) / 60.0)


# --------------------------------------------------------------------------- hours
def _delta_hours(delta: Any) -> float:
    """A difference of two time values (timedelta, numpy timedelta64, number of hours) in hours."""
    if isinstance(delta, np.timedelta64):
        return float(delta / _ONE_HOUR_64)
    if isinstance(delta, dt.timedelta):  # cftime differences and pandas Timedelta too
        return float(delta / _ONE_HOUR)
    if hasattr(delta, "total_seconds"):
        return float(delta.total_seconds()) / 3600.0
    return float(delta)


def hours_since(values: Any, origin: Any = None) -> npt.NDArray[np.float64]:
    """Times as float64 hours since ``origin`` (default: the first time).

    Accepts a 1-D axis of numpy datetime64, cftime dates (any calendar, e.g.
    noleap: no Feb 29 is counted), datetimes and plain numbers (taken as hours,
    or frames for video), or an xarray coordinate of them.
    """
    arr = np.asarray(getattr(values, "values", values))
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"a time axis must be a non-empty 1-D array, got shape {arr.shape}")
    if origin is None:
        origin = arr[0]
    if np.issubdtype(arr.dtype, np.datetime64):
        hours: npt.NDArray[np.float64] = (arr - np.datetime64(origin)) / _ONE_HOUR_64
        return hours
    if np.issubdtype(arr.dtype, np.number):
        return arr.astype(np.float64) - float(origin)
    if arr.dtype == object:
        try:
            return np.array([_delta_hours(value - origin) for value in arr], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"cannot convert times to hours ({exc}); are the calendars mixed?") from None
    raise DataError(f"cannot read times of type {arr.dtype}: use datetime64, cftime or numbers")


def hours_between(start: Any, end: Any) -> float:
    """Hours from ``start`` to ``end``: :func:`hours_since` of one time value."""
    return float(hours_since([end], start)[0])


def add_hours(value: Any, hours: float) -> Any:
    """``value`` moved by ``hours``, in its own calendar (datetime64 to the whole second)."""
    if isinstance(value, np.datetime64):
        return value + np.timedelta64(round(hours * 3600), "s")
    return value + dt.timedelta(hours=float(hours))


# --------------------------------------------------------------------------- ISO text
def parse_iso(text: str) -> IsoTime | None:
    """ISO 8601 ``text`` in any form numpy, pandas, cftime or datetime print; None if it is not one.

    Field ranges are left to the calendar (:func:`data_time`); a UTC offset
    beyond -12:00..+14:00 is a ClimodeError.
    """
    m = _ISO.match(str(text).strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8) or ""
    if zone.upper() != "Z" and zone:
        digits = zone[1:].replace(":", "")
        if int(digits[:2]) > 14 or int(digits[2:] or 0) > 59:
            raise ClimodeError(f"time {str(text).strip()!r} has no valid UTC offset ({zone}); "
                               "use Z or -12:00..+14:00")
    return IsoTime(year, month, day, hour, minute, second, float(f"0.{fraction}") if fraction else 0.0, zone)


def iso_fields(text: str, *, what: str = "time") -> tuple[int, int, int, int, int, int]:
    """``'2000-08-01T06:00'`` -> (2000, 8, 1, 6, 0, 0): a date and time to the second, without a zone.

    Anything else, or a field out of range, is a ConfigError about the ``what``
    (e.g. "init time") the text was given as.
    """
    iso = parse_iso(text)
    if iso is None or iso.fraction or iso.zone:
        raise ConfigError(f"cannot read {what} {text!r}; write {what}s as ISO dates such as 2000-08-01 "
                          "or 2000-08-01T06:00")
    y, mo, d, hh, mi, ss = iso.fields
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mi < 60 and ss < 60):
        raise ConfigError(f"{what} {text!r} is not a valid date and time")
    return iso.fields


def calendar_of(like: Any) -> str:
    """The calendar of a time value of the data (cftime's own, else proleptic_gregorian)."""
    return getattr(like, "calendar", None) or "proleptic_gregorian"


def _in_calendar(fields: tuple[int, int, int, int, int, int], like: Any, text: str, what: str) -> Any:
    """``fields`` as a value of the data's time axis, of which ``like`` is one value."""
    try:
        if hasattr(like, "calendar"):
            return cftime.datetime(*fields, calendar=like.calendar, has_year_zero=getattr(like, "has_year_zero", None))
        value = np.datetime64(dt.datetime(*fields), "s")
        unit = np.datetime_data(like.dtype)[0] if isinstance(like, np.datetime64) else "s"
        if unit in _FINER_THAN_SECONDS and value.astype(f"datetime64[{unit}]").astype("datetime64[s]") != value:
            raise ValueError(f"outside the range of the data's datetime64[{unit}]")  # numpy would wrap it silently
        return value
    except (ValueError, OverflowError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{what} {str(text).strip()!r} does not exist in the data's calendar "
                          f"({calendar_of(like)}): {reason}") from None


def data_time(text: str, like: Any, *, what: str = "time") -> Any:
    """The ISO time ``text`` (see :func:`iso_fields`) as a value of the data's time axis.

    ``like`` is one value of that axis.  cftime values (noleap, 360_day, ...)
    give a cftime date of the same calendar; numpy datetime64 values give a
    datetime64 (to the second).  A date the calendar does not have (2001-02-29,
    2000-02-30 outside 360_day) or the data's datetime64 unit cannot hold is a
    ConfigError.
    """
    return _in_calendar(iso_fields(text, what=what), like, text, what)


def iso_hours_since(text: str, origin: Any) -> float | None:
    """Hours from ``origin`` (a time value of the data) to the ISO time ``text``, in origin's calendar.

    Any ISO form of :func:`parse_iso`: a fraction of a second and a UTC offset
    count.  None when ``text`` is not an ISO time; a ConfigError when the
    data's calendar does not have it.
    """
    iso = parse_iso(text)
    if iso is None:
        return None
    if origin is None:
        raise ConfigError(f"time {str(text).strip()!r} is an absolute time, and there are no data times to place it")
    when = _in_calendar(iso.fields, origin, text, "time")
    return hours_between(origin, when) + iso.fraction / 3600.0 - iso.utc_offset_hours


def format_time(value: Any) -> str:
    """ISO 8601 ``YYYY-MM-DDTHH:MM:SS`` of a datetime64 or cftime value (any calendar)."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[s]").item()
    text: str = value.strftime(ISO_FORMAT)
    return text


__all__ = [
    "ISO_FORMAT",
    "IsoTime",
    "add_hours",
    "calendar_of",
    "data_time",
    "format_time",
    "hours_between",
    "hours_since",
    "iso_fields",
    "iso_hours_since",
    "parse_iso",
]
