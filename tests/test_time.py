"""climode.time: hours between time values, ISO 8601 in and out, in the data's calendar."""

import datetime as dt

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climode.errors import ClimodeError, ConfigError, DataError
from climode.time import (
    add_hours,
    calendar_of,
    data_time,
    format_time,
    hours_between,
    hours_since,
    iso_fields,
    iso_hours_since,
    parse_iso,
)


def test_hours_since_counts_the_calendars_days():
    # 28 Feb -> 1 Mar: one day in noleap, two in the standard calendar, three in 360_day
    noleap = [cftime.DatetimeNoLeap(2000, 2, 28), cftime.DatetimeNoLeap(2000, 3, 1)]
    assert hours_since(noleap).tolist() == [0.0, 24.0]
    standard = np.array(["2000-02-28", "2000-03-01"], dtype="datetime64[ns]")
    assert hours_since(standard).tolist() == [0.0, 48.0]
    day360 = [cftime.Datetime360Day(2000, 2, 28), cftime.Datetime360Day(2000, 3, 1)]
    assert hours_since(day360).tolist() == [0.0, 72.0]


def test_hours_since_takes_an_origin_xarray_coordinates_and_numbers():
    times = xr.DataArray(np.array(["2000-01-01T06", "2000-01-01T12"], dtype="datetime64[ns]"), dims="time")
    assert hours_since(times, np.datetime64("2000-01-01T00")).tolist() == [6.0, 12.0]
    assert hours_since(np.array([3, 5, 9])).tolist() == [0.0, 2.0, 6.0]  # numbers are hours (or frames)
    minutes = [cftime.DatetimeNoLeap(2000, 1, 1), cftime.DatetimeNoLeap(2000, 1, 1, 0, 20)]
    assert hours_since(minutes)[1] == pytest.approx(1 / 3)


def test_hours_since_refuses_what_is_not_a_time_axis():
    with pytest.raises(DataError, match="non-empty 1-D"):
        hours_since(np.array([]))
    with pytest.raises(DataError, match="calendars mixed"):
        hours_since([cftime.DatetimeNoLeap(2000, 1, 1), cftime.Datetime360Day(2000, 1, 1)])
    with pytest.raises(DataError, match="cannot read times of type"):
        hours_since(np.array(["a", "b"]))


@pytest.mark.parametrize("start, end", [
    (np.datetime64("2000-08-01T00"), np.datetime64("2000-08-02T06")),
    (cftime.DatetimeNoLeap(2000, 8, 1), cftime.DatetimeNoLeap(2000, 8, 2, 6)),
    (dt.datetime(2000, 8, 1), dt.datetime(2000, 8, 2, 6)),
    (pd.Timestamp("2000-08-01"), pd.Timestamp("2000-08-02T06")),
    (12.0, 42.0),
])
def test_hours_between_every_kind_of_time_value(start, end):
    assert hours_between(start, end) == 30.0 and hours_between(end, start) == -30.0


@pytest.mark.parametrize("text", ["2000-08-03T09:00:00.000000000", "2000-08-03 09:00:00", "2000-08-03T09",
                                  "2000-08-03t09:00", "2000-08-03T09:00:00Z", "2000-08-03T11:00:00+02:00",
                                  "2000-08-03T07:30-01:30"])
def test_every_printed_iso_form_is_the_same_instant(text):
    first = np.datetime64("2000-08-01T00:00:00", "ns")
    assert iso_hours_since(text, first) == pytest.approx(57.0)


def test_iso_fraction_zone_and_what_is_not_iso():
    iso = parse_iso("2000-08-03T09:00:00.5+05:30")
    assert iso.fields == (2000, 8, 3, 9, 0, 0) and iso.fraction == 0.5 and iso.utc_offset_hours == 5.5
    assert parse_iso("+3h") is None and parse_iso("60h") is None and parse_iso("2000-8-3") is None
    with pytest.raises(ClimodeError, match="UTC offset"):
        parse_iso("2000-08-03T09:00+15:00")
    assert iso_hours_since("+3h", np.datetime64("2000-01-01")) is None


def test_iso_fields_is_strict_and_names_what_was_read():
    assert iso_fields("2000-08-01") == (2000, 8, 1, 0, 0, 0)
    assert iso_fields(" 2000-08-01T06:30 ") == (2000, 8, 1, 6, 30, 0)
    with pytest.raises(ConfigError, match="cannot read init time 'soon'; write init times as ISO dates"):
        iso_fields("soon", what="init time")
    with pytest.raises(ConfigError, match="cannot read time"):
        iso_fields("2000-08-01T06:00Z")  # a zone is not a date and time of the data
    with pytest.raises(ConfigError, match="not a valid date and time"):
        iso_fields("2000-13-01")


def test_data_time_is_in_the_data_calendar():
    noleap = cftime.DatetimeNoLeap(2000, 1, 1)
    got = data_time("2000-03-01T06:00", noleap)
    assert got == cftime.DatetimeNoLeap(2000, 3, 1, 6) and got.calendar == "noleap"
    assert data_time("2000-02-30", cftime.Datetime360Day(2000, 1, 1)) == cftime.Datetime360Day(2000, 2, 30)
    assert data_time("2000-02-29", np.datetime64("2000-01-01", "ns")) == np.datetime64("2000-02-29")
    with pytest.raises(ConfigError, match=r"init time '2000-02-29' does not exist in the data's calendar \(noleap\)"):
        data_time("2000-02-29", noleap, what="init time")
    with pytest.raises(ConfigError, match=r"\(proleptic_gregorian\)"):
        data_time("2001-02-29", np.datetime64("2000-01-01"))


def test_a_time_nanoseconds_cannot_hold_is_an_error_not_a_wrapped_date():
    first = np.datetime64("2000-01-01", "ns")
    with pytest.raises(ConfigError, match=r"datetime64\[ns\]"):
        data_time("2300-01-01", first)
    with pytest.raises(ClimodeError, match=r"datetime64\[ns\]"):
        iso_hours_since("9999-01-01", first)
    assert iso_hours_since("2300-01-01", np.datetime64("2000-01-01", "s")) > 0  # seconds reach that far


def test_format_and_add_hours_round_trip_in_every_calendar():
    for first in (np.datetime64("2000-02-28T00:00:00", "ns"), cftime.DatetimeNoLeap(2000, 2, 28),
                  cftime.Datetime360Day(2000, 2, 28)):
        later = add_hours(first, 36.5)
        assert hours_between(first, later) == 36.5
        assert iso_hours_since(format_time(later), first) == 36.5
    assert format_time(add_hours(cftime.DatetimeNoLeap(2000, 2, 28, 12), 12)) == "2000-03-01T00:00:00"
    assert format_time(add_hours(np.datetime64("2000-02-28T12", "ns"), 12)) == "2000-02-29T00:00:00"
    assert calendar_of(cftime.Datetime360Day(2000, 1, 1)) == "360_day"
    assert calendar_of(np.datetime64("2000-01-01")) == "proleptic_gregorian"
