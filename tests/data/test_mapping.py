"""--var/--units parsing: any text is a mapping that round-trips, or one ConfigError line naming the flag."""

from hypothesis import given, settings
from hypothesis import strategies as st

from climode.data.mapping import check_units, format_assignments, parse_assignments
from climode.errors import ClimodeError, ConfigError

FAST = settings(max_examples=200, deadline=None)
pieces = st.sampled_from(["U850", "V850", "PSL", "u", "slp", "=", ",", " ", "hPa", "m/s", "knots", "Pa", "x=y",
                          "==", "é", "-", "."])
texts = st.lists(pieces, max_size=10).map("".join) | st.text(max_size=25)


@FAST
@given(texts, st.sampled_from(["--var", "--units"]))
def test_any_text_parses_and_round_trips_or_names_the_flag(text, flag):
    try:
        mapping = parse_assignments(text, flag)
    except ClimodeError as exc:
        assert isinstance(exc, ConfigError) and str(exc).startswith(f"{flag}: ") and "\n" not in str(exc)
        return
    assert mapping and parse_assignments(format_assignments(mapping), flag) == mapping
    if flag == "--units":
        try:
            units = check_units(mapping, flag)
        except ConfigError as exc:
            assert str(exc).startswith("--units: ") and "\n" not in str(exc)
        else:
            assert set(units) <= {"U850", "V850", "PSL"}


def test_examples():
    assert parse_assignments("U850=u, V850=v,PSL=slp", "--var") == {"U850": "u", "V850": "v", "PSL": "slp"}
    assert check_units(parse_assignments("PSL=hPa,U850=knots", "--units"), "--units") == {"PSL": "hPa",
                                                                                          "U850": "knots"}
