"""Refuse to score a checkpoint on data it was trained on.

``climode evaluate`` scores on a held-out split; this module checks, from the
checkpoint's sidecar (its recipe's data section), that the windows it is asked
to score cannot come from its training data:

- synthetic worlds: the realisations (seeds) of the scored split must not be
  among those the checkpoint trained on;
- file datasets: either other files than the training files (held-out files),
  or the same files with a time period for the scored split in the recipe's
  ``data.periods`` (periods never overlap, see ``check_periods``) that is not
  the training split's;
- video benchmarks: a split other than the one trained on (and not one that
  contains it).

Anything else is a :class:`~climode.errors.ConfigError` with a one-line fix.
"""

from __future__ import annotations

import os
from typing import Any

from climode.data.selection import catalog_entry, is_video, recipe_seeds
from climode.data.video import SYNTHETIC_DEFAULTS
from climode.errors import ConfigError
from climode.models.checkpoint_meta import CheckpointMeta
from climode.training.recipe import DataSection

#: video splits that contain another (``all`` contains every split)
_CONTAINS = {"all": None, "train": {"train_dev", "validation"}}


def _video_overlap(a: str | None, b: str | None, seeded: bool = False) -> bool:
    """Whether video splits ``a`` and ``b`` share clips; ``seeded``: generated splits, each drawn
    from its own seed (bouncing balls, moving digits), share clips only when they are the same split."""
    a, b = a or "train", b or "train"
    if a == b or "all" in (a, b):
        return True
    if seeded:
        return False
    return b in (_CONTAINS.get(a) or ()) or a in (_CONTAINS.get(b) or ())


def _files(dataset: str) -> set[str]:
    from climode.data.open import resolve_files

    try:
        return {os.path.realpath(str(f)) for f in resolve_files(dataset)}
    except Exception:  # noqa: BLE001 - data not on this machine: nothing to compare
        return set()


def recipe_section(recipe_data: dict[str, Any]) -> DataSection:
    """The data section of a checkpoint's recipe (``meta["recipe"]["data"]``) without keys it does not know."""
    allowed = set(DataSection.__dataclass_fields__)
    return DataSection(**{k: v for k, v in recipe_data.items() if k in allowed})


def check_held_out(meta: CheckpointMeta, data: str, split: str, n_sequences: int) -> None:
    """ConfigError unless scoring ``split`` of ``data`` avoids what the checkpoint (``meta``) trained on."""
    recipe_data = dict(meta.recipe_data)
    trained = recipe_data.get("dataset")
    trained_split = recipe_data.get("split")
    if trained is None:
        return  # no recipe in the sidecar (a hand-made checkpoint): nothing to compare
    if is_video(data):
        seeded = data in SYNTHETIC_DEFAULTS and not recipe_data.get("seeds")  # default seeds: one per split
        if trained == data and _video_overlap(trained_split, split, seeded):
            raise ConfigError(f"the checkpoint was trained on the {trained_split} split of {data}, which holds the "
                              f"{split} split it is asked to score; score it on a held-out split (--split test)")
        return
    entry = catalog_entry(data)
    if entry is not None and entry.driver == "synthetic":
        if trained != data:
            return
        section = recipe_section(recipe_data)
        seen = set(recipe_seeds(section, entry, trained_split, section.n_sequences))
        section.seeds = None
        scored = set(recipe_seeds(section, entry, split, n_sequences))
        both = sorted(seen & scored)
        if both:
            raise ConfigError(f"the checkpoint was trained on seeds {both[:5]} of {data}, which the {split} split "
                              f"would score; score it on a held-out split (--split test)")
        return
    shared = _files(data) & _files(trained) if not is_video(trained) else set()
    if not shared:
        return  # held-out files
    periods = recipe_data.get("periods") or {}
    example = f"{split}: 2014-01-01/2015-12-31"
    if split not in periods or trained_split is None or trained_split == split:
        what = ("trained on the whole of it" if trained_split is None or not periods
                else f"trained on its {trained_split} split")
        raise ConfigError(f"{data} has no held-out {split} period and the checkpoint was {what}; train with "
                          f"data.periods giving {split} its own period (e.g. {example}) or score other files "
                          f"with --data")
