"""Turn a recipe's data section into training and validation window datasets."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode.data.loader import StaticChannels, WindowDataset
from climode.data.normalize import Normalizer, compute_stats
from climode.data.sampling import get_protocol
from climode.errors import ConfigError, DataError
from climode.training.recipe import DataSection

log = logging.getLogger(__name__)

VIDEO_SETS = ("bouncing_balls", "moving_mnist", "kth", "penn_action", "moving_gif")


@dataclass
class TrainingData:
    """Window datasets plus what a checkpoint must remember about the data."""

    train: WindowDataset
    validation: WindowDataset | None
    normalizer: Normalizer
    variables: list[str]
    time_unit: str
    grid: dict[str, Any] = field(default_factory=dict)
    static: list[str] = field(default_factory=list)


def _catalog_entry(name: str):
    from climode.data.catalog import load_catalog
    from climode.data.open import is_catalog_name

    if not is_catalog_name(name):
        return None  # a path or glob
    catalog = load_catalog()
    return catalog.entries.get(name)


#: Dask chunks of file-backed training data: one time step, so a window reads only its own steps.
WINDOW_CHUNKS: dict[str, int] = {"time": 1}


def recipe_seeds(section: DataSection, entry, split: str | None, count: int) -> list[int]:
    """The realisations of a synthetic entry to use for ``split``.

    The recipe's ``seeds`` (for its own split) must lie in that split's seed
    range of the catalog; with ``split: null`` they must stay out of every
    held-out split (all but ``train``).  Otherwise the first ``count`` seeds of the split.
    """
    if section.seeds is not None and split == section.split:
        seeds = [int(s) for s in section.seeds]
        for seed in seeds:
            if split is not None:
                try:
                    entry.seed_for(split, seed)
                except ConfigError as exc:
                    raise ConfigError(f"recipe data.seeds: {exc}; pick seeds of split {split!r}") from None
                continue
            for name, (lo, hi) in entry.splits.items():
                if name != "train" and lo <= seed <= hi:
                    raise ConfigError(
                        f"recipe data.seeds: seed {seed} lies in split {name!r} of {entry.name!r} (seeds {lo}..{hi}) "
                        "but data.split is null; train on seeds outside the held-out splits or set data.split"
                    )
        return seeds
    if split is None:
        return list(range(count))
    lo = entry.seed_for(split)  # a ConfigError names the known splits
    hi = entry.splits[split][1]
    return list(range(lo, min(lo + count, hi + 1)))


def split_period(section: DataSection, split: str | None) -> tuple[str, str] | None:
    """The time period of ``split`` of a file dataset from ``data.periods`` (None: the whole file)."""
    from climode.training.recipe import parse_period

    if split is None or not section.periods:
        return None
    if split not in section.periods:
        raise ConfigError(f"data.periods has no period for split {split!r} (it has {', '.join(section.periods)}); "
                          f"add one, e.g. {split}: 2005-01-01/2005-12-31")
    return parse_period(split, section.periods[split])


def climate_sequences(
    section: DataSection,
    split: str | None,
    count: int,
    multiple: int,
    *,
    chunks: Any = None,
    validate: bool = True,
) -> list[xr.Dataset]:
    """Open the recipe's climate sequences, cut to its region and padded for the model's stride.

    Synthetic realisations are generated in memory and stay there (loaded).
    Files and catalog archives stay lazy and dask-backed (``chunks``, default
    :data:`WINDOW_CHUNKS`): nothing is read until a window or a statistic needs
    it, and :class:`WindowDataset` reads each window in the worker that draws it.
    ``validate`` is passed to :func:`climode.open_dataset` for files.
    """
    from climode.basins import subset
    from climode.basins.tiles import pad_dataset_with_nan
    from climode.data.open import open_dataset

    entry = _catalog_entry(section.dataset)
    if entry is not None and entry.driver == "synthetic":
        seeds = recipe_seeds(section, entry, split, count)
        generate = entry.load_generator()
        args = {**dict(entry.args), **section.generator_args}
        raw = [generate(seed=s, **args) for s in seeds]
        datasets = [open_dataset(ds, section.variables) for ds in raw]
        for ds, s in zip(datasets, seeds):
            ds.attrs["climode_seed"] = s
        in_memory = True
    else:
        if section.seeds is not None:
            raise ConfigError(
                f"recipe data.seeds picks realisations of a synthetic dataset, but {section.dataset!r} is not one; "
                "remove data.seeds"
            )
        datasets = [open_dataset(section.dataset, section.variables,
                                 chunks=WINDOW_CHUNKS if chunks is None else chunks, validate=validate)]
        period = split_period(section, split)
        if period is not None:
            datasets = [ds.sel(time=slice(*period)) for ds in datasets]
            if datasets[0].sizes["time"] == 0:
                raise DataError(f"{section.dataset}: no time step lies in the {split} period {'/'.join(period)}; "
                                "fix data.periods")
        in_memory = False
    out = []
    for ds in datasets:
        ds = subset(ds, section.region)
        ds, _ = pad_dataset_with_nan(ds, multiple)
        out.append(ds.load() if in_memory else ds)
    return out


def stats_key(section: DataSection) -> tuple[str, str] | None:
    """``(name, fingerprint)`` of the files a recipe trains on, or None for in-memory (synthetic) data."""
    from climode.data.normalize import files_fingerprint
    from climode.data.open import resolve_files

    entry = _catalog_entry(section.dataset)
    if entry is not None and entry.driver == "synthetic":
        return None
    files = resolve_files(section.dataset)
    identity = {
        "dataset": section.dataset,
        "variables": list(section.variables),
        "region": section.region,
        "mapping": dict(entry.variables) if entry is not None else {},
        "units": dict(entry.units) if entry is not None else {},
        "period": split_period(section, section.split),
    }
    name = entry.name if entry is not None else Path(files[0]).stem
    return name, files_fingerprint(files, **identity)


def training_stats(section: DataSection, train_seqs: list[xr.Dataset], multiple: int,
                   stats_path: str | os.PathLike | None = None) -> Normalizer:
    """Per-channel mean and standard deviation of the training data (the normalisation of every input).

    File archives: computed once, lazily with dask (a chunk-wise reduction over
    large chunks, never the whole archive in memory), and stored at
    ``stats_path`` or in :func:`~climode.data.normalize.stats_cache_dir` under a
    fingerprint of the files; later runs read them back until a file changes.
    Synthetic realisations (generated in memory each run): computed from them.
    """
    from climode.data.normalize import load_or_compute_stats, stats_cache_dir

    key = stats_key(section)
    if key is None:
        if stats_path is None:
            return compute_stats(train_seqs, section.variables)
        return load_or_compute_stats(stats_path, train_seqs, section.variables)
    name, fingerprint = key
    path = Path(stats_path) if stats_path is not None else stats_cache_dir() / f"{name}-{fingerprint[:16]}.json"

    def reduction_view() -> list[xr.Dataset]:
        # the same data in large chunks: a reduction over one-step chunks would be mostly task overhead
        return climate_sequences(section, section.split, section.n_sequences, multiple, chunks="auto", validate=False)

    return load_or_compute_stats(path, reduction_view, section.variables, key=fingerprint)


def video_sequences(section: DataSection, split: str | None) -> np.ndarray:
    """Frames [N, T, C, H, W] in [0, 1] of a video benchmark.

    ``generator_args`` go to the generated benchmarks (e.g. ``channels: 3``, ``colored: true``,
    ``n_frames``, ``n_sequences`` for bouncing balls).
    """
    from climode.data.video import open_video_dataset

    videos = open_video_dataset(section.dataset, split=split or "train", size=section.frame_size or 64,
                                **section.generator_args)
    return videos.to_array(max_clips=section.n_clips)


def static_channels(section: DataSection, reference: xr.Dataset) -> StaticChannels | None:
    if not section.static:
        return None
    land = None
    if "land_sea" in section.static:
        from climode.data.synthetic.hurricanes import land_sea_mask

        land = land_sea_mask(reference["lat"].values, reference["lon"].values)
    return StaticChannels(cos_lat="cos_lat" in section.static, land_sea_mask=land)


def build_training_data(section: DataSection, multiple: int, seed: int, *,
                        stats_path: str | os.PathLike | None = None) -> TrainingData:
    """Training and validation windows for a recipe, with statistics from the training data.

    ``stats_path``: where to store (and reuse) the statistics; by default file
    archives use the statistics cache (see :func:`training_stats`).
    """
    protocol = get_protocol(section.protocol, **section.protocol_args)
    if section.dataset in VIDEO_SETS:
        train_frames = video_sequences(section, section.split)
        val_frames = video_sequences(section, section.validation_split) if section.validation_split else None
        normalizer = Normalizer.identity([f"c{i}" for i in range(train_frames.shape[2])])
        variables = list(normalizer.variables)
        make = lambda frames, n, s: WindowDataset(frames, None, protocol, normalizer, seed=s, samples_per_epoch=n)  # noqa: E731
        train = make(train_frames, section.samples_per_epoch, seed)
        validation = make(val_frames, section.validation_windows, seed + 1) if val_frames is not None else None
        return TrainingData(train, validation, normalizer, variables, "frame",
                            grid={"shape": list(train_frames.shape[-2:])})
    entry = _catalog_entry(section.dataset)
    if entry is not None and entry.evaluation_only:
        raise ConfigError(f"{section.dataset!r} is marked evaluation_only in the catalog: never train, tune or select "
                          f"checkpoints on it; score a model on it with climode evaluate --data {section.dataset}")
    train_seqs = climate_sequences(section, section.split, section.n_sequences, multiple, validate=False)
    # files are validated by the statistics pass (a variable with no finite value is an error there)
    normalizer = training_stats(section, train_seqs, multiple, stats_path)
    static = static_channels(section, train_seqs[0])
    train = WindowDataset(train_seqs, section.variables, protocol, normalizer, seed=seed,
                          samples_per_epoch=section.samples_per_epoch, static=static)
    validation = None
    entry = _catalog_entry(section.dataset)
    is_file = entry is None or entry.driver != "synthetic"
    if section.validation_split and is_file and section.validation_split not in (section.periods or {}):
        raise ConfigError(
            f"data.validation_split {section.validation_split!r} on the file dataset {section.dataset!r} would validate "
            "on the training data; give each split a time period (data.periods: {train: 1996-01-01/2003-12-31, "
            f"{section.validation_split}: 2004-01-01/2004-12-31}}) or set data.validation_split: null")
    if section.validation_split:
        val_seqs = climate_sequences(section, section.validation_split, section.validation_sequences, multiple,
                                     validate=False)
        validation = WindowDataset(val_seqs, section.variables, protocol, normalizer, seed=seed + 1,
                                   samples_per_epoch=section.validation_windows, static=static)
    ref = train_seqs[0]
    lat, lon = ref["lat"].values, ref["lon"].values
    grid = {
        "lat": lat.tolist(),
        "lon": lon.tolist(),
        "dlat": float(np.diff(lat).mean()) if len(lat) > 1 else None,
        "dlon": float(np.diff(lon).mean()) if len(lon) > 1 else None,
        "shape": [len(lat), len(lon)],
        "region": section.region,
    }
    if section.protocol_args.get("step_hours") is None and getattr(protocol, "step_hours", None) is None:
        raise ConfigError("climate protocols need step_hours")
    return TrainingData(train, validation, normalizer, list(section.variables), "hour", grid=grid,
                        static=list(section.static))


def check_time_units(config: dict[str, Any], recipe_keys: set[str], data: TrainingData, protocol) -> None:
    """The model's time settings agree with the data and the protocol; ConfigError naming both otherwise.

    ``time_unit`` is the data's; ``decoder_step`` (the recursion's step, in that unit) may
    differ from the protocol's step (targets between its grid points take a partial step);
    ``time_scale`` must be set by the recipe when the data's unit is not the config
    class's default unit (a default of 10 frames would silently mean 10 hours).
    """
    from climode.models.registry import config_class

    name = config.get("_model")
    cls = config_class(name) if name else None
    fields = getattr(cls, "__dataclass_fields__", {})
    if "decoder_step" not in fields:
        return  # reference forecasts have no time settings
    unit = config.get("time_unit", fields["time_unit"].default)
    if unit != data.time_unit:
        raise ConfigError(f"model.config.time_unit is {unit!r} but the data are in {data.time_unit}s; "
                          f"set model.config.time_unit: {data.time_unit}")
    if "time_scale" not in recipe_keys and unit != fields["time_unit"].default:
        raise ConfigError(f"model.config.time_scale is the default {fields['time_scale'].default:g}, meant for "
                          f"{fields['time_unit'].default}s, but the data are in {unit}s; set model.config.time_scale "
                          f"(e.g. 24 for hours)")
    step = float(getattr(protocol, "step_hours", None) or 1.0) if data.time_unit == "hour" else 1.0
    decoder_step = float(config.get("decoder_step", fields["decoder_step"].default))
    if abs(decoder_step - step) > 1e-9 * max(step, 1.0):  # legitimate: off-grid times take a partial step
        log.info("decoder grid of %g %ss, protocol step of %g %ss: targets between grid points take a partial "
                 "decoder step (climode.models.decoder.partial_step)", decoder_step, unit, step, unit)

