"""The sequences a recipe's data section selects, ready to cut windows from, and their static channels.

:func:`climate_sequences` gives climate fields (synthetic realisations or file
archives, cut to the region and padded for the model's stride);
:func:`video_sequences` gives the frames of a video benchmark;
:func:`static_channels` the time-invariant inputs a section asks for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from climode.basins import subset
from climode.basins.tiles import pad_dataset_with_nan
from climode.data.open import open_dataset
from climode.data.selection import DataSelection, catalog_entry, recipe_seeds, split_period
from climode.data.synthetic.hurricanes import land_sea_mask
from climode.data.video import open_video_dataset
from climode.data.windows import StaticChannels
from climode.errors import ConfigError, DataError

__all__ = ["WINDOW_CHUNKS", "climate_sequences", "static_channels", "video_sequences"]

#: Dask chunks of file-backed training data: one time step, so a window reads only its own steps.
WINDOW_CHUNKS: dict[str, int] = {"time": 1}


def climate_sequences(
    section: DataSelection,
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
    it, and :class:`~climode.data.windows.WindowDataset` reads each window in the worker that draws it.
    ``validate`` is passed to :func:`climode.open_dataset` for files.
    """
    entry = catalog_entry(section.dataset)
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
                                "fix data.periods (climode evaluate: --period)")
        in_memory = False
    out = []
    for ds in datasets:
        ds = subset(ds, section.region)
        ds, _ = pad_dataset_with_nan(ds, multiple)
        out.append(ds.load() if in_memory else ds)
    return out


def video_sequences(section: DataSelection, split: str | None) -> np.ndarray:
    """Frames [N, T, C, H, W] in [0, 1] of a video benchmark.

    ``generator_args`` go to the generated benchmarks (e.g. ``channels: 3``, ``colored: true``,
    ``n_frames``, ``n_sequences`` for bouncing balls).
    """
    videos = open_video_dataset(section.dataset, split=split or "train", size=section.frame_size or 64,
                                **section.generator_args)
    return videos.to_array(max_clips=section.n_clips)


def static_channels(section: DataSelection, reference: xr.Dataset) -> StaticChannels | None:
    """The static channels ``data.static`` asks for (``cos_lat``, ``land_sea``) on ``reference``'s grid."""
    if not section.static:
        return None
    land = None
    if "land_sea" in section.static:
        land = land_sea_mask(reference["lat"].values, reference["lon"].values)
    return StaticChannels(cos_lat="cos_lat" in section.static, land_sea_mask=land)
