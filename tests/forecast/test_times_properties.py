"""Property-based tests of the time parser: any text parses and round-trips, or is one ClimodeError line."""

import datetime as dt

import cftime
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from climode.errors import ClimodeError
from climode.time import format_time
from climode.forecast.times import parse_times

FIRST = {"standard": np.datetime64("2000-08-01T00:00:00"),
         "noleap": cftime.DatetimeNoLeap(2000, 8, 1), "360_day": cftime.Datetime360Day(2000, 8, 1)}
FAST = settings(max_examples=150, deadline=None)

pieces = st.sampled_from(list("0123456789+-.:,/hdmTZ ") + ["..", "2000-08-0", "T12:00", "1e5", "99999999999"])
tokens = st.lists(pieces, max_size=16).map("".join) | st.text(max_size=20)


def as_hours(text, first):
    return parse_times(text, first_input=first, init_hours=57.0).hours


def as_text(hours):
    """``hours`` after the first input, written as a lead from the init (57 h): any sign, no exponent."""
    lead = hours - 57.0
    return f"{'+' if lead >= 0 else '-'}{abs(lead):.6f}h"


def same(a, b):
    return len(a) == len(b) and all(abs(x - y) <= 2e-6 for x, y in zip(a, b))


def valid_time(first, hours):
    if isinstance(first, np.datetime64):
        return first + np.timedelta64(int(round(hours * 3600)), "s")
    return first + dt.timedelta(hours=hours)


@FAST
@given(text=tokens, calendar=st.sampled_from(sorted(FIRST)))
def test_any_text_parses_or_is_one_line_climode_error(text, calendar):
    first = FIRST[calendar]
    try:
        hours = as_hours(text, first)
    except ClimodeError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    assert hours == sorted(set(hours)) and all(np.isfinite(hours))
    # round trip: every parsed time, written as hours after the first input, parses to itself
    assert same(as_hours(",".join(as_text(h) for h in hours), first), hours)


@FAST
@given(when=st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 12, 28)).map(
    lambda t: t.replace(microsecond=0)), style=st.sampled_from(["numpy", "pandas", "cftime", "iso", "z"]))
def test_printed_times_round_trip(when, style):
    first = FIRST["standard"]
    text = {"numpy": str(np.datetime64(when, "ns")), "pandas": str(pd.Timestamp(when)),
            "cftime": str(cftime.DatetimeGregorian(*when.timetuple()[:6])), "iso": when.isoformat(),
            "z": when.isoformat() + "Z"}[style]
    (hours,) = as_hours(text, first)
    assert same([hours], [(np.datetime64(when, "s") - first) / np.timedelta64(1, "h")])
    assert format_time(valid_time(first, hours)) == when.strftime("%Y-%m-%dT%H:%M:%S")
    assert same(as_hours(format_time(valid_time(first, hours)), first), [hours])


@FAST
@given(sign=st.sampled_from(["", "+", "-"]), value=st.decimals(0, 10**6, places=3, allow_nan=False),
       unit=st.sampled_from("hdmHDM"))
def test_durations_round_trip(sign, value, unit):
    text = f"{sign}{value}{unit}"
    (hours,) = as_hours(text, FIRST["noleap"])
    scale = {"h": 1.0, "d": 24.0, "m": 1 / 60}[unit.lower()]
    expected = float(value) * scale * (-1 if sign == "-" else 1) + (57.0 if sign else 0.0)
    assert abs(hours - round(expected, 6)) < 1e-6
    assert same(as_hours(as_text(hours), FIRST["noleap"]), [hours])
