"""What a checkpoint's JSON sidecar records about its model, as one typed record.

The trainer writes a :class:`CheckpointMeta` next to the weights; the
forecaster, the evaluation, the zoo and batch runs read its fields instead of
string keys into a dict.  It lives with the models because it describes a
trained model (which model, its config, the variables and grid it was trained
on) and every package that reads it sits above ``climode.models``; it imports
nothing but the standard library.

Sidecars written by older climode versions, or by hand, lack some keys: those
fields are None (or empty).  Keys this version does not know are kept in
``extra`` and written back unchanged, so nothing a newer or older version wrote
is lost on a round trip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckpointMeta:
    """The sidecar of one checkpoint (``model-<step>.json``)."""

    #: the registry name of the model (:mod:`climode.models.registry`)
    model: str | None = None
    #: the model's config entries (its config class's ``to_dict``)
    config: dict[str, Any] | None = None
    #: the channels the model predicts, in order
    variables: list[str] | None = None
    #: per-variable mean and standard deviation (:class:`climode.data.normalize.Normalizer` ``to_dict``)
    normalization: dict[str, Any] | None = None
    units: dict[str, str] = field(default_factory=dict)
    #: "hour" for climate fields, "frame" for video
    time_unit: str | None = None
    grid: dict[str, Any] = field(default_factory=dict)
    #: static input channels (cos_lat, land_sea)
    static: list[str] = field(default_factory=list)
    #: the window protocol trained on: its name and parameters
    protocol: dict[str, Any] = field(default_factory=dict)
    #: the longest lead trained on, in ``time_unit`` (forecasts warn past it)
    max_lead: float | None = None
    #: the whole recipe trained by (:meth:`climode.training.recipe.Recipe.to_dict`)
    recipe: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    trained_on: str | None = None
    #: how it was trained: ``discriminators`` (bool), ``precision`` ("float32" or "bfloat16")
    training: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    description: str | None = None
    disclaimer: str | None = None
    #: the zoo: the run checkpoint a bundled model was copied from
    exported_from: str | None = None
    # written when the weights are saved
    schema_version: int | None = None
    climode_version: str | None = None
    weights: str | None = None
    sha256: str | None = None
    saved_at: str | None = None
    uuid: str | None = None
    #: sidecar keys this version does not know, kept as they are
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMeta:
        """The record of a sidecar mapping; unknown keys go to ``extra``, missing ones keep their defaults."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("step") is not None:
            values["step"] = int(values["step"])
        else:
            values.pop("step", None)
        if values.get("max_lead") is not None:
            values["max_lead"] = float(values["max_lead"])
        for name in ("units", "grid", "static", "protocol", "recipe", "training"):
            if name in values and values[name] is None:
                del values[name]  # written as null: the empty default
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The sidecar mapping: every field that is set, and the ``extra`` keys."""
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = value
        return out

    def missing(self, *names: str) -> list[str]:
        """Those of ``names`` the sidecar does not give (None)."""
        return [name for name in names if getattr(self, name) is None]

    @property
    def recipe_data(self) -> dict[str, Any]:
        """The recipe's data section (dataset, split, seeds, ...); empty for a hand-made checkpoint."""
        return dict(self.recipe.get("data") or {})

    @property
    def precision(self) -> str | None:
        """The precision the model was trained in ("float32", "bfloat16"), None if not recorded."""
        value = self.training.get("precision")
        return None if value is None else str(value)

    @property
    def is_video(self) -> bool:
        """Whether the model forecasts video frames (``time_unit`` frame) rather than climate fields."""
        return self.time_unit == "frame"


__all__ = ["CheckpointMeta"]
