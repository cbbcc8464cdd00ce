"""WindowDataset, collate_windows and make_loader on real NetCDF and zarr files."""

import os
import threading

import numpy as np
import pytest
import torch
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

import climode
from climode.data.loader import (
    StaticChannels,
    WindowDataset,
    collate_windows,
    from_array,
    hours_since,
    make_loader,
)
from climode.data.normalize import Normalizer, compute_stats
from climode.data.sampling import (
    CAM5Protocol,
    FixedProtocol,
    IrregularExtrapolation,
    RegularExtrapolation,
)
from climode.errors import DataError

VARS = ["U850", "V850", "PSL"]
LAT = np.linspace(-25.0, 25.0, 6)
LON = np.arange(8) * 45.0
MISSING_FRAME = 5


def climate(n_time=48, seq=0, calendar="noleap", freq="3h", nans=True):
    """U850 = 100 seq + t + 0.01 i + 0.001 j; V850 = -U850; PSL = 1e5 + 10 t + i (t: frame number)."""
    t = np.arange(n_time)[:, None, None]
    i = np.arange(6)[None, :, None]
    j = np.arange(8)[None, None, :]
    u = (100.0 * seq + t + 0.01 * i + 0.001 * j).astype("float32")
    psl = (1e5 + 10.0 * t + i + 0 * j).astype("float32")
    v = -u
    if nans:
        u[:, 2, 3] = np.nan  # a cell never observed in U850
        v[7, 0, 0] = np.nan  # one missing cell
        for a in (u, v, psl):
            a[MISSING_FRAME] = np.nan  # a wholly missing frame
    if calendar == "numpy":
        time = np.datetime64("2001-03-01T00") + np.arange(n_time) * np.timedelta64(int(freq[:-1]), "h")
    else:
        time = xr.date_range("2001-03-01", periods=n_time, freq=freq, calendar=calendar, use_cftime=True)
    return xr.Dataset(
        {
            "U850": (("time", "lat", "lon"), u, {"units": "m s-1"}),
            "V850": (("time", "lat", "lon"), v, {"units": "m s-1"}),
            "PSL": (("time", "lat", "lon"), psl, {"units": "Pa"}),
        },
        coords={"time": time, "lat": LAT, "lon": LON},
    )


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The same 48 steps as a 3-file NetCDF archive (names not in time order) and a zarr store."""
    root = tmp_path_factory.mktemp("archive")
    ds = climate()
    for name, sl in (("c.nc", slice(0, 16)), ("a.nc", slice(16, 32)), ("b.nc", slice(32, 48))):
        ds.isel(time=sl).to_netcdf(root / name)
    ds.to_zarr(root / "store.zarr", mode="w", zarr_format=2, consolidated=True)
    return {"ds": ds, "glob": str(root / "*.nc"), "zarr": str(root / "store.zarr"), "root": root}


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0, equal_nan=True)


def identity():
    return Normalizer.identity(VARS)


def test_item_holds_the_right_frames_times_masks_and_valid_cells():
    ds = climate()
    protocol = FixedProtocol.from_hours([0, 9, 21, 42, 57], [60, 63, 66, 69, 72], step_hours=3)
    data = WindowDataset(ds, VARS, protocol, identity())
    assert len(data) == 48 - 25 + 1
    item = data[2]  # start 2: inputs at frames 2, 5 (missing), 9, 16, 21; targets 22..26
    assert int(item["start"]) == 2
    np.testing.assert_array_equal(item["input_times"].numpy(), [0, 9, 21, 42, 57])
    np.testing.assert_array_equal(item["target_times"].numpy(), [60, 63, 66, 69, 72])
    assert item["input_times"].dtype == torch.float64 and item["inputs"].dtype == torch.float32
    np.testing.assert_array_equal(item["input_mask"].numpy(), [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(item["target_mask"].numpy(), [1, 1, 1, 1, 1])
    frames = [2, 5, 9, 16, 21]
    u = item["inputs"][:, 0]
    expected = ds["U850"].values[frames]
    observed = np.isfinite(expected)
    np.testing.assert_array_equal(u.numpy()[observed], expected[observed])
    assert torch.all(item["inputs"][1] == 0)  # the missing frame is zeros, not NaN
    assert torch.all(u[:, 2, 3] == 0)
    assert torch.isfinite(item["inputs"]).all()
    np.testing.assert_array_equal(item["targets"][:, 2].numpy(), ds["PSL"].values[22:27])
    assert torch.isnan(item["targets"][:, 0, 2, 3]).all()  # missing truth stays NaN
    valid = item["valid"].numpy()
    assert valid.shape == (3, 6, 8)
    assert valid[0, 2, 3] == 0 and valid.sum() == 3 * 48 - 1


def test_inputs_are_normalised_with_the_statistics():
    ds = climate()
    norm = compute_stats(ds, VARS)
    item = WindowDataset(ds, VARS, RegularExtrapolation(), norm)[10]
    psl = ds["PSL"].values[10:15]
    np.testing.assert_allclose(item["inputs"][:, 2].numpy(), (psl - norm.mean[2]) / norm.std[2], rtol=1e-5)
    np.testing.assert_allclose(norm.denormalize(item["targets"], channel_axis=1)[:, 2].numpy(),
                               ds["PSL"].values[15:20], rtol=1e-6)


def test_origin_is_the_first_observed_input():
    ds = climate()
    data = WindowDataset(ds, VARS, RegularExtrapolation(), identity())
    item = data[MISSING_FRAME]  # the first input frame is the missing one
    np.testing.assert_array_equal(item["input_mask"].numpy(), [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(item["input_times"].numpy(), [-3, 0, 3, 6, 9])
    np.testing.assert_array_equal(item["target_times"].numpy(), [12, 15, 18, 21, 24])


def test_collate_pads_uneven_samples_with_masks_and_sorted_times():
    ds = climate(nans=False)
    a = WindowDataset(ds, VARS, FixedProtocol((0, 2, 3), (4, 5, 6, 7), step_hours=3), identity())[0]
    b = WindowDataset(ds, VARS, FixedProtocol((0, 1, 3, 6, 8), (9,), step_hours=3), identity())[10]
    batch = collate_windows([a, b])
    assert batch["inputs"].shape == (2, 5, 3, 6, 8) and batch["targets"].shape == (2, 4, 3, 6, 8)
    np.testing.assert_array_equal(batch["input_mask"].numpy(), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(batch["target_mask"].numpy(), [[1, 1, 1, 1], [1, 0, 0, 0]])
    np.testing.assert_array_equal(batch["input_times"][0].numpy(), [0, 6, 9, 12, 15])
    np.testing.assert_array_equal(batch["target_times"][1].numpy(), [27, 30, 33, 36])
    for key in ("input_times", "target_times"):
        assert (batch[key].diff(dim=1) > 0).all()
    assert torch.all(batch["inputs"][0, 3:] == 0)
    assert torch.isnan(batch["targets"][1, 1:]).all()
    torch.testing.assert_close(batch["inputs"][1], b["inputs"], rtol=0, atol=0)
    assert batch["sample_index"].tolist() == [0, 10] and batch["start"].dtype == torch.int64


def test_windows_of_two_grids_or_with_and_without_static_channels_do_not_collate():
    ds = climate(nans=False)
    protocol = FixedProtocol((0, 2, 3), (4,), step_hours=3)
    small = WindowDataset(ds.isel(lat=slice(0, 4)), VARS, protocol, identity())[0]
    whole = WindowDataset(ds, VARS, protocol, identity())[0]
    with pytest.raises(DataError, match=r"different channel/grid shapes \(3, 4, 8\) and \(3, 6, 8\)"):
        collate_windows([small, whole])
    with_static = WindowDataset(ds, VARS, protocol, identity(), static=True)[0]
    with pytest.raises(DataError, match="some windows of the batch have static channels and some do not"):
        collate_windows([with_static, whole])


@pytest.mark.parametrize("source", ["glob", "zarr"])
def test_two_workers_give_the_same_batches_as_none(archive, source):
    protocol = CAM5Protocol(max_gap_hours=12)  # windows of up to 22 frames
    norm = compute_stats(archive["ds"], VARS)
    data = WindowDataset(archive[source], VARS, protocol, norm, seed=3, samples_per_epoch=12, static=True)
    serial = list(make_loader(data, batch_size=5, num_workers=0, shuffle=True, seed=1))
    parallel = list(make_loader(data, batch_size=5, num_workers=2, shuffle=True, seed=1))
    assert [len(b["sample_index"]) for b in serial] == [5, 5, 2]  # the partial batch is kept
    assert sorted(torch.cat([b["sample_index"] for b in serial]).tolist()) == list(range(12))
    assert_batches_equal(serial, parallel)
    # ... and both equal what the same windows give from the dataset held in memory
    memory = WindowDataset(archive["ds"], VARS, protocol, norm, seed=3, samples_per_epoch=12, static=True)
    assert_batches_equal(serial, list(make_loader(memory, batch_size=5, shuffle=True, seed=1)))
    data.close()


def test_multi_file_archive_is_ordered_by_time(archive):
    data = WindowDataset(archive["glob"], VARS, RegularExtrapolation(), identity())
    assert data.n_windows == 48 - 10 + 1
    for index in (1, 12, 14, 30, 38):  # windows inside one file and across file boundaries
        item = data[index]
        np.testing.assert_array_equal(item["targets"][:, 2, 0, 0].numpy(), 1e5 + 10.0 * np.arange(index + 5, index + 10))


def test_lazily_opened_netcdf_is_safe_across_fork(archive):
    path = archive["root"] / "c.nc"
    with xr.open_dataset(path) as lazy:  # file handle open in this process, data not loaded
        data = WindowDataset(lazy, VARS, RegularExtrapolation(n_inputs=2, n_targets=2), identity(), seed=0)
        serial = list(make_loader(data, 3, num_workers=0))
        parallel = list(make_loader(data, 3, num_workers=2))
        assert_batches_equal(serial, parallel)
        assert_batches_equal(serial, list(make_loader(data, 3, num_workers=0)))  # parent handle still good
        assert lazy["PSL"].variable._in_memory is False


def _netcdf_ids(data):
    """netCDF ids of the files a WindowDataset reads in the current process."""
    from climode.data import readers

    ids = []
    for seq in data._sequences:
        if isinstance(seq, readers.FileSequence):
            ids += [ds["PSL"].variable for ds, _ in seq._handles()]
        else:
            ids += seq._arrays[:1]
    out = []
    for var in ids:
        arr = var._data
        while not hasattr(arr, "datastore"):
            arr = arr.array
        out.append(arr.datastore._manager.acquire()._grpid)
    return out


class IdProbe(WindowDataset):
    """Reports, as ``start``, the netCDF id its process reads the first file with."""

    def __getitem__(self, key):
        item = super().__getitem__(key)
        item["start"] = torch.tensor(_netcdf_ids(self)[0])
        return item


@pytest.mark.parametrize("how", ["path", "opened"])
def test_workers_never_use_the_parents_netcdf_handles(archive, how):
    path = archive["root"] / "a.nc"
    with xr.open_dataset(path) as lazy:
        data = IdProbe(str(path) if how == "path" else lazy, VARS, RegularExtrapolation(n_inputs=2, n_targets=2),
                       identity())
        parent = next(iter(make_loader(data, 4)))["start"].unique().tolist()
        assert parent == _netcdf_ids(data)[:1]  # the parent has the file open while the workers fork
        workers = torch.cat([b["start"] for b in make_loader(data, 2, num_workers=2)]).unique().tolist()
        assert parent[0] not in workers
        assert _netcdf_ids(data)[:1] == parent  # the parent's handle is untouched and still used


def test_set_epoch_changes_windows_deterministically(archive):
    def windows(epoch, seed=3):
        data = WindowDataset(archive["ds"], VARS, CAM5Protocol(max_gap_hours=12), identity(), seed=seed,
                             samples_per_epoch=10)
        data.set_epoch(epoch)
        return [data.window(i) for i in range(10)], data

    w0, data = windows(0)
    w1, _ = windows(1)
    assert w0 != w1
    assert windows(1)[0] == w1 and windows(0, seed=4)[0] != w0
    data.set_epoch(1)
    batch1 = next(iter(make_loader(data, 10, num_workers=2)))
    starts = [w[1] for w in w1]
    assert batch1["start"].tolist() == starts
    data.set_epoch(0)
    batch0 = next(iter(make_loader(data, 10)))
    assert batch0["start"].tolist() == [w[1] for w in w0]
    # persistent workers keep their copy of the dataset; the epoch travels with each key
    loader = make_loader(data, 10, num_workers=2, persistent_workers=True)
    data.set_epoch(0)
    assert next(iter(loader))["start"].tolist() == [w[1] for w in w0]
    data.set_epoch(1)
    assert next(iter(loader))["start"].tolist() == starts
    with pytest.raises(Exception, match="non-negative"):
        data.set_epoch(-1)


def test_windows_never_cross_sequences_and_none_is_dropped():
    seasons = [climate(30, seq=0, nans=False), climate(25, seq=1, nans=False)]
    data = WindowDataset(seasons, VARS, RegularExtrapolation(), identity())
    assert len(data) == 21 + 16
    seen = []
    for batch in make_loader(data, batch_size=8):
        seen.extend(batch["sample_index"].tolist())
        for b in range(len(batch["start"])):
            seq, start = int(batch["sequence"][b]), int(batch["start"][b])
            u = torch.cat([batch["inputs"][b, :, 0, 0, 0], batch["targets"][b, :, 0, 0, 0]])
            np.testing.assert_allclose(u.numpy(), 100 * seq + start + np.arange(10))
            assert start + 10 <= (30, 25)[seq]
    assert sorted(seen) == list(range(37))


class CountingArray(BackendArray):
    """A lazily indexed backend array that records which time indices are read."""

    def __init__(self, values, log):
        self.values, self.log = values, log
        self.shape, self.dtype = values.shape, values.dtype

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._raw)

    def _raw(self, key):
        self.log.append(np.arange(self.shape[0])[key[0]].tolist())
        return self.values[key]


def test_getitem_reads_only_the_frames_it_needs():
    ds = climate(200, nans=False)
    reads = []
    lazy = xr.Dataset(
        {v: xr.Variable(ds[v].dims, indexing.LazilyIndexedArray(CountingArray(ds[v].values, reads)))
         for v in VARS},
        coords=ds.coords,
    )
    data = WindowDataset(lazy, VARS, CAM5Protocol(), identity(), seed=0, samples_per_epoch=4)
    assert reads == []  # building the dataset reads no data
    for i in range(4):
        reads.clear()
        _, start, spec = data.window(i)
        item = data[i]
        wanted = sorted(start + o for o in spec.input_offsets + spec.target_offsets)
        assert reads == [wanted] * 3  # once per variable, exactly the window's frames
        np.testing.assert_array_equal(item["inputs"][:, 2, 0, 0].numpy(),
                                      1e5 + 10.0 * (start + np.asarray(spec.input_offsets)))


def test_cftime_and_datetime64_give_the_same_hours(archive):
    a = WindowDataset(archive["ds"], VARS, CAM5Protocol(max_gap_hours=12), identity(), samples_per_epoch=6)
    b = WindowDataset(climate(calendar="numpy"), VARS, CAM5Protocol(max_gap_hours=12), identity(),
                      samples_per_epoch=6)
    assert_batches_equal([collate_windows([a[i] for i in range(6)])], [collate_windows([b[i] for i in range(6)])])
    cf = xr.date_range("2001-02-27", periods=4, freq="12h", calendar="noleap", use_cftime=True)
    np.testing.assert_array_equal(hours_since(cf), [0, 12, 24, 36])  # no Feb 29 in noleap


@pytest.mark.parametrize(
    "ds, protocol, message",
    [
        (climate().drop_isel(time=[20]), CAM5Protocol(), "not a regular 3 h grid .*step of 6 h"),
        (climate(freq="6h"), CAM5Protocol(), "not a regular 3 h grid"),
        (climate().drop_isel(time=[20]), RegularExtrapolation(), "not a regular 3 h grid"),
        (climate(20), CAM5Protocol(), "needs windows of 70 frames but the longest sequence has 20"),
    ],
)
def test_time_axis_problems_are_clear(ds, protocol, message):
    with pytest.raises(DataError, match=message):
        WindowDataset(ds, VARS, protocol, identity())


def test_all_missing_inputs_raise_a_data_error():
    ds = climate(nans=False)
    for v in VARS:
        ds[v][10:15] = np.nan
    with pytest.raises(DataError, match="no input step with every variable"):
        WindowDataset(ds, VARS, RegularExtrapolation(), identity())[10]


def test_step_with_one_variable_entirely_missing_is_unobserved(tmp_path):
    """A NetCDF file where only V850 is missing at frame 7: that step has mask 0, in inputs and targets."""
    ds = climate(nans=False)
    ds["V850"][7] = np.nan
    ds.to_netcdf(tmp_path / "v_gap.nc")
    opened = climode.open_dataset(tmp_path / "v_gap.nc")
    data = WindowDataset(opened, VARS, RegularExtrapolation(), identity())
    item = data[5]  # inputs 5..9, targets 10..14
    np.testing.assert_array_equal(item["input_mask"].numpy(), [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(item["target_mask"].numpy(), [1, 1, 1, 1, 1])
    assert torch.all(item["inputs"][2, 1] == 0)  # V of the unobserved step is not fed as data
    np.testing.assert_array_equal(item["inputs"][2, 0].numpy(), ds["U850"].values[7])
    assert item["valid"].all()  # every cell is seen at some observed step
    item = data[2]  # inputs 2..6, targets 7..11
    np.testing.assert_array_equal(item["input_mask"].numpy(), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(item["target_mask"].numpy(), [0, 1, 1, 1, 1])
    batch = collate_windows([data[5], data[2]])
    assert batch["input_mask"][0].tolist() == [1, 1, 0, 1, 1] and batch["target_mask"][1, 0] == 0


NCL_DIR = "/usr/share/ncarg/data/cdf"


@pytest.mark.skipif(not all(os.path.exists(f"{NCL_DIR}/{n}storm.cdf") for n in "UVP"),
                    reason="NCL storm files absent (Debian package libncarg-data not installed)")
def test_ncl_storm_step_without_v_is_unobserved():
    """1996-01-09 06:00 of the real blizzard data has no V at all: mask 0 there, mask 1 around it."""
    ds = climode.open_dataset("ncl_storm_1996")
    k = int(np.flatnonzero(ds["time"].values == np.datetime64("1996-01-09T06:00"))[0])
    assert np.isnan(ds["V850"].values[k]).all() and np.isfinite(ds["U850"].values[k]).any()
    norm = compute_stats(ds, VARS)
    data = WindowDataset(ds, VARS, RegularExtrapolation(step_hours=6.0), norm)
    item = data[k - 2]  # inputs k-2..k+2
    np.testing.assert_array_equal(item["input_mask"].numpy(), [1, 1, 0, 1, 1])
    item = data[k - 7]  # inputs k-7..k-3, targets k-2..k+2
    np.testing.assert_array_equal(item["target_mask"].numpy(), [1, 1, 0, 1, 1])
    assert torch.isnan(item["targets"][2, 1]).all()


def test_video_from_numpy_frames():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 12, 3, 8, 8), dtype=np.uint8)
    norm = Normalizer.scale(["c0", "c1", "c2"], 255.0)
    data = WindowDataset(frames, None, RegularExtrapolation(), norm)
    assert len(data) == 2 * 3
    item = data[4]  # video 1, start 1
    assert int(item["sequence"]) == 1 and int(item["start"]) == 1
    np.testing.assert_allclose(item["inputs"].numpy(), frames[1, 1:6] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(item["input_times"].numpy(), np.arange(5))
    np.testing.assert_array_equal(item["target_times"].numpy(), np.arange(5, 10))
    batches = list(make_loader(data, batch_size=4, num_workers=2))
    assert [b["inputs"].shape[0] for b in batches] == [4, 2]

    timed = WindowDataset(from_array(frames[0], times=np.arange(12) * 0.5), None, RegularExtrapolation(), norm)
    np.testing.assert_array_equal(timed[0]["target_times"].numpy(), [2.5, 3.0, 3.5, 4.0, 4.5])


def test_video_dataarray_with_channel_subset():
    rng = np.random.default_rng(1)
    frames = rng.random((24, 3, 4, 5)).astype("float32")
    da = xr.DataArray(frames, dims=("time", "channel", "y", "x"), coords={"channel": ["r", "g", "b"]})
    protocol = IrregularExtrapolation(window=20, n_observed=4)
    data = WindowDataset(da, ["b", "r"], protocol, Normalizer.identity(["r", "g", "b"]), seed=2)
    seq, start, spec = data.window(3)
    item = data[3]
    np.testing.assert_array_equal(item["inputs"].numpy(), frames[start + np.asarray(spec.input_offsets)][:, [2, 0]])
    assert item["input_times"][0] == 0 and len(item["input_times"]) == 4


def test_static_channels_cos_lat_and_land_sea_mask():
    ds = climate()
    lsm = xr.DataArray((np.arange(48).reshape(6, 8) % 2).astype(float), dims=("lat", "lon"),
                       coords={"lat": LAT, "lon": LON})
    item = WindowDataset(ds, VARS, RegularExtrapolation(), identity(), static=StaticChannels(land_sea_mask=lsm))[0]
    assert item["static"].shape == (2, 6, 8)
    np.testing.assert_allclose(item["static"][0, :, 3].numpy(), np.cos(np.deg2rad(LAT)), rtol=1e-6)
    np.testing.assert_array_equal(item["static"][1].numpy(), lsm.values)
    with pytest.raises(DataError, match="land_sea_mask has shape"):
        WindowDataset(ds, VARS, RegularExtrapolation(), identity(), static=lsm.isel(lat=slice(0, 3)))
    with pytest.raises(DataError, match="no 'lat' coordinate"):
        WindowDataset(np.zeros((12, 1, 4, 4)), None, RegularExtrapolation(), None, static=True)


def test_loader_workers_use_one_thread(archive):
    class Probe(WindowDataset):
        def __getitem__(self, key):
            item = super().__getitem__(key)
            item["start"] = torch.tensor(torch.get_num_threads())
            return item

    data = Probe(archive["glob"], VARS, RegularExtrapolation(), identity(), samples_per_epoch=4)
    batch = next(iter(make_loader(data, 4, num_workers=2)))
    assert batch["start"].tolist() == [1, 1, 1, 1]
    assert threading.current_thread() is threading.main_thread()


def test_dask_backed_reads_compute_only_the_chunks_of_the_window():
    import dask
    import dask.array as dka

    from climode.data.readers import DaskFrames

    values = np.arange(10 * 5 * 7, dtype="float32").reshape(10, 5, 7)
    good = dka.from_array(values, chunks=(3, 2, 4)) * 2.0  # several chunks along every axis

    @dask.delayed
    def poisoned():
        raise AssertionError("a chunk outside the window was computed")

    bad = dka.from_delayed(poisoned(), shape=(4, 5, 7), dtype="float32")
    frames = DaskFrames(dka.concatenate([good, bad], axis=0))
    np.testing.assert_array_equal(frames.read(np.array([0, 4, 5, 9])), 2.0 * values[[0, 4, 5, 9]])
    np.testing.assert_array_equal(frames.read(slice(2, 8)), 2.0 * values[2:8])
    with pytest.raises(AssertionError, match="outside the window"):
        frames.read(np.array([9, 10]))
