import cftime
import pytest

from climode.errors import ClimodeError
from climode.forecast.times import parse_times

FIRST = cftime.DatetimeNoLeap(2000, 8, 1, 0)


def hours(spec, init=57.0):
    return parse_times(spec, first_input=FIRST, init_hours=init)


def test_paper_offsets_and_periods_agree():
    assert hours("60h,63h").hours == [60.0, 63.0]
    assert hours("+3h,+6h").hours == [60.0, 63.0]
    assert hours("2000-08-03T12:00").hours == [60.0]
    assert hours("2.5d").hours == [60.0]


def test_ranges():
    assert hours("60h..72h/3h").hours == [60.0, 63.0, 66.0, 69.0, 72.0]
    assert hours("+3h..+15h/6h").hours == [60.0, 66.0, 72.0]


def test_unsorted_and_duplicates_are_fixed_with_a_note():
    req = hours("63h,60h,+3h")
    assert req.hours == [60.0, 63.0]
    assert any("duplicated" in n for n in req.notes) and any("sorted" in n for n in req.notes)


@pytest.mark.parametrize("bad", ["60x", "soon", "60h..50h/3h", "60h..72h", "60h..72h/-3h", "2000-02-30T00", ""])
def test_nonsense_is_a_clear_error(bad):
    with pytest.raises(ClimodeError):
        hours(bad)


def test_a_date_outside_the_calendar_names_the_data_calendar():
    with pytest.raises(ClimodeError, match=r"calendar \(noleap\)"):
        hours("2000-02-29T00:00")  # a leap day: the sample is noleap
