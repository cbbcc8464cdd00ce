"""Property-based tests of the basin parser: any text is a Region that round-trips, or one ConfigError line."""

from hypothesis import given, settings
from hypothesis import strategies as st

from climode.basins import resolve_region
from climode.errors import ClimodeError

FAST = settings(max_examples=200, deadline=None)
pieces = st.sampled_from(["lat", "lon", "=", ":", ",", "-", "+", ".", " ", "5", "60", "255", "359", "-180", "360",
                          "720", "1e3", "NA", "atlantic", "west pacific", "x"])
texts = st.lists(pieces, max_size=12).map("".join) | st.text(max_size=25)
numbers = st.floats(-400, 800, allow_nan=False, allow_infinity=False)


def check(text):
    try:
        region = resolve_region(text)
    except ClimodeError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    assert region is not None and resolve_region(region.spec).spec == region.spec
    return region


@FAST
@given(texts)
def test_any_text_is_a_region_or_one_line_error(text):
    check(text)


@FAST
@given(numbers | st.sampled_from([1e-5, -1e-7, 89.99999999]), numbers, numbers, numbers)
def test_boxes_round_trip_exactly(lat0, lat1, lon0, lon1):
    region = check(f"lat={lat0!r}:{lat1!r},lon={lon0!r}:{lon1!r}")
    if region is not None:
        again = resolve_region(region.spec)
        assert (again.lat_min, again.lat_max, again.lon_min, again.lon_max) == (
            region.lat_min, region.lat_max, region.lon_min, region.lon_max)
        assert 0 <= region.lon_min < 360 and 0 < region.lon_max <= 360
