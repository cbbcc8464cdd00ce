"""Each batch worker takes its own GPU."""

from climode.batch.run import worker_device


def test_workers_spread_over_the_gpus_by_index():
    assert [worker_device("cuda", i, 2) for i in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert worker_device("auto", "SLURMCluster-3-5", 4) == "cuda:1"  # dask-jobqueue: <job>-<process>
    assert worker_device("cuda", "tcp://host", 2) in ("cuda:0", "cuda:1")  # no index: a stable hash


def test_explicit_devices_and_machines_without_gpus_are_left_alone():
    assert worker_device("cuda:1", 0, 4) == "cuda:1"
    assert worker_device("cpu", 3, 4) == "cpu"
    assert worker_device("auto", 3, 0) == "auto"
