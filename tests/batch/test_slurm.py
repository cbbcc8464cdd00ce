"""climode batch on a real SLURM cluster (slurmctld + slurmd on this host, see conftest.py) through dask-jobqueue."""

import subprocess
import sys

import numpy as np
import xarray as xr

from climode.cli.main import main

SPEC = """
checkpoint: null
data: null
device: cpu
basins: {{atlantic: atlantic, gulf: "lat=15:35,lon=260:300"}}
init: {{times: ["2000-08-02T18:00", "2000-08-03T09:00"]}}
lead_times: "+3h,+6h"
output: {output}
cluster:
  kind: slurm
  n_workers: 2
  jobqueue:
    cores: 1
    memory: 2GB
    queue: {partition}
    walltime: "00:10:00"
    log_directory: {logs}
"""


def write_spec(tmp_path, slurm_cluster):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(output=tmp_path / "slurm.zarr", partition=slurm_cluster.partition,
                                logs=tmp_path / "logs"))
    return path


def test_dry_run_job_script_is_accepted_by_sbatch(slurm_cluster, tmp_path, capsys):
    spec = write_spec(tmp_path, slurm_cluster)
    assert main(["batch", str(spec), "--dry-run", "--cluster", "slurm"]) == 0
    out = capsys.readouterr().out
    script = out.split("job script:\n", 1)[1].rsplit("dry run: nothing submitted", 1)[0]
    assert script.startswith("#!/usr/bin/env bash") and f"#SBATCH -p {slurm_cluster.partition}" in script
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script  # the workers run this venv's Python
    path = tmp_path / "job.sh"
    path.write_text(script)
    test = slurm_cluster.run("sbatch", "--test-only", str(path), check=False)
    assert test.returncode == 0 and "to start at" in test.stderr, test.stderr + slurm_cluster.logs()
    bad = slurm_cluster.run("sbatch", "--test-only", "-p", "nosuchpartition", str(path), check=False)
    assert bad.returncode != 0  # sbatch --test-only does check what it is given


def test_batch_on_slurm_equals_the_local_cluster_batch(slurm_cluster, tmp_path):
    spec = write_spec(tmp_path, slurm_cluster)
    proc = subprocess.run([sys.executable, "-m", "climode", "batch", str(spec), "--quiet"], cwd=tmp_path,
                          env=slurm_cluster.env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr + slurm_cluster.logs()
    # the jobs went through sbatch, and their dask workers joined the batch's scheduler
    ctld = (slurm_cluster.root / "log" / "slurmctld.log").read_text()
    assert ctld.count("sched: Allocate JobId=") >= 1
    worker_logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.err"))
    assert "Registered to:" in worker_logs, worker_logs[-3000:]
    assert not slurm_cluster.run("squeue", "-h").stdout.strip()  # the jobs were cancelled at the end

    local = tmp_path / "local.zarr"
    assert main(["batch", str(spec), "--cluster", "local", "--workers", "2", "--output", str(local), "--quiet",
                 "--set", "cluster.dashboard_address=null"]) == 0
    for group in ("atlantic", "gulf"):
        on_slurm = xr.open_zarr(tmp_path / "slurm.zarr", group=group, consolidated=False).load()
        on_local = xr.open_zarr(local, group=group, consolidated=False).load()
        assert on_slurm["done"].values.tolist() == [1, 1]
        xr.testing.assert_equal(on_slurm, on_local)
        assert np.isfinite(on_slurm["PSL"].values).all()
