import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from climode.cli.main import build_parser, main

INIT = "2000-08-03T09:00"


@pytest.fixture(scope="module")
def netcdf(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "obs.nc"
    sample.to_netcdf(path)
    return path


def write_spec(tmp_path, checkpoint, data, basins="[atlantic]", init=f'["{INIT}"]', extra=""):
    path = tmp_path / "spec.yaml"
    path.write_text(f"""
checkpoint: {checkpoint}
data: {data}
basins: {basins}
init: {{times: {init}}}
lead_times: +3h,+6h
output: {tmp_path / "out.zarr"}
device: cpu
cluster: {{kind: local, n_workers: 2, dashboard_address: null}}
{extra}""")
    return path


def test_batch_is_a_subcommand():
    assert "batch" in build_parser().format_help()


def test_dry_run_lists_tasks_and_the_slurm_job_script(checkpoint, netcdf, tmp_path, capsys):
    spec = write_spec(tmp_path, checkpoint, netcdf, basins='[atlantic, "lat=10:40,lon=280:330"]',
                      init=f'["2000-08-02T18:00", "{INIT}"]')
    code = main(["batch", str(spec), "--dry-run", "--cluster", "slurm", "--workers", "4",
                 "--set", "cluster.jobqueue={cores: 2, memory: 6GB, queue: short, walltime: '00:45:00'}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "4 task(s) = 2 init time(s) x 2 basin(s), 0 already complete" in out
    assert "2000-08-02T18:00:00  lat10-40_lon280-330" in out and "2000-08-03T09:00:00  atlantic" in out
    assert "calendar noleap" in out and "SLURMCluster: 2 job(s) of 2 worker process(es)" in out
    assert "#SBATCH -p short" in out and "#SBATCH -t 00:45:00" in out and "#SBATCH --mem=6G" in out
    assert out.rstrip().endswith("dry run: nothing submitted")
    assert not (tmp_path / "out.zarr").exists()


def test_failed_task_exit_code_and_resume_without_a_cluster(checkpoint, forecaster, netcdf, tmp_path, capsys):
    # WP lies outside the data's domain: its task fails on the worker, atlantic's is written
    spec = write_spec(tmp_path, checkpoint, netcdf, basins="[atlantic, WP]")
    code = main(["batch", str(spec), "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 task(s): 1 written, 0 already complete, 1 failed" in out
    assert f"failed: WP {INIT}:00: " in out and "region" in out
    written = xr.open_zarr(tmp_path / "out.zarr", group="atlantic", consolidated=False)
    assert written["done"].values.tolist() == [1]
    ref = forecaster.predict(str(netcdf), "+3h,+6h", basin="atlantic", init=INIT)
    np.testing.assert_allclose(written["PSL"].isel(init_time=0).values, ref["PSL"].values, rtol=1e-6)
    assert not (tmp_path / "out.zarr" / "WP").exists()
    # without WP everything is complete: no cluster is needed (this address does not answer)
    code = main(["batch", str(spec), "--set", "basins=[atlantic]", "--cluster", "tcp://127.0.0.1:9"])
    assert code == 0
    assert "1 task(s): 0 written, 1 already complete, 0 failed" in capsys.readouterr().out


def test_a_date_the_calendar_lacks_exits_2(checkpoint, netcdf, tmp_path, capsys):
    spec = write_spec(tmp_path, checkpoint, netcdf, init='["2000-02-29"]')
    assert main(["batch", str(spec), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist in the data's calendar (noleap)" in err[0]


@pytest.mark.parametrize("extra,args,message", [
    ("retries: 3", [], "unknown key retries"),
    ("", ["--set", "lead_times=12h"], "has no sign"),
    ("", ["--set", "cluster.jobqueue.cores=2", "--set", "cluster.kind=lsf"], "cluster.kind 'lsf' is unknown"),
    ("", ["--workers", "0"], "--workers must be at least 1"),
])
def test_bad_spec_is_one_line_and_exit_code_2(checkpoint, tmp_path, extra, args, message):
    spec = write_spec(tmp_path, checkpoint, tmp_path / "none.nc", extra=extra)
    proc = subprocess.run([sys.executable, "-m", "climode", "batch", str(spec), "--dry-run", *args],
                          check=False, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("climode: error:") and message in lines[0], proc.stderr


def test_output_overrides_the_spec_and_init_latest_forecasts_from_the_newest_data(
        checkpoint, forecaster, netcdf, tmp_path, capsys):
    spec = write_spec(tmp_path, checkpoint, netcdf, init="[]")
    spec.write_text(spec.read_text().replace("init: {times: []}", "init: latest"))
    other = tmp_path / "elsewhere" / "latest.zarr"
    assert main(["batch", str(spec), "--workers", "1", "--output", str(other), "--quiet"]) == 0
    assert not (tmp_path / "out.zarr").exists()
    written = xr.open_zarr(other, group="atlantic", consolidated=False)
    newest = xr.open_dataset(netcdf)["time"].values[-1]
    assert written["init_time"].values.tolist() == [newest] and written["done"].values.tolist() == [1]
    assert written["forecast_reference_time"].values[0] == newest
    ref = forecaster.predict(str(netcdf), "+3h,+6h", basin="atlantic", init=newest.isoformat())
    np.testing.assert_allclose(written["PSL"].isel(init_time=0).values, ref["PSL"].values, rtol=1e-6)


def test_dry_run_of_a_part_lists_only_its_tasks(checkpoint, netcdf, tmp_path, capsys):
    spec = write_spec(tmp_path, checkpoint, netcdf, basins='[atlantic, "lat=10:40,lon=280:330"]',
                      init=f'["2000-08-02T18:00", "{INIT}"]')
    assert main(["batch", str(spec), "--dry-run", "--parts", "2/2"]) == 0
    out = capsys.readouterr().out
    assert "4 task(s) = 2 init time(s) x 2 basin(s)" in out and "part 2/2: 2 of the 4 task(s):" in out
    assert "2000-08-03T09:00:00  atlantic" in out and "2000-08-02T18:00:00" not in out
    assert main(["batch", str(spec), "--dry-run", "--parts", "0/2"]) == 2
    assert "parts are numbered from 1" in capsys.readouterr().err
