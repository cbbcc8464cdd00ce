"""Normalisation statistics: correct values, lazy reduction, JSON round trip, all array types."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from dask.callbacks import Callback

from climode.data.normalize import Normalizer, compute_stats, load_or_compute_stats
from climode.errors import DataError

VARS = ["U850", "V850", "PSL"]


def make_ds(n_time=40, seed=0, nan_fraction=0.1):
    rng = np.random.default_rng(seed)
    shape = (n_time, 6, 8)
    data = {
        "U850": rng.normal(3.0, 5.0, shape),
        "V850": rng.normal(-1.0, 4.0, shape),
        "PSL": rng.normal(101000.0, 900.0, shape),
    }
    for v in data:
        data[v][rng.random(shape) < nan_fraction] = np.nan
    return xr.Dataset(
        {v: (("time", "lat", "lon"), a.astype("float32"), {"units": "Pa" if v == "PSL" else "m s-1"})
         for v, a in data.items()},
        coords={"time": np.arange(n_time) * 3.0, "lat": np.linspace(-20, 20, 6), "lon": np.arange(8) * 45.0},
    )


def reference(ds):
    mean = [float(np.nanmean(ds[v].values.astype(np.float64))) for v in VARS]
    std = [float(np.nanstd(ds[v].values.astype(np.float64))) for v in VARS]
    return mean, std


def test_stats_skip_nan_and_match_numpy():
    ds = make_ds()
    norm = compute_stats(ds, VARS)
    mean, std = reference(ds)
    assert norm.variables == tuple(VARS)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(norm.std, std, rtol=1e-10)
    assert norm.count == tuple(int(np.isfinite(ds[v].values).sum()) for v in VARS)


def test_stats_pool_several_datasets_exactly():
    a, b = make_ds(30, seed=1), make_ds(17, seed=2, nan_fraction=0.3)
    pooled = compute_stats([a, b], VARS)
    mean, std = reference(xr.concat([a, b], "time"))
    np.testing.assert_allclose(pooled.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(pooled.std, std, rtol=1e-10)


class TaskSizes(Callback):
    """Records the size of every intermediate result dask computes."""

    def __init__(self):
        super().__init__()
        self.nbytes = []

    def _posttask(self, key, result, dsk, state, worker_id):
        self.nbytes.append(getattr(result, "nbytes", 0))


def test_dask_backed_stats_are_a_chunked_reduction(tmp_path):
    ds = make_ds(64)
    path = tmp_path / "big.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path, chunks={"time": 8}) as lazy:
        assert lazy["PSL"].chunks is not None
        sizes = TaskSizes()
        with sizes:
            norm = compute_stats(lazy, VARS)
        one_variable = 64 * 6 * 8 * 8  # float64 bytes of a whole variable
        assert len(sizes.nbytes) > 3 * 8  # several tasks per variable: chunk by chunk
        assert max(sizes.nbytes) <= one_variable / 8  # never more than one chunk in memory
        assert lazy["PSL"].chunks is not None  # the dataset was not loaded in place
    mean, std = reference(ds)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(norm.std, std, rtol=1e-9)


def test_stats_from_a_glob_of_files(tmp_path):
    ds = make_ds(30)
    ds.isel(time=slice(0, 15)).to_netcdf(tmp_path / "a.nc")
    ds.isel(time=slice(15, 30)).to_netcdf(tmp_path / "b.nc")
    norm = compute_stats(str(tmp_path / "*.nc"), VARS)
    np.testing.assert_allclose(norm.mean, reference(ds)[0], rtol=1e-12)


def test_json_round_trip_is_small_and_atomic(tmp_path):
    ds = make_ds()
    path = tmp_path / "stats" / "norm.json"
    norm = compute_stats(ds, VARS, path=path)
    assert path.stat().st_size < 1000
    assert [p.name for p in path.parent.iterdir()] == ["norm.json"]  # no temporary left behind
    assert json.loads(path.read_text())["variables"] == VARS
    assert Normalizer.load(path) == norm
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_load_or_compute_computes_once(tmp_path):
    path = tmp_path / "norm.json"
    first = load_or_compute_stats(path, make_ds(seed=1), VARS)
    again = load_or_compute_stats(path, make_ds(seed=99), VARS)  # different data: not recomputed
    assert again == first
    assert load_or_compute_stats(path, None, ["PSL"]).variables == ("PSL",)


def test_normalize_numpy_torch_xarray_consistently():
    ds = make_ds()
    norm = compute_stats(ds, VARS)
    stacked = np.stack([ds[v].values for v in VARS], axis=1)[None]  # [B, T, C, H, W]
    z = norm.normalize(stacked, channel_axis=2)
    assert z.dtype == np.float32
    assert abs(float(np.nanmean(z[:, :, 2]))) < 1e-4 and abs(float(np.nanstd(z[:, :, 2])) - 1) < 1e-4
    np.testing.assert_allclose(norm.denormalize(z, channel_axis=2), stacked, rtol=1e-5, atol=1e-4, equal_nan=True)

    t = torch.from_numpy(stacked)
    zt = norm.normalize(t, channel_axis=2)
    assert zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), z, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert torch.allclose(norm.denormalize(zt, channel_axis=2), t, rtol=1e-5, atol=1e-4, equal_nan=True)

    zds = norm.normalize(ds)
    np.testing.assert_allclose(zds["PSL"].values, z[0, :, 2], rtol=1e-5, atol=1e-6, equal_nan=True)
    assert zds["PSL"].attrs["units"] == "1" and zds["PSL"].attrs["physical_units"] == "Pa"
    back = norm.denormalize(zds)
    assert back["PSL"].attrs["units"] == "Pa"
    np.testing.assert_allclose(back["PSL"].values, ds["PSL"].values, rtol=1e-6, equal_nan=True)

    # a DataArray with a channel dimension, channels in a different order, is matched by label
    da = xr.DataArray(stacked[0][:, ::-1], dims=("time", "channel", "lat", "lon"), coords={"channel": VARS[::-1]})
    np.testing.assert_allclose(norm.normalize(da).values, z[0][:, ::-1], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_scale_normalizer_maps_bytes_to_unit_interval():
    frames = np.array([[0, 255], [51, 102]], dtype=np.uint8).reshape(1, 2, 2, 1)  # [T, C, H, W]
    out = Normalizer.scale(["r", "g"], 255.0).normalize(frames)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), [0, 1, 0.2, 0.4], rtol=1e-6)


def test_constant_channel_gets_unit_std_and_empty_channel_fails():
    ds = make_ds(nan_fraction=0.0)
    ds["U850"][:] = 4.0
    norm = compute_stats(ds, VARS)
    assert norm.std[0] == 1.0 and norm.mean[0] == 4.0
    ds["V850"][:] = np.nan
    with pytest.raises(DataError, match="'V850' has no finite values"):
        compute_stats(ds, VARS)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda n: n.normalize(np.zeros((2, 4, 5, 5))), "4 channels on axis -3"),
        (lambda n: n.select(["T2M"]), "no statistics for \\['T2M'\\]"),
        (lambda n: Normalizer(("a",), (0.0,), (0.0,)), "std must be finite and > 0"),
        (lambda n: Normalizer.from_dict({"variables": ["a"], "mean": [0.0]}), "missing the 'std' entry"),
    ],
)
def test_errors_name_the_problem(call, message):
    norm = Normalizer(("U850", "V850", "PSL"), (0.0, 0.0, 1e5), (1.0, 1.0, 1e3))
    with pytest.raises(DataError, match=message):
        call(norm)


def test_corrupt_json_is_a_data_error(tmp_path):
    path = tmp_path / "norm.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        Normalizer.load(path)
    with pytest.raises(DataError, match="cannot read"):
        Normalizer.load(tmp_path / "missing.json")
