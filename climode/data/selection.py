"""Which data a recipe's data section names: catalog entry, video or fields, realisations and periods of a split.

The section is anything with the fields of :class:`DataSelection` (the recipe's
``DataSection`` is one); the data layer reads it and never imports the recipe.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from climode.data.catalog import CatalogEntry, load_catalog
from climode.data.open import is_catalog_name
from climode.errors import ConfigError

__all__ = [
    "DataSelection",
    "catalog_entry",
    "is_video",
    "parse_period",
    "recipe_seeds",
    "split_period",
    "video_datasets",
]


class DataSelection(Protocol):
    """What the data layer reads of a recipe's data section (``climode.training.recipe.DataSection``)."""

    dataset: str
    variables: list[str]
    split: str | None
    seeds: list[int] | None
    generator_args: dict[str, Any]
    region: str | None
    static: list[str]
    frame_size: int | None
    n_clips: int | None
    periods: dict[str, str] | None


def catalog_entry(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name``, or None for a path, a glob or a name the catalog lacks."""
    if not is_catalog_name(name):
        return None  # a path or glob
    catalog = load_catalog()
    return catalog.entries.get(name)


def video_datasets() -> tuple[str, ...]:
    """Names of the catalog's video benchmarks (``driver: video``)."""
    return tuple(name for name, entry in load_catalog().entries.items() if entry.driver == "video")


def is_video(name: str | None) -> bool:
    """True when ``name`` is a video benchmark of the catalog (``driver: video``), not climate fields."""
    return name is not None and name in video_datasets()


def recipe_seeds(section: DataSelection, entry: CatalogEntry, split: str | None, count: int) -> list[int]:
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


def parse_period(name: str, text: Any) -> tuple[str, str]:
    """``"START/END"`` (ISO dates or date-times, inclusive) as two strings; ConfigError otherwise."""
    parts = str(text).split("/")
    example = "e.g. 2004-01-01/2004-12-31"
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"data.periods.{name}: {text!r} is not START/END ({example})")
    start, end = (p.strip() for p in parts)
    try:
        lo, hi = np.datetime64(start), np.datetime64(end)
    except ValueError:
        raise ConfigError(f"data.periods.{name}: {text!r} has a date that is not ISO 8601 ({example})") from None
    if hi < lo:
        raise ConfigError(f"data.periods.{name}: {text!r} ends before it starts")
    return start, end


def split_period(section: DataSelection, split: str | None) -> tuple[str, str] | None:
    """The time period of ``split`` of a file dataset from ``data.periods`` (None: the whole file)."""
    if split is None or not section.periods:
        return None
    if split not in section.periods:
        raise ConfigError(f"data.periods has no period for split {split!r} (it has {', '.join(section.periods)}); "
                          f"add one, e.g. {split}: 2005-01-01/2005-12-31")
    return parse_period(split, section.periods[split])
