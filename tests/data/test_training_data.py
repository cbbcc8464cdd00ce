"""climode.training.data: file archives stay lazy into WindowDataset, statistics are computed once and stored,
recipe seeds stay inside their split."""

from __future__ import annotations

import json
import os

import dask.array
import numpy as np
import pytest
import torch

import climode.data.normalize as normalize
from climode.data.loader import make_loader
from climode.data.sequences import climate_sequences
from climode.errors import ConfigError
from climode.training.data import build_training_data
from climode.training.recipe import DataSection

VARS = ["U850", "V850", "PSL"]


@pytest.fixture
def archive(tmp_path, cam_like):
    """Two CAM-like NetCDF files (24 steps, 3-hourly) with a NaN cell and a step without V."""
    ds = cam_like(nt=24, nlat=5, nlon=6, step_hours=3.0)
    ds["U850"][:, 1, 1] = np.nan
    ds["V850"][9] = np.nan
    root = tmp_path / "archive"
    root.mkdir()
    ds.isel(time=slice(0, 12)).to_netcdf(root / "a.nc")
    ds.isel(time=slice(12, 24)).to_netcdf(root / "b.nc")
    return ds, str(root / "*.nc")


def _section(source, **kw):
    args = dict(dataset=source, split=None, validation_split=None, protocol="extrapolation",
                protocol_args={"n_inputs": 3, "n_targets": 2, "step_hours": 3.0}, samples_per_epoch=6,
                batch_size=3, region=None)
    args.update(kw)
    return DataSection(**args)


