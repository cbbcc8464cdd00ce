"""Turn a recipe's data section into training and validation window datasets."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from climode.data.loader import StaticChannels, WindowDataset
from climode.data.normalize import Normalizer, compute_stats
from climode.data.sampling import get_protocol
from climode.errors import ConfigError
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

    catalog = load_catalog()
    return catalog.entries.get(name)


def climate_sequences(section: DataSection, split: str | None, count: int, multiple: int) -> list[xr.Dataset]:
    """Open the recipe's climate sequences (synthetic realisations or files), padded for the model."""
    from climode.basins import subset
    from climode.basins.tiles import pad_dataset_with_nan
    from climode.data.open import open_dataset

    entry = _catalog_entry(section.dataset)
    if entry is not None and entry.driver == "synthetic":
        if section.seeds is not None and split == section.split:
            seeds = list(section.seeds)
        else:
            lo, hi = entry.splits[split] if split else (0, count - 1)
            seeds = list(range(lo, min(lo + count, hi + 1)))
        generate = entry.load_generator()
        args = {**dict(entry.args), **section.generator_args}
        raw = [generate(seed=s, **args) for s in seeds]
        datasets = [open_dataset(ds, section.variables) for ds in raw]
        for ds, s in zip(datasets, seeds):
            ds.attrs["climode_seed"] = s
    else:
        datasets = [open_dataset(section.dataset, section.variables)]
    out = []
    for ds in datasets:
        ds = subset(ds, section.region)
        ds, _ = pad_dataset_with_nan(ds, multiple)
        out.append(ds.load())
    return out


def video_sequences(section: DataSection, split: str | None) -> np.ndarray:
    """Frames [N, T, C, H, W] in [0, 1] of a video benchmark."""
    from climode.data.video import open_video_dataset

    videos = open_video_dataset(section.dataset, split=split or "train", size=section.frame_size or 64)
    return videos.to_array(max_clips=section.n_clips)


def static_channels(section: DataSection, reference: xr.Dataset) -> StaticChannels | None:
    if not section.static:
        return None
    land = None
    if "land_sea" in section.static:
        from climode.data.synthetic.hurricanes import land_sea_mask

        land = land_sea_mask(reference["lat"].values, reference["lon"].values)
    return StaticChannels(cos_lat="cos_lat" in section.static, land_sea_mask=land)


def build_training_data(section: DataSection, multiple: int, seed: int) -> TrainingData:
    """Training and validation windows for a recipe, with statistics from the training data."""
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
    train_seqs = climate_sequences(section, section.split, section.n_sequences, multiple)
    normalizer = compute_stats(train_seqs, section.variables)
    static = static_channels(section, train_seqs[0])
    train = WindowDataset(train_seqs, section.variables, protocol, normalizer, seed=seed,
                          samples_per_epoch=section.samples_per_epoch, static=static)
    validation = None
    if section.validation_split:
        val_seqs = climate_sequences(section, section.validation_split, section.validation_sequences, multiple)
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
