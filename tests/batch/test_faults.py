"""Faults, for real: killed workers, a killed or interrupted client, concurrent runs and parts on one store.

Every run here is a real ``python -m climode batch`` process; the workers are a
LocalCluster of this test process (``--cluster tcp://...``) or the run's own.
The store of each faulty run is compared with the store of one clean run.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
import zarr

from climode.batch import make_cluster, run_batch
from climode.batch.spec import ClusterSpec, load_spec

GROUPS = ("atlantic", "gulf")
N_TASKS = 16
SPEC = """
checkpoint: null
data: null
device: cpu
basins: {atlantic: atlantic, gulf: "lat=15:35,lon=260:300"}
init: {start: "2000-08-01T09:00", end: "2000-08-03T06:00", every: 6h}
lead_times: "+3h..+24h/3h"
output: out.zarr
cluster: {kind: local, n_workers: 2, dashboard_address: null}
"""
SUMMARY = re.compile(r"(\d+) task\(s\): (\d+) written, (\d+) already complete, (\d+) failed")


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "spec.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def client():
    cluster, client = make_cluster(ClusterSpec(kind="local", n_workers=2, dashboard_address=None))
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def reference(spec_file, client, tmp_path_factory):
    """The store of one clean run, read into memory: {group: dataset}."""
    out = tmp_path_factory.mktemp("reference") / "ref.zarr"
    spec = load_spec(spec_file, [("output", str(out))])
    summary = run_batch(spec, client, progress=False)
    assert (summary.total, summary.done) == (N_TASKS, N_TASKS)
    return {g: xr.open_zarr(out, group=g, consolidated=False).load() for g in GROUPS}


def start(spec_file, workdir, *args, env=None):
    """A `climode batch` process in its own session (so its workers can be signalled with it)."""
    return subprocess.Popen([sys.executable, "-m", "climode", "batch", str(spec_file), *args], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


def finish(proc, timeout=180):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"climode batch did not end in {timeout} s\n{err[-3000:]}") from None
    return proc.returncode, out, err


def summary_of(out: str) -> tuple[int, int, int, int]:
    match = SUMMARY.search(out)
    assert match, out
    return tuple(int(x) for x in match.groups())


def done_count(store: Path) -> int:
    total = 0
    for group in GROUPS:
        try:
            total += int(np.asarray(zarr.open_array(str(store), path=f"{group}/done", mode="r")[:]).sum())
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass  # the group is not there yet
    return total


def wait_for_done(store: Path, proc, at_least: int = 1, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while (n := done_count(store)) < at_least:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()[1][-3000:]}"
        assert time.time() < deadline, "no forecast was written in time"
        time.sleep(0.02)
    return n


def assert_consistent(store: Path, reference, complete: bool) -> int:
    """Every slot marked done holds exactly the clean run's forecast; the others are empty. Returns #done."""
    n_done = 0
    for group in GROUPS:
        if not (store / group).is_dir():
            assert not complete
            continue
        got = xr.open_zarr(store, group=group, consolidated=False).load()
        done = got["done"].values == 1
        n_done += int(done.sum())
        ref = reference[group]
        if complete:
            assert done.all()
            xr.testing.assert_equal(got, ref)
        for var in ("U850", "V850", "PSL"):
            np.testing.assert_array_equal(got[var].values[done], ref[var].values[done])
    return n_done


def test_a_worker_killed_mid_run_is_rescheduled_and_nothing_is_lost_or_written_twice(
        spec_file, client, reference, tmp_path):
    proc = start(spec_file, tmp_path, "--cluster", client.scheduler.address)
    try:
        wait_for_done(tmp_path / "out.zarr", proc)
        workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        at_kill = done_count(tmp_path / "out.zarr")
        workers[0].send_signal(signal.SIGKILL)
        assert at_kill < N_TASKS, "the batch finished before a worker could be killed"
    finally:
        code, out, err = finish(proc)
    assert code == 0, err[-3000:]
    assert summary_of(out) == (N_TASKS, N_TASKS, 0, 0)  # each task written exactly once
    assert_consistent(tmp_path / "out.zarr", reference, complete=True)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_a_killed_client_never_leaves_a_false_completion_and_the_rerun_completes(
        spec_file, client, reference, tmp_path):
    store = tmp_path / "out.zarr"
    proc = start(spec_file, tmp_path, "--cluster", client.scheduler.address)
    wait_for_done(store, proc)  # the client writes the results: killed right after a write, as others arrive
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    before = assert_consistent(store, reference, complete=False)
    assert before < N_TASKS
    code, out, err = finish(start(spec_file, tmp_path, "--cluster", client.scheduler.address))
    assert code == 0, err[-3000:]
    assert summary_of(out) == (N_TASKS, N_TASKS - before, before, 0)
    assert_consistent(store, reference, complete=True)


def test_ctrl_c_exits_130_leaves_the_store_consistent_and_the_rerun_completes(
        spec_file, client, reference, tmp_path):
    store = tmp_path / "out.zarr"
    proc = start(spec_file, tmp_path, "--workers", "1")
    wait_for_done(store, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    code, out, err = finish(proc, timeout=60)
    assert code == 130, err[-3000:]
    assert "climode: interrupted" in err
    before = assert_consistent(store, reference, complete=False)
    assert 1 <= before < N_TASKS
    code, out, err = finish(start(spec_file, tmp_path, "--cluster", client.scheduler.address))
    assert code == 0, err[-3000:]
    assert summary_of(out) == (N_TASKS, N_TASKS - before, before, 0)
    assert_consistent(store, reference, complete=True)


def test_a_second_run_on_the_same_tasks_is_refused_while_the_first_lives(spec_file, reference, tmp_path):
    import distributed

    # the first run waits for workers that never come (as behind a full SLURM queue), holding its tasks
    with distributed.LocalCluster(n_workers=0, dashboard_address=None) as empty:
        first = start(spec_file, tmp_path, "--cluster", empty.scheduler_address)
        try:
            deadline = time.time() + 120
            while "task(s) on the running Dask scheduler" not in (line := first.stdout.readline()):
                assert line and time.time() < deadline, first.communicate()[1][-3000:]
            second = subprocess.run([sys.executable, "-m", "climode", "batch", str(spec_file), "--workers", "1"],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert second.returncode == 2
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("climode: error: another climode batch is running"), \
                second.stderr
        finally:
            first.send_signal(signal.SIGINT)
            code, _, err = finish(first, timeout=60)
        assert code == 130, err[-3000:]
    assert assert_consistent(tmp_path / "out.zarr", reference, complete=False) == 0


def test_parts_running_at_once_into_one_store_lose_and_overwrite_nothing(spec_file, client, reference, tmp_path):
    procs = [start(spec_file, tmp_path, "--cluster", client.scheduler.address, "--parts", f"{i}/3")
             for i in (1, 2, 3)]
    results = [finish(p) for p in procs]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    written = [summary_of(out) for _, out, _ in results]
    # parts of 5, 5 and 6 tasks; each wrote its own and nothing else, and together they wrote every task once
    assert [w[0] for w in written] == [5, 5, 6] and [w[1] for w in written] == [5, 5, 6]
    assert sum(w[1] for w in written) == N_TASKS and all(w[3] == 0 for w in written)
    assert not list((tmp_path / "out.zarr").glob(".*.tmp"))
    assert_consistent(tmp_path / "out.zarr", reference, complete=True)
    # a rerun of every part finds its tasks complete
    code, out, _ = finish(start(spec_file, tmp_path, "--parts", "2/3", "--cluster", "tcp://127.0.0.1:9"))
    assert code == 0 and summary_of(out) == (5, 0, 5, 0)