def test_file_archive_stays_lazy_into_the_window_dataset(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    ds, pattern = archive
    data = build_training_data(_section(pattern), multiple=4, seed=0)
    (seq,) = data.train._sequences
    assert all(isinstance(a._data, dask.array.Array) for a in seq._arrays)  # not loaded
    assert seq._arrays[0].chunks[0] == (1,) * 24  # one step per chunk: a window reads its own steps
    assert seq.grid == (8, 8)  # padded to the stride with NaN
    # the statistics are those of the data, and a window holds the normalised file values
    for i, v in enumerate(VARS):
        values = ds[v].values
        assert data.normalizer.mean[i] == pytest.approx(np.nanmean(values), rel=1e-6)
        assert data.normalizer.std[i] == pytest.approx(np.nanstd(values), rel=1e-5)
    spec_seq, start, spec = data.train.window(0)
    item = data.train[0]
    frames = start + np.asarray(spec.input_offsets)
    expected = (ds["PSL"].values[frames] - data.normalizer.mean[2]) / data.normalizer.std[2]
    np.testing.assert_allclose(item["inputs"][:, 2, :5, :6].numpy(), expected, rtol=1e-5)
    # DataLoader workers read the lazy archive themselves
    serial = next(iter(make_loader(data.train, batch_size=3)))
    forked = next(iter(make_loader(data.train, batch_size=3, num_workers=2)))
    torch.testing.assert_close(serial["inputs"], forked["inputs"], rtol=0, atol=0)


def test_statistics_are_computed_once_and_stored(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    ds, pattern = archive
    first = build_training_data(_section(pattern), multiple=4, seed=0).normalizer
    (stored,) = (tmp_path / "cache" / "stats").glob("*.json")
    record = json.loads(stored.read_text())
    assert record["variables"] == VARS and record["source_key"]
    assert record["mean"] == pytest.approx(list(first.mean))

    def fail(*args, **kwargs):
        raise AssertionError("statistics recomputed")

    monkeypatch.setattr(normalize, "compute_stats", fail)
    again = build_training_data(_section(pattern), multiple=4, seed=0).normalizer
    assert again == first
    # a changed file changes the fingerprint: the statistics are recomputed
    monkeypatch.undo()
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    changed = ds.isel(time=slice(12, 24)).copy(deep=True)
    changed["PSL"] = changed["PSL"] + 500.0
    os.remove(pattern.replace("*", "b"))
    changed.to_netcdf(pattern.replace("*", "b"))
    third = build_training_data(_section(pattern), multiple=4, seed=0).normalizer
    assert third.mean[2] == pytest.approx(first.mean[2] + 250.0, rel=1e-6)
    assert len(list((tmp_path / "cache" / "stats").glob("*.json"))) == 2
    # an explicit path is used as given
    explicit = tmp_path / "run" / "normalizer.json"
    build_training_data(_section(pattern), multiple=4, seed=0, stats_path=explicit)
    assert normalize.Normalizer.load(explicit) == third


def test_synthetic_realisations_are_loaded_in_memory():
    section = DataSection(dataset="synthetic_hurricanes", split="train", n_sequences=1,
                          generator_args={"days": 1, "resolution": 6.0}, validation_split=None)
    (seq,) = climate_sequences(section, "train", 1, 2)
    assert all(isinstance(seq[v].data, np.ndarray) for v in VARS) and seq.attrs["climode_seed"] == 0


@pytest.mark.parametrize("split, seeds, message", [
    ("train", [3, 20005], r"recipe data\.seeds: seed 20005 is outside split 'train' of 'synthetic_hurricanes' "
                          r"\(seeds 0\.\.9999\)"),
    ("validation", [0], r"seed 0 is outside split 'validation' .*\(seeds 10000\.\.10999\)"),
    (None, [20003], r"seed 20003 lies in split 'test' of 'synthetic_hurricanes' \(seeds 20000\.\.20999\)"),
])
def test_recipe_seeds_must_lie_in_their_split(split, seeds, message):
    section = DataSection(dataset="synthetic_hurricanes", split=split, seeds=seeds, validation_split=None,
                          generator_args={"days": 1, "resolution": 6.0})
    with pytest.raises(ConfigError, match=message):
        climate_sequences(section, split, 1, 2)


def test_recipe_seeds_inside_the_split_are_used():
    section = DataSection(dataset="synthetic_hurricanes", split="train", seeds=[5], validation_split=None,
                          generator_args={"days": 1, "resolution": 6.0})
    (seq,) = climate_sequences(section, "train", 1, 2)
    assert seq.attrs["climode_seed"] == 5


def test_seeds_for_a_file_dataset_are_an_error(archive):
    _, pattern = archive
    with pytest.raises(ConfigError, match="data.seeds picks realisations of a synthetic dataset"):
        climate_sequences(_section(pattern, seeds=[1]), None, 1, 2)


def test_file_validation_split_needs_its_own_period(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    _, pattern = archive
    with pytest.raises(ConfigError, match="would validate on the training data"):
        build_training_data(_section(pattern, split="train", validation_split="validation"), multiple=4, seed=0)


def test_file_splits_by_period_train_and_validate_on_disjoint_times(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    ds, pattern = archive
    periods = {"train": "2000-01-01/2000-01-02", "validation": "2000-01-03/2000-01-03"}
    data = build_training_data(_section(pattern, split="train", validation_split="validation", periods=periods,
                                        validation_windows=2), multiple=4, seed=0)
    (train,) = data.train._sequences
    (val,) = data.validation._sequences
    assert train._arrays[0].shape[0] == 16 and val._arrays[0].shape[0] == 8  # 3-hourly days 1-2 and day 3
    # statistics come from the training period only
    assert data.normalizer.mean[2] == pytest.approx(np.nanmean(ds["PSL"].values[:16]), rel=1e-6)
    assert data.normalizer.mean[2] != pytest.approx(np.nanmean(ds["PSL"].values), rel=1e-9)


def test_periods_are_checked(archive):
    _, pattern = archive
    with pytest.raises(ConfigError, match="overlap"):
        _section(pattern, periods={"train": "2000-01-01/2000-01-02", "validation": "2000-01-02/2000-01-03"})
    with pytest.raises(ConfigError, match="not START/END"):
        _section(pattern, periods={"train": "2000-01-01"})
    with pytest.raises(ConfigError, match="ends before"):
        _section(pattern, periods={"train": "2000-01-03/2000-01-01"})
    with pytest.raises(ConfigError, match="no period for split 'train'"):
        climate_sequences(_section(pattern, split="train", periods={"test": "2000-01-03/2000-01-03"}),
                          "train", 1, 4)


def test_a_period_without_data_is_an_error(archive):
    from climode.errors import DataError

    _, pattern = archive
    with pytest.raises(DataError, match="no time step lies in the train period"):
        climate_sequences(_section(pattern, split="train", periods={"train": "1990-01-01/1990-12-31"}), "train", 1, 4)


def test_evaluation_only_data_is_never_trained_on():
    with pytest.raises(ConfigError, match="evaluation_only.*never train"):
        build_training_data(DataSection(dataset="ncl_storm_1996", split=None), 2, 0)


def test_equator_mirror_reflects_half_the_windows_and_flips_v(cam_like, tmp_path, monkeypatch):
    """data.mirror_equator: about half the windows come reversed in latitude with V negated; the rest unchanged."""
    monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    ds = cam_like(nt=24, nlat=8, nlon=8, step_hours=3.0)  # latitudes -20..20, symmetric about the equator
    ds.to_netcdf(tmp_path / "sym.nc")
    plain = build_training_data(_section(str(tmp_path / "sym.nc"), samples_per_epoch=40, static=["cos_lat"]),
                                multiple=4, seed=0)
    mirrored = build_training_data(_section(str(tmp_path / "sym.nc"), samples_per_epoch=40, static=["cos_lat"],
                                            mirror_equator=True), multiple=4, seed=0)
    n_flipped = 0
    for i in range(40):
        a, b = plain.train[i], mirrored.train[i]
        assert torch.equal(a["input_times"], b["input_times"])  # the same window either way
        if torch.equal(a["inputs"], b["inputs"]):
            assert torch.equal(a["targets"], b["targets"])
            continue
        n_flipped += 1
        for key in ("inputs", "targets"):
            flipped = torch.flip(a[key], dims=(-2,))
            assert torch.equal(b[key][:, [0, 2]], flipped[:, [0, 2]])  # U, PSL: rows reversed
            assert torch.equal(b[key][:, 1], -flipped[:, 1])  # V: rows reversed and negated
        assert torch.equal(b["static"], torch.flip(a["static"], dims=(-2,)))
    assert 10 <= n_flipped <= 30


def test_equator_mirror_turns_a_northern_low_into_a_southern_one():
    """A counter-clockwise low north of the equator becomes a clockwise low as far south of it."""
    from climode.data.windows import mirror_item

    lat = np.linspace(-30, 30, 13)
    lon = np.linspace(0, 60, 13)
    y, x = np.meshgrid(lat - 15.0, lon - 30.0, indexing="ij")  # centre at 15N, 30E
    u, v = -y * np.exp(-(x**2 + y**2) / 50), x * np.exp(-(x**2 + y**2) / 50)  # counter-clockwise
    psl = -np.exp(-(x**2 + y**2) / 50)
    frame = torch.tensor(np.stack([u, v, psl])[None], dtype=torch.float32)
    out = mirror_item({"inputs": frame, "targets": frame}, np.array([False, True, False]))["inputs"][0]
    row = int(np.argmin(out[2].numpy().min(axis=1)))
    assert lat[row] == pytest.approx(-15.0)  # the low is now at 15S
    dv_dx = np.gradient(out[1].numpy(), axis=1)
    du_dy = np.gradient(out[0].numpy(), axis=0)
    vorticity = (dv_dx - du_dy)[row, 6]
    assert vorticity < 0  # clockwise: cyclonic in the Southern Hemisphere


def test_equator_mirror_needs_symmetric_latitudes(archive):
    _, pattern = archive  # latitudes -20..20 on 5 rows, padded to 8 at the northern end
    with pytest.raises(ConfigError, match="not symmetric about the equator"):
        build_training_data(_section(pattern, mirror_equator=True), multiple=4, seed=0)
