import datetime as dt

import cftime
import numpy as np
import pytest

from climode.batch.spec import BatchSpec, ClusterSpec, init_times, load_spec, spec_from_dict
from climode.errors import ConfigError
from climode.time import data_time

GOOD = """
checkpoint: runs/model
data: obs/*.nc
basins: [atlantic, "lat=10:40,lon=280:330"]
init:
  times: [2000-08-02T18:00:00, "2000-08-01"]
  start: 2000-08-03
  end: "2000-08-04T00:00"
  every: 12h
lead_times: [+3h, "+6h..+12h/3h"]
output: out/batch.zarr
cluster:
  kind: slurm
  n_workers: 8
  jobqueue: {cores: 4, memory: 16GB}
"""


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_becomes_a_typed_spec(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert isinstance(spec, BatchSpec) and isinstance(spec.cluster, ClusterSpec)
    # unquoted YAML dates come back as ISO strings
    assert spec.init.times == ["2000-08-02T18:00:00", "2000-08-01"] and spec.init.start == "2000-08-03"
    assert spec.lead_times == "+3h,+6h..+12h/3h" and spec.lead_hours == [3.0, 6.0, 9.0, 12.0]
    assert spec.basins == {"atlantic": "atlantic", "lat10-40_lon280-330": "lat=10:40,lon=280:330"}
    assert spec.cluster.kind == "slurm" and spec.cluster.processes_per_job == 4 and spec.cluster.n_jobs == 2


def test_overrides_and_basin_mapping(tmp_path):
    spec = load_spec(write(tmp_path, GOOD), ["cluster.kind=local", "cluster.n_workers=2", "init.every=1d",
                                             ("cluster.address", "tcp://127.0.0.1:8786"),
                                             "basins={gulf: 'lat=15:35,lon=260:300'}"])
    assert spec.cluster.kind == "local" and spec.cluster.n_workers == 2 and spec.init.every == "1d"
    assert spec.cluster.address == "tcp://127.0.0.1:8786"
    assert spec.basins == {"gulf": "lat=15:35,lon=260:300"}


@pytest.mark.parametrize("text,message", [
    ("colour: red\n", "unknown key colour"),
    ("cluster: {kind: local, nodes: 3}\n", "unknown key cluster.nodes"),
    ("init: {times: ['2000-08-01'], stride: 6h}\n", "unknown key init.stride"),
    ("cluster: {kind: kubernetes}\n", "cluster.kind 'kubernetes' is unknown"),
    ("cluster: {kind: address}\n", "needs cluster.address"),
    ("cluster: {n_workers: 0}\n", "n_workers"),
    ("lead_times: 60h\n", "has no sign"),
    ("lead_times: '+3h,2000-08-04'\n", "cannot read time"),
    ("lead_times: '+3h..+9h'\n", "needs a step"),
    ("init: {times: [yesterday]}\n", "cannot read init time 'yesterday'"),
    ("init: {times: ['2000-13-01']}\n", "not a valid date"),
    ("init: {start: '2000-08-01'}\n", "go together"),
    ("init: {start: '2000-08-02', end: '2000-08-01', every: 6h}\n", "before init.start"),
    ("init: {start: '2000-08-01', end: '2000-08-02', every: -6h}\n", "positive duration"),
    ("init: {}\n", "init needs times"),
    ("basins: [mars]\n", "basins:"),
    ("basins: [atlantic, atlantic]\n", "appears twice"),
    ("output: out.nc\n", "ending in .zarr"),
    ("device: tpu\n", "device 'tpu'"),
])
def test_bad_specs_are_one_line_config_errors(tmp_path, text, message):
    base = "output: out.zarr\ninit: {times: ['2000-08-01']}\n"
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, base + text))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("spec.yaml: ")


def test_missing_file_bad_yaml_and_missing_keys(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(write(tmp_path, "output: [unclosed\n"))
    with pytest.raises(ConfigError, match="needs 'init'"):
        spec_from_dict({"output": "x.zarr"})


def noleap(*args):
    return cftime.DatetimeNoLeap(*args, has_year_zero=True)


def test_init_times_follow_the_data_calendar():
    spec = spec_from_dict({"output": "o.zarr", "init": {"times": ["2000-03-01T06:00"], "start": "2000-02-28",
                                                       "end": "2000-03-01T00:00", "every": "12h"}})
    # noleap (as CAM5): no 29 February, and cftime values of the same calendar
    got = init_times(spec.init, noleap(2000, 1, 1))
    assert got == [noleap(2000, 2, 28), noleap(2000, 2, 28, 12), noleap(2000, 3, 1), noleap(2000, 3, 1, 6)]
    assert all(t.calendar == "noleap" for t in got)
    # the standard calendar has 29 February
    got = init_times(spec.init, np.datetime64("2000-01-01T00:00"))
    assert len(got) == 6 and got[2] == np.datetime64("2000-02-29T00:00")
    # 360_day: every month has 30 days
    day360 = cftime.datetime(2000, 1, 1, calendar="360_day")
    assert data_time("2000-02-30", day360) == cftime.datetime(2000, 2, 30, calendar="360_day")


def test_dates_the_calendar_lacks_are_config_errors():
    with pytest.raises(ConfigError, match=r"does not exist in the data's calendar \(noleap\)"):
        data_time("2000-02-29", noleap(2000, 1, 1))
    with pytest.raises(ConfigError, match="360_day"):
        data_time("2000-01-31", cftime.datetime(2000, 1, 1, calendar="360_day"))
    with pytest.raises(ConfigError, match="proleptic_gregorian"):
        data_time("2001-02-29", np.datetime64("2000-01-01"))


def test_too_many_init_times_is_refused():
    spec = spec_from_dict({"output": "o.zarr", "init": {"start": "1000-01-01", "end": "3000-01-01", "every": "1h"}})
    with pytest.raises(ConfigError, match="coarser init.every"):
        init_times(spec.init, np.datetime64("2000-01-01"))


def test_timezone_aware_yaml_dates_become_utc(tmp_path):
    spec = load_spec(write(tmp_path, "output: o.zarr\ninit: {times: [2000-08-01T06:00:00+02:00]}\n"))
    assert spec.init.times == ["2000-08-01T04:00:00"]
    assert dt.datetime.fromisoformat(spec.init.times[0]).hour == 4


def test_init_latest_takes_the_newest_time_steps_of_the_data(tmp_path):
    spec = load_spec(write(tmp_path, "output: o.zarr\ninit: latest\n"))
    assert spec.init.latest == 1 and spec.init.times == []
    steps = [noleap(2000, 8, 1, h) for h in (0, 9, 21)]
    assert init_times(spec.init, steps[0], steps) == [noleap(2000, 8, 1, 21)]
    spec = spec_from_dict({"output": "o.zarr", "init": {"latest": 2, "times": ["2000-08-01T03:00"]}})
    assert init_times(spec.init, steps[0], steps[::-1]) == [noleap(2000, 8, 1, 3), noleap(2000, 8, 1, 9),
                                                           noleap(2000, 8, 1, 21)]
    with pytest.raises(ConfigError, match="latest must be a whole number >= 1"):
        spec_from_dict({"output": "o.zarr", "init": {"latest": 0}})
