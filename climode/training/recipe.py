"""Training recipes: YAML files validated into typed config objects.

A recipe has five sections (``model``, ``data``, ``optim``, ``train``, ``loss``)
plus a name and description.  Unknown keys and bad values are errors that name
the key and what is allowed; ``--set section.key=value`` overrides any entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from climode.errors import ConfigError
from climode.models.config import from_dict
from climode.training.losses import LossWeights


@dataclass
class ModelSection:
    """Which model (a name of :mod:`climode.models.registry`) and its config entries."""

    name: str = "vidode"
    config: dict[str, Any] = field(default_factory=dict)


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

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.batch_size}")
        allowed_static = {"cos_lat", "land_sea"}
        bad = sorted(set(self.static) - allowed_static)
        if bad:
            raise ConfigError(f"data.static has unknown channel {bad[0]!r}; allowed: {', '.join(sorted(allowed_static))}")
        from climode.data.sampling import get_protocol

        try:
            get_protocol(self.protocol, **self.protocol_args)
        except ConfigError as exc:
            raise ConfigError(f"data.protocol: {exc}") from exc


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
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")


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
    discriminators: bool = False
    compile: bool = False
    device: str = "auto"
    #: on CPU, have glibc reuse freed tensor memory instead of mapping fresh pages every step
    #: (faster; skipped when the model's ``memory_saving`` asks for the smallest peak instead)
    keep_freed_memory: bool = True
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_minutes is None and self.epochs is None:
            raise ConfigError("train needs a budget: set max_steps, max_minutes or epochs")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device {self.device!r} is unknown; use auto, cpu, cuda or cuda:N")
        if self.checkpoint_every < 1 or self.validate_every < 1 or self.keep < 1:
            raise ConfigError("train.checkpoint_every, validate_every and keep must be >= 1")


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
            kwargs[key] = from_dict(cls, data[key] or {}, prefix=f"{key}.")
    return Recipe(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (path, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    return path, yaml.safe_load(value)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe, apply ``--set`` overrides, and validate it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"recipe {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    data = apply_overrides(data, list(overrides or []))
    try:
        return recipe_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc
