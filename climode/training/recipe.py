"""Training recipes: YAML files validated into typed config objects.

A recipe has five sections (``model``, ``data``, ``optim``, ``train``, ``loss``)
plus a name and description.  Unknown keys and bad values are errors that name
the key and what is allowed; ``--set section.key=value`` overrides any entry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climode.config import Override, from_dict, load_config
from climode.data.selection import parse_period
from climode.errors import ConfigError
from climode.training.losses import LossWeights


@dataclass
class ModelSection:
    """Which model (a name of :mod:`climode.models.registry`) and its config entries.

    The config is validated against the model's config class when the recipe is
    read (``climode train --check`` catches a bad entry); the trainer completes it
    with what the data decides (channels, time unit).
    """

    name: str = "vidode"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from climode.models.registry import build_config, model_entry

        try:
            model_entry(self.name)
        except ConfigError as exc:
            raise ConfigError(f"model.name: {exc}") from exc
        try:
            build_config(self.name, self.config, prefix="model.config.", explicit=True)
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if "model." in text else f"model.config ({self.name}): {text}") from exc


#: the split every evaluation scores on by default; training on it is refused (see DataSection)
TEST_SPLIT = "test"


@dataclass
class DataSection:
    """Where training windows come from and how they are drawn."""

    dataset: str = "synthetic_hurricanes"
    variables: list[str] = field(default_factory=lambda: ["U850", "V850", "PSL"])
    split: str | None = "train"
    seeds: list[int] | None = None  # explicit realisations of a synthetic dataset
    n_sequences: int = 8  # realisations taken from the split when seeds is None
    generator_args: dict[str, Any] = field(default_factory=dict)
    region: str | None = None  # basin code, alias or box; None = the data's domain
    validation_split: str | None = "validation"
    validation_sequences: int = 1
    validation_windows: int = 32
    protocol: str = "cam5"
    protocol_args: dict[str, Any] = field(default_factory=dict)
    static: list[str] = field(default_factory=list)  # cos_lat, land_sea
    batch_size: int = 8
    num_workers: int = 0
    samples_per_epoch: int | None = 256
    frame_size: int | None = None  # video: frames resized to this square size
    n_clips: int | None = None  # video: number of clips to use
    #: file datasets: the time period of each split, e.g. {train: 1996-01-01/2003-12-31,
    #: validation: 2004-01-01/2004-12-31, test: 2005-01-01/2005-12-31} (inclusive ISO dates)
    periods: dict[str, str] | None = None
    #: augment: reflect half the training windows about the equator (rows reversed, V negated), so a
    #: Northern Hemisphere state becomes a Southern one; needs latitudes symmetric about 0
    mirror_equator: bool = False
    #: train on the held-out test split anyway (every later score on it is then a score on training data)
    unsafe_train_on_test_split: bool = False

    def __post_init__(self) -> None:
        if self.split == TEST_SPLIT and not self.unsafe_train_on_test_split:
            raise ConfigError(
                "data.split: test trains on the held-out test split, so every score on it would be a score on "
                "training data; train on split train (validate on validation), or set "
                "data.unsafe_train_on_test_split: true to do it anyway")
        if not self.variables:
            raise ConfigError("data.variables must name at least one variable, e.g. [U850, V850, PSL]")
        if self.periods:
            check_periods(self.periods)
        _at_least("data", {"batch_size": 1, "n_sequences": 1, "num_workers": 0, "samples_per_epoch": 1,
                           "validation_sequences": 1, "validation_windows": 1, "frame_size": 1, "n_clips": 1}, self)
        allowed_static = {"cos_lat", "land_sea"}
        bad = sorted(set(self.static) - allowed_static)
        if bad:
            raise ConfigError(f"data.static has unknown channel {bad[0]!r}; allowed: {', '.join(sorted(allowed_static))}")
        from climode.data.sampling import get_protocol

        try:
            get_protocol(self.protocol, **self.protocol_args)
        except ConfigError as exc:
            raise ConfigError(f"data.protocol: {exc}") from exc


def check_periods(periods: dict[str, Any]) -> None:
    """Every period parses, and no two splits share a time."""
    bounds = {}
    for name, text in periods.items():
        start, end = parse_period(name, text)
        # an end date covers its whole day (or hour, minute): compare at the finest unit
        bounds[name] = (np.datetime64(start, "s"), np.datetime64(end) + 1 - np.timedelta64(1, "s"))
    ordered = sorted(bounds.items(), key=lambda kv: kv[1][0])
    for (a, (_, a_end)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
        if b_start <= a_end:
            raise ConfigError(f"data.periods: splits {a!r} and {b!r} overlap; held-out periods must not share a time "
                              "with the training period")


@dataclass
class OptimSection:
    """The paper's optimiser and schedule by default: Adamax, lr 1e-3, x0.99 per epoch, floor lr/10."""

    name: str = "adamax"
    lr: float = 1e-3
    decay: float = 0.99
    min_lr_factor: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = None
    disc_lr: float | None = None

    def __post_init__(self) -> None:
        if self.name not in ("adamax", "adam", "adamw"):
            raise ConfigError(f"optim.name {self.name!r} is unknown; use adamax, adam or adamw")
        for key in ("lr", "grad_clip", "disc_lr"):
            value = getattr(self, key)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"optim.{key} must be a positive number{'' if key == 'lr' else ' or null'}, got {value}")
        if not 0 < self.decay <= 1:
            raise ConfigError(f"optim.decay (the per-epoch lr factor) must be in (0, 1], got {self.decay}")
        if not 0 <= self.min_lr_factor <= 1:
            raise ConfigError(f"optim.min_lr_factor (the lr floor as a fraction of lr) must be in [0, 1], "
                              f"got {self.min_lr_factor}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass
class TrainSection:
    """How long to train, how often to checkpoint and validate, and on what."""

    seed: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None
    epochs: int | None = None
    checkpoint_every: int = 100
    validate_every: int = 200
    keep: int = 3
    #: adversarial learning (D_img, D_seq): None = the model's registry flag
    #: (``registry.training_flags``: on for vidode, vidode_c-e, vid_rnn); true/false overrides it
    discriminators: bool | None = None
    compile: bool = False
    device: str = "auto"
    #: on CPU, tune glibc malloc: reuse freed tensor memory instead of mapping fresh pages every
    #: step (faster), or with the model's ``memory_saving`` return blocks of 8 MiB and more at
    #: once (the smallest peak); false leaves glibc as it is
    keep_freed_memory: bool = True
    log_every: int = 10
    #: start of a fresh run: None = the layers' default initialisation; "persistence" = Vid-ODE's
    #: composition starts as the previous frame (G's last convolution outputs zero flow and
    #: difference and a mask of sigmoid(4) = 0.98)
    init: str | None = None
    #: fine-tuning: a checkpoint (.json/.safetensors, run directory, or a shipped model's name such as
    #: hurricanes_cpu) whose weights start a fresh run; its model and layer shapes must be the recipe's
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_minutes is None and self.epochs is None:
            raise ConfigError("train needs a budget: set max_steps, max_minutes or epochs")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device {self.device!r} is unknown; use auto, cpu, cuda or cuda:N")
        _at_least("train", {"seed": 0, "max_steps": 1, "epochs": 1, "checkpoint_every": 1, "validate_every": 1,
                            "keep": 1, "log_every": 1}, self)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"train.max_minutes must be a positive number of minutes or null, got {self.max_minutes}")
        if self.init not in (None, "persistence"):
            raise ConfigError(f"train.init {self.init!r} is unknown; use persistence or null")


def _at_least(section: str, minima: dict[str, int], values: Any) -> None:
    """ConfigError naming ``section.key`` when a (non-null) value is below its minimum."""
    for key, low in minima.items():
        value = getattr(values, key)
        if value is not None and value < low:
            raise ConfigError(f"{section}.{key} must be >= {low}, got {value}")


@dataclass
class Recipe:
    """One experiment: model, data, optimiser, training budget and loss weights."""

    name: str
    description: str = ""
    trained_here: bool = True
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=lambda: TrainSection(max_steps=1000))
    loss: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        """Validate a recipe mapping (what :func:`load_config` calls)."""
        return recipe_from_dict(data)


_SECTIONS = {"model": ModelSection, "data": DataSection, "optim": OptimSection, "train": TrainSection, "loss": LossWeights}


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """Validate a recipe mapping into a :class:`Recipe`."""
    if not isinstance(data, dict):
        raise ConfigError("a recipe must be a mapping of sections")
    allowed = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"unknown recipe key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    if "name" not in data:
        raise ConfigError("a recipe needs a name")
    kwargs = {k: v for k, v in data.items() if k not in _SECTIONS}
    for key, cls in _SECTIONS.items():
        if key in data:
            kwargs[key] = from_dict(cls, data[key] or {}, prefix=f"{key}.", check_types=True)
    for key in ("name", "description"):
        if key in kwargs and not isinstance(kwargs[key], str):
            raise ConfigError(f"{key} must be a string, got {kwargs[key]!r}")
    if not isinstance(kwargs.get("trained_here", True), bool):
        raise ConfigError(f"trained_here must be true or false, got {kwargs['trained_here']!r}")
    return Recipe(**kwargs)


def load_recipe(path: str | Path, overrides: list[Override] | None = None) -> Recipe:
    """Read a YAML recipe, apply ``--set`` overrides, and validate it."""
    return load_config(Recipe, path, overrides, label="recipe")
