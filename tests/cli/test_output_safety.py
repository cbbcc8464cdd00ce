"""No command destroys a user's data or fails after the work is done (issue 10)."""

import os
import subprocess

import pytest
import xarray as xr

from climode.cli.main import main


@pytest.fixture(scope="module")
def obs(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "obs.nc"
    sample.to_netcdf(path)
    return path


@pytest.fixture
def run(checkpoint, capsys, monkeypatch):
    """``climode forecast`` in this process (the subprocess path is tested in test_forecast_cli.py)."""

    def forecast(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        code = main(["forecast", "--checkpoint", str(checkpoint), "--device", "cpu", "--times", "+3h", *args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return forecast


def one_line_error(proc, *words):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("climode: error:"), proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def never_forecast(monkeypatch):
    from climode.forecast import Forecaster

    def never(*args, **kwargs):
        raise AssertionError("the forecast ran")

    for name in ("predict", "predict_with_info"):
        monkeypatch.setattr(Forecaster, name, never)


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "glob", "hardlink"])
def test_an_output_that_is_an_input_is_refused_even_with_overwrite(checkpoint, obs, tmp_path, how, monkeypatch,
                                                                    capsys):
    never_forecast(monkeypatch)
    data = tmp_path / "mydata.nc"
    data.write_bytes(obs.read_bytes())
    before = data.read_bytes()
    monkeypatch.chdir(tmp_path)
    args = {"same": (str(data), str(data)), "relative": (str(data), "./sub/../mydata.nc"),
            "glob": (str(tmp_path / "my*.nc"), "mydata.nc")}.get(how)
    if how == "symlink":
        (tmp_path / "link.nc").symlink_to(data)
        args = ("link.nc", str(data))
    if how == "hardlink":
        os.link(data, tmp_path / "hard.nc")
        args = (str(data), "hard.nc")
    (tmp_path / "sub").mkdir()
    code = main(["forecast", "--checkpoint", str(checkpoint), "--data", args[0], "--output", args[1], "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "is the input" in err and "destroy" in err, err
    assert data.read_bytes() == before


def test_an_existing_output_needs_overwrite_and_the_default_name_is_no_exception(run, obs, tmp_path):
    default = tmp_path / "climode_forecast.nc"
    default.write_bytes(b"the user's own file")
    one_line_error(run("--data", str(obs), cwd=tmp_path), "climode_forecast.nc already exists",
                   "--overwrite")
    assert default.read_bytes() == b"the user's own file"
    store = tmp_path / "f.zarr"
    store.mkdir()
    (store / "keep.txt").write_text("mine")
    one_line_error(run("--data", str(obs), "--output", str(store), cwd=tmp_path), "already exists")
    assert (store / "keep.txt").read_text() == "mine"
    proc = run("--data", str(obs), "--output", str(store), "--overwrite", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert xr.open_zarr(store).sizes["time"] == 1 and not (store / "keep.txt").exists()


def test_plot_and_animation_outputs_follow_the_same_rule(checkpoint, obs, tmp_path, monkeypatch, capsys):
    never_forecast(monkeypatch)
    base = ["forecast", "--checkpoint", str(checkpoint), "--data", str(obs), "--output", str(tmp_path / "f.nc")]
    (tmp_path / "map_001.png").write_bytes(b"an older map")
    assert main([*base, "--plot", str(tmp_path / "map.png")]) == 2
    assert "map_001.png already exists" in capsys.readouterr().err
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    assert main([*base, "--animate", str(tmp_path / "a.gif")]) == 2
    assert "--animate" in capsys.readouterr().err
    assert main([*base, "--plot", str(tmp_path / "map.txt")]) == 2
    assert "name it .png" in capsys.readouterr().err
    assert not (tmp_path / "f.nc").exists() and not list(tmp_path.glob("map_000*"))


def test_unwritable_outputs_fail_before_the_forecast_in_one_line(run, obs, tmp_path):
    # root ignores permission bits, so: a parent that is a regular file, a directory named
    # like the output, and /sys (a kernel file system that refuses new files even to root)
    (tmp_path / "file").write_text("x")
    one_line_error(run("--data", str(obs), "--output", str(tmp_path / "file" / "f.nc")),
                   "is not a directory")
    (tmp_path / "out.nc").mkdir()
    one_line_error(run("--data", str(obs), "--output", str(tmp_path / "out.nc"), "--overwrite"),
                   "is an existing directory")
    if os.path.isdir("/sys/kernel"):
        one_line_error(run("--data", str(obs), "--output", "/sys/kernel/f.nc"), "cannot write")


def test_an_os_error_during_the_run_is_one_line_exit_2(checkpoint, obs, tmp_path, monkeypatch, capsys):
    import climode.io

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "f.nc"))

    monkeypatch.setattr(climode.io, "atomic_path", full)
    code = main(["forecast", "--checkpoint", str(checkpoint), "--data", str(obs), "--times", "+3h",
                 "--output", str(tmp_path / "f.nc"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"climode: error: {tmp_path / 'f.nc'}: No space left on device"


def test_python_forecast_refuses_like_the_command(checkpoint, obs, tmp_path):
    import climode
    from climode.errors import ClimodeError

    out = tmp_path / "fc.nc"
    out.write_bytes(b"old")
    with pytest.raises(ClimodeError, match="overwrite=True"):
        climode.run_forecast(str(obs), "+3h", checkpoint=checkpoint, device="cpu", output=out)
    with pytest.raises(ClimodeError, match="is the input"):
        climode.run_forecast(xr.open_dataset(obs), "+3h", checkpoint=checkpoint, device="cpu", output=obs,
                             overwrite=True)
    climode.run_forecast(str(obs), "+3h", checkpoint=checkpoint, device="cpu", output=out, overwrite=True)
    assert xr.open_dataset(out).sizes["time"] == 1


def test_evaluate_and_synth_outputs_are_checked_first(checkpoint, tmp_path, capsys):
    report = tmp_path / "skill.md"
    report.write_text("last week's results")
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--report", str(report), "--windows", "1"]) == 2
    assert "--report" in capsys.readouterr().err and report.read_text() == "last week's results"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--json", str(checkpoint.with_suffix(".json")),
                 "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["data", "synth", "hurricanes", "--output", str(report.with_suffix(".nc")), "--days", "1"]) == 0
    capsys.readouterr()
    assert main(["data", "synth", "hurricanes", "--output", str(report.with_suffix(".nc")), "--days", "1"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("make,words", [
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.write_bytes(b""), "an empty file"),
    (lambda p: p.write_text("time,lat,lon,PSL\n0,10,20,101000\n"), "a text file"),
])
def test_unreadable_inputs_say_what_the_file_is(run, tmp_path, make, words):
    bad = tmp_path / "bad.nc"
    make(bad)
    line = one_line_error(run("--data", str(bad), "--output", str(tmp_path / "f.nc")), words,
                          "climode reads NetCDF")
    assert "see:" not in line and line.endswith("zarr stores (.zarr)")


def test_a_failed_overwrite_leaves_the_previous_file_intact(run, obs, tmp_path, monkeypatch):
    out = tmp_path / "f.nc"
    out.write_bytes(b"yesterday's forecast")

    def crash(self, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash)
    proc = run("--data", str(obs), "--output", str(out), "--overwrite")
    assert proc.returncode == 130 and proc.stderr.strip() == "climode: interrupted"
    assert out.read_bytes() == b"yesterday's forecast"
    assert [p.name for p in tmp_path.iterdir()] == ["f.nc"]  # no temporary file left behind


def test_data_takes_several_paths_as_an_unquoted_glob_expands(checkpoint, sample, tmp_path, capsys):
    # what the shell passes for --data obs/*.nc: one argument per file (argv is the same in-process)
    import json

    for k, part in enumerate((sample.isel(time=slice(0, 3)), sample.isel(time=slice(3, 5)))):
        part.to_netcdf(tmp_path / f"obs{k}.nc")
    assert main(["forecast", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "obs0.nc"),
                 str(tmp_path / "obs1.nc"), "--times", "+3h", "--output", str(tmp_path / "f.nc"), "--json",
                 "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["inputs"]) == 5 and doc["forecast_reference_time"] == "2000-08-03T09:00:00"
