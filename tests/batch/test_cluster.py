import os
import sys

import pytest

from climode.batch.cluster import describe, job_script, jobqueue_options, make_cluster
from climode.batch.spec import ClusterSpec, load_spec, spec_from_dict
from climode.errors import ConfigError

SLURM = """
output: out.zarr
init: {times: ["2000-08-02T18:00"]}
cluster:
  kind: slurm
  n_workers: 6
  jobqueue:
    cores: 3
    memory: 12GB
    queue: short
    account: climproj
    walltime: "02:30:00"
    job_extra_directives: ["--constraint=haswell"]
"""


def test_slurm_job_script_has_the_requested_resources(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SLURM)
    spec = load_spec(path)
    script = job_script(spec)
    lines = script.splitlines()
    assert "#SBATCH -p short" in lines and "#SBATCH -A climproj" in lines
    assert "#SBATCH --cpus-per-task=3" in lines and "#SBATCH -t 02:30:00" in lines
    assert "#SBATCH --mem=12G" in lines and "#SBATCH --constraint=haswell" in lines
    # one thread per worker process: processes defaults to cores
    assert "--nthreads 1" in script and "--nworkers 3" in script
    assert spec.cluster.n_jobs == 2 and "2 job(s) of 3 worker process(es)" in describe(spec)


def test_jobs_and_processes_can_be_given(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SLURM)
    spec = load_spec(path, ["cluster.jobs=5", "cluster.jobqueue.processes=1"])
    assert spec.cluster.n_jobs == 5 and jobqueue_options(spec)["processes"] == 1
    assert "--nthreads 3" in job_script(spec) and "--nworkers" not in job_script(spec)


@pytest.mark.parametrize("kind,directive", [("pbs", "#PBS -q short"), ("sge", "#$ -q short")])
def test_pbs_and_sge_job_scripts(kind, directive):
    spec = spec_from_dict({"output": "o.zarr", "init": ["2000-08-01"],
                           "cluster": {"kind": kind, "jobqueue": {"cores": 2, "memory": "4GB", "queue": "short"}}})
    assert directive in job_script(spec).splitlines()


@pytest.mark.parametrize("jobqueue,message", [
    ({"cores": 2, "memory": "4GB", "colour": "red"}, "colour"),
    ({"cores": 2}, "memory"),
])
def test_bad_jobqueue_options_are_one_line_config_errors(jobqueue, message):
    spec = spec_from_dict({"output": "o.zarr", "init": ["2000-08-01"],
                           "cluster": {"kind": "slurm", "jobqueue": jobqueue}})
    with pytest.raises(ConfigError) as info:
        job_script(spec)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("cluster.jobqueue for SLURMCluster")


@pytest.mark.parametrize("module,kind", [("dask_jobqueue", "slurm"), ("distributed", "local")])
def test_missing_hpc_extra_names_the_pip_command(monkeypatch, module, kind):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    spec = spec_from_dict({"output": "o.zarr", "init": ["2000-08-01"],
                           "cluster": {"kind": kind, "jobqueue": {"cores": 1, "memory": "1GB"}}})
    with pytest.raises(ConfigError, match=r'pip install "climode\[hpc\]"'):
        make_cluster(spec)


def test_unreachable_scheduler_is_a_config_error():
    import dask

    spec = spec_from_dict({"output": "o.zarr", "init": ["2000-08-01"],
                           "cluster": {"kind": "address", "address": "tcp://127.0.0.1:9"}})
    with (dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
          pytest.raises(ConfigError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9")):
        make_cluster(spec)


def test_local_cluster_leaves_the_callers_environment_alone(monkeypatch):
    """distributed would otherwise write OMP_NUM_THREADS=1 into this process for good."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    cluster, client = make_cluster(ClusterSpec(kind="local", n_workers=1, dashboard_address=None))
    try:
        workers = client.run(lambda: __import__("os").environ.get("OMP_NUM_THREADS"))
        assert set(workers.values()) == {"1"}  # the worker still runs one thread
    finally:
        client.close()
        cluster.close()
    assert {name: os.environ.get(name) for name in names} == dict.fromkeys(names)
