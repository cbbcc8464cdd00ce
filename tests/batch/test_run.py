"""Batches on a real LocalCluster (2 worker processes, 1 thread each) writing a real zarr store."""

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from climode.batch import BatchStore, make_cluster, plan_batch, run_batch
from climode.batch.run import pending_tasks
from climode.batch.spec import ClusterSpec, load_spec, spec_from_dict
from climode.errors import ConfigError

BOX = "lat=10:40,lon=280:330"
INITS = ["2000-08-02T18:00", "2000-08-03T09:00"]  # 42 h and 57 h: windows of 4 and 5 inputs
LEADS = "+3h,+6h"


@pytest.fixture(scope="module")
def client():
    cluster, client = make_cluster(ClusterSpec(kind="local", n_workers=2, dashboard_address=None))
    try:
        assert client.nthreads() and sorted(client.nthreads().values()) == [1, 1]
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def netcdf(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "obs.nc"
    sample.to_netcdf(path)
    return path


def make_spec(checkpoint, data, output, inits=INITS, leads=LEADS, **extra):
    return spec_from_dict({"checkpoint": str(checkpoint), "data": str(data), "output": str(output),
                           "basins": {"atlantic": "atlantic", "box": BOX}, "init": {"times": list(inits)},
                           "lead_times": leads, "device": "cpu", **extra})


def snapshot(store: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(store)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(store.rglob("*")) if p.is_file()}


def open_group(store, group):
    return xr.open_zarr(store, group=group, consolidated=False)


def test_batch_output_equals_direct_forecasts(client, checkpoint, forecaster, netcdf, tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"""
checkpoint: {checkpoint}
data: {netcdf}
basins: {{atlantic: atlantic, box: "{BOX}"}}
init: {{times: [{INITS[1]}], start: "{INITS[0]}", end: "{INITS[0]}", every: 6h}}
lead_times: "+3h..+6h/3h"
output: {tmp_path / "out.zarr"}
device: cpu
""")
    spec = load_spec(spec_file)
    summary = run_batch(spec, client, progress=False)
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (4, 4, 0, [])
    for group, basin in (("atlantic", "atlantic"), ("box", BOX)):
        out = open_group(tmp_path / "out.zarr", group)
        assert out["PSL"].dims == ("init_time", "lead_time", "lat", "lon")
        assert out["done"].values.tolist() == [1, 1]
        assert [t.strftime("%Y-%m-%dT%H:%M") for t in out["init_time"].values] == INITS
        assert out["init_time"].values[0].calendar == "noleap"
        assert (out["lead_time"].values / np.timedelta64(1, "h")).tolist() == [3.0, 6.0]
        assert out["PSL"].attrs["standard_name"] == "air_pressure_at_mean_sea_level"
        assert out["U850"].attrs["units"] == "m/s" and out.attrs["Conventions"] == "CF-1.8"
        assert out.attrs["climode_basin"] == basin and out.attrs["climode_checkpoint_sha256"]
        # the two inits' forecasts differ, so a task written into the wrong slot would be caught
        assert np.abs(out["PSL"].isel(init_time=0) - out["PSL"].isel(init_time=1)).max() > 1.0
        for i, init in enumerate(INITS):
            ref = forecaster.predict(str(netcdf), LEADS, basin=basin, init=init)
            got = out.isel(init_time=i)
            for var in ("U850", "V850", "PSL"):
                np.testing.assert_allclose(got[var].values, ref[var].values, rtol=1e-6, atol=1e-5)
            np.testing.assert_array_equal(got["lat"].values, ref["lat"].values)
            assert list(got["time"].values) == list(ref["time"].values)
            assert got["forecast_reference_time"].values == ref["forecast_reference_time"].values
    # each worker loaded the model once, and torch ran on one thread
    assert set(client.run(lambda: __import__("torch").get_num_threads()).values()) == {1}
    cached = client.run(lambda: len(__import__("climode.batch.run", fromlist=["_MODELS"])._MODELS))
    assert set(cached.values()) <= {0, 1} and sum(cached.values()) >= 1


def test_rerun_skips_everything_and_changes_nothing(client, checkpoint, netcdf, tmp_path):
    spec = make_spec(checkpoint, netcdf, tmp_path / "out.zarr")
    assert run_batch(spec, client, progress=False).done == 4
    before = snapshot(tmp_path / "out.zarr")
    summary = run_batch(spec, client, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (0, 4, [])
    assert snapshot(tmp_path / "out.zarr") == before


def test_interrupted_run_is_completed_by_the_next(client, checkpoint, forecaster, netcdf, tmp_path):
    store = tmp_path / "out.zarr"
    spec = make_spec(checkpoint, netcdf, store)
    run_batch(spec, client, progress=False)
    good = open_group(store, "atlantic").load()
    # a task of 'atlantic' half written: data overwritten, completion marker not set
    zarr.open_array(str(store), path="atlantic/PSL", mode="r+")[1, 0] = 0.0
    zarr.open_array(str(store), path="atlantic/done", mode="r+")[1] = 0
    # group 'box' interrupted while it was being created: only a hidden temporary left
    import shutil

    shutil.rmtree(store / "box")
    leftover = store / ".box.abcd.tmp" / "box"
    leftover.mkdir(parents=True)
    (leftover / "zarr.json").write_text("{")
    plan = plan_batch(spec)
    assert sorted((t.basin, t.index) for t in pending_tasks(plan)) == [("atlantic", 1), ("box", 0), ("box", 1)]
    untouched = snapshot(store / "atlantic" / "PSL" / "c" / "0")
    summary = run_batch(spec, client, progress=False, plan=plan)
    assert (summary.done, summary.skipped, summary.failed) == (3, 1, [])
    assert not list(store.glob(".*.tmp"))
    assert snapshot(store / "atlantic" / "PSL" / "c" / "0") == untouched  # the complete task was not rewritten
    xr.testing.assert_identical(open_group(store, "atlantic").load(), good)
    box = open_group(store, "box")
    assert box["done"].values.tolist() == [1, 1]
    ref = forecaster.predict(str(netcdf), LEADS, basin=BOX, init=INITS[0])
    np.testing.assert_allclose(box["PSL"].isel(init_time=0).values, ref["PSL"].values, rtol=1e-6)


def test_failed_tasks_are_reported_and_the_rest_written(client, checkpoint, forecaster, netcdf, tmp_path):
    store = tmp_path / "out.zarr"
    inits = ["2000-07-20T00:00", INITS[1], "2000-08-10T00:00"]  # before, inside and after the data
    spec = make_spec(checkpoint, netcdf, store, inits=inits, basins={"atlantic": "atlantic"})
    summary = run_batch(spec, client, progress=False)
    assert (summary.total, summary.done) == (3, 1) and not summary.ok
    assert sorted(task for task, _ in summary.failed) == ["atlantic 2000-07-20T00:00:00",
                                                         "atlantic 2000-08-10T00:00:00"]
    assert all("outside the data" in message for _, message in summary.failed)
    assert "failed: atlantic 2000-08-10T00:00:00: init time" in str(summary)
    out = open_group(store, "atlantic")
    assert out["done"].values.tolist() == [0, 1, 0]
    assert np.isnan(out["PSL"].isel(init_time=[0, 2]).values).all()
    ref = forecaster.predict(str(netcdf), LEADS, basin="atlantic", init=INITS[1])
    np.testing.assert_allclose(out["PSL"].isel(init_time=1).values, ref["PSL"].values, rtol=1e-6)
    # a rerun retries the failed tasks only
    again = run_batch(spec, client, progress=False)
    assert (again.done, again.skipped, len(again.failed)) == (0, 1, 2)


def test_an_output_of_another_batch_is_refused(client, checkpoint, netcdf, tmp_path):
    store = tmp_path / "out.zarr"
    run_batch(make_spec(checkpoint, netcdf, store, inits=INITS[1:]), client, progress=False)
    with pytest.raises(ConfigError, match="holds another batch .its lead hours differ"):
        run_batch(make_spec(checkpoint, netcdf, store, inits=INITS[1:], leads="+3h"), client, progress=False)
    with pytest.raises(ConfigError, match="init times differ"):
        run_batch(make_spec(checkpoint, netcdf, store), client, progress=False)
    with pytest.raises(ConfigError, match="group 'box' was written for basin"):
        run_batch(make_spec(checkpoint, netcdf, store, inits=INITS[1:], basins={"box": "atlantic"}), client,
                  progress=False)
    (tmp_path / "other.zarr").mkdir()
    with pytest.raises(ConfigError, match="not a climode batch store"):
        BatchStore(plan_batch(make_spec(checkpoint, netcdf, tmp_path / "other.zarr"))).check()


def test_a_running_scheduler_can_be_used_by_address(client):
    cluster, other = make_cluster(ClusterSpec(kind="address", address=client.scheduler.address))
    try:
        assert cluster is None and len(other.nthreads()) == 2
    finally:
        other.close()


def test_relative_paths_are_resolved_for_the_workers(checkpoint, netcdf, tmp_path, monkeypatch):
    monkeypatch.chdir(netcdf.parent)
    plan = plan_batch(make_spec(checkpoint, "*.nc", "rel.zarr"))
    assert plan.data == os.path.join(str(netcdf.parent), "*.nc") and plan.output == str(netcdf.parent / "rel.zarr")
    assert Path(plan.checkpoint).is_absolute() and plan.checkpoint.endswith(".safetensors")
    assert [t.init for t in plan.tasks[:2]] == ["2000-08-02T18:00:00"] * 2 and plan.calendar == "noleap"


def test_the_example_spec_runs_the_bundled_model_on_the_embedded_sample(client, tmp_path):
    from climode.forecast import load_model

    example = Path(__file__).resolve().parents[2] / "recipes" / "batch" / "atlantic.yaml"
    spec = load_spec(example, [("output", str(tmp_path / "example.zarr"))])
    assert spec.checkpoint is None and spec.data is None
    summary = run_batch(spec, client, progress=False)
    assert (summary.total, summary.done, summary.failed) == (6, 6, [])
    gulf = open_group(tmp_path / "example.zarr", "gulf")
    assert gulf.sizes["lead_time"] == 5 and gulf["done"].values.tolist() == [1, 1, 1]
    ref = load_model(device="cpu").predict(None, spec.lead_times, basin=spec.basins["gulf"], init="2000-08-02T18:00")
    np.testing.assert_allclose(gulf["PSL"].isel(init_time=1).values, ref["PSL"].values, rtol=1e-6)


def test_standard_calendar_data_give_datetime64_times(client, checkpoint, forecaster, sample, tmp_path):
    standard = sample.convert_calendar("standard", use_cftime=False)
    path = tmp_path / "standard.nc"
    standard.to_netcdf(path)
    spec = make_spec(checkpoint, path, tmp_path / "out.zarr", inits=["2000-08-03T09:00"], leads="+90m,+6h",
                     basins={"atlantic": "atlantic"})
    assert run_batch(spec, client, progress=False).done == 1
    out = open_group(tmp_path / "out.zarr", "atlantic")
    assert out["init_time"].values[0] == np.datetime64("2000-08-03T09:00")
    ref = forecaster.predict(str(path), "+90m,+6h", basin="atlantic", init="2000-08-03T09:00")
    np.testing.assert_array_equal(out["time"].values[0], ref["time"].values)
    assert out["time"].values[0][0] == np.datetime64("2000-08-03T10:30")
    np.testing.assert_allclose(out["V850"].isel(init_time=0).values, ref["V850"].values, rtol=1e-6, atol=1e-5)


def test_the_model_is_loaded_once_per_worker_not_per_task(client, checkpoint, netcdf, tmp_path):
    import shutil

    def loads():
        return client.run(lambda: __import__("climode.batch.run", fromlist=["MODEL_LOADS"]).MODEL_LOADS)

    copy = shutil.copytree(Path(checkpoint).parent, tmp_path / "ckpt")  # a checkpoint no worker has loaded yet
    fresh = copy / Path(checkpoint).name
    before = loads()
    inits = ["2000-08-01T09:00", "2000-08-01T21:00", INITS[0], INITS[1]]
    summary = run_batch(make_spec(fresh, netcdf, tmp_path / "out.zarr", inits=inits), client, progress=False)
    assert summary.done == 8
    new = {worker: n - before[worker] for worker, n in loads().items()}
    assert set(new.values()) <= {0, 1} and 1 <= sum(new.values()) <= 2  # 8 tasks, at most one load per worker
