import pytest

from climode.batch.parts import Part, parse_part
from climode.errors import ConfigError


@pytest.mark.parametrize("total", [0, 1, 7, 16, 100])
@pytest.mark.parametrize("count", [1, 3, 4, 9])
def test_parts_are_disjoint_contiguous_and_cover_the_tasks(total, count):
    items = list(range(total))
    parts = [Part(i, count).select(items) for i in range(1, count + 1)]
    assert [x for part in parts for x in part] == items  # disjoint, in order, complete
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert parts == [Part(i, count).select(items) for i in range(1, count + 1)]  # deterministic


def test_parse_i_of_n_is_one_based():
    assert parse_part("2/8") == Part(2, 8) and parse_part(" 8 / 8 ") == Part(8, 8)
    assert Part(1, 4).select("abcdefgh") == ["a", "b"] and Part(4, 4).select("abcdefgh") == ["g", "h"]


@pytest.mark.parametrize("text,message", [
    ("0/4", "numbered from 1"), ("5/4", "does not exist"), ("1/0", "does not exist"), ("half", "cannot read"),
    ("1-4", "cannot read")])
def test_bad_parts_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_part(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ids,first,step", [(range(0, 4), 0, 1), (range(1, 5), 1, 1), (range(0, 31, 10), 0, 10)])
def test_slurm_array_environment_gives_parts_1_to_n(ids, first, step):
    """sbatch --array=0-3, --array=1-4 and --array=0-30:10 all give parts 1..4 of 4."""
    got = [parse_part("slurm", {"SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_MIN": str(first),
                                "SLURM_ARRAY_TASK_STEP": str(step), "SLURM_ARRAY_TASK_COUNT": "4"}) for i in ids]
    assert got == [Part(i, 4) for i in range(1, 5)]
    # without an array (a plain job) it says what is missing
    with pytest.raises(ConfigError, match="needs SLURM_ARRAY_TASK_ID"):
        parse_part("slurm", {})
