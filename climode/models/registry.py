"""Every forecasting model by name: Vid-ODE, its Table 4 ablations, the learned baselines, reference forecasts.

``get_model(name, config)`` builds a model from a config dict (or dataclass);
checkpoints store ``model_spec(model)`` = (name, config dict) and rebuild with
``get_model(*spec)``.  ``training_flags(name)`` says what the training recipe must
switch on that is not part of the model (the discriminators of ablations C-E).

Ablations (Vid-ODE paper, Table 4) are fixed switches on :class:`ModelConfig`; a
config that contradicts a fixed switch is a ConfigError:

- ``vidode_a`` ODE-Conv, the paper's "simple baseline ODE-Conv (A)": Table 4's (A) row
  repeats Table 1's KTH ODE-Conv row digit for digit, so (A) is the ODE-Conv baseline
  (channel-wise concatenated frames into the Conv-Encoder, convolutional ODE, frames
  decoded directly), the same model as ``ode_conv``; no adversarial loss;
- ``vidode_b`` vanilla Vid-ODE: ODE-ConvGRU encoder, decoder ODE, D as the frame;
- ``vidode_c`` = B + adversarial learning (``training_flags``: discriminators);
- ``vidode_d`` = C + optical-flow warping (the warped frame is the output);
- ``vidode_e`` = D + mask composition Psi = the full model (``vidode``).

Reference forecasts are resolved lazily from :mod:`climode.models.baselines.reference`
so that the registry works without it; each is built as ``cls(config=cfg, **runtime)``
(``get_model("wind_advection", {...}, lat=lat, lon=lon)``).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from climode.errors import ConfigError
from climode.models.config import ModelConfig, from_dict

log = logging.getLogger(__name__)

VIDODE = "Vid-ODE (Park et al., AAAI 2021)"
SIMPLE = "Simple Video Generation using Neural ODEs (Kanaa et al., 2019)"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it, its defaults and fixed switches, where it comes from."""

    name: str
    description: str
    paper: str
    module: str  # module holding the model class
    cls: str  # model class name
    config: str | None  # config class name in ``module`` (None: ModelConfig from climode.models.config)
    defaults: dict[str, Any] = field(default_factory=dict)  # overridable
    fixed: dict[str, Any] = field(default_factory=dict)  # define the entry; may not be changed
    training: dict[str, Any] = field(default_factory=dict)
    reference: bool = False  # a non-learned reference forecast (lazy, optional module)


_B = "climode.models.baselines."
_ENTRIES = [
    ModelEntry("vidode", "Vid-ODE: ODE-ConvGRU encoder, decoder ODE, G with warping and composition Psi",
               VIDODE, "climode.models.vidode", "VidODE", None, training={"discriminators": True}),
    ModelEntry("vidode_a", "Table 4 (A) ODE-Conv: concatenated frames -> Conv-Encoder, conv ODE, frames decoded",
               VIDODE, _B + "latent_ode", "LatentODE", "ODEConvConfig",
               fixed={"encoder": "concat", "dynamics": "conv", "variational": False},
               training={"discriminators": False}),
    ModelEntry("vidode_b", "Table 4 (B) vanilla Vid-ODE: ODE-ConvGRU, decoder ODE, D as the frame, no GAN",
               VIDODE, "climode.models.vidode", "VidODE", None,
               fixed={"use_convgru": True, "use_warp": False, "use_composition": False},
               training={"discriminators": False}),
    ModelEntry("vidode_c", "Table 4 (C) = B + adversarial learning (image and sequence discriminators)",
               VIDODE, "climode.models.vidode", "VidODE", None,
               fixed={"use_convgru": True, "use_warp": False, "use_composition": False},
               training={"discriminators": True}),
    ModelEntry("vidode_d", "Table 4 (D) = C + optical flow warping (warped frame is the output)",
               VIDODE, "climode.models.vidode", "VidODE", None,
               fixed={"use_convgru": True, "use_warp": True, "use_composition": False},
               training={"discriminators": True}),
    ModelEntry("vidode_e", "Table 4 (E) = D + mask composition: the full Vid-ODE",
               VIDODE, "climode.models.vidode", "VidODE", None,
               fixed={"use_convgru": True, "use_warp": True, "use_composition": True},
               training={"discriminators": True}),
    ModelEntry("ode_fc", "ODE-FC: concatenated frames -> Conv-Encoder -> latent vector, FC ODE, conv decoder",
               VIDODE, _B + "latent_ode", "LatentODE", "ODEFCConfig",
               fixed={"dynamics": "fc", "variational": False}),
    ModelEntry("ode_conv", "ODE-Conv: concatenated frames -> Conv-Encoder -> latent map, conv ODE, conv decoder",
               VIDODE, _B + "latent_ode", "LatentODE", "ODEConvConfig",
               fixed={"dynamics": "conv", "variational": False}),
    ModelEntry("latent_ode", "Latent ODE (Rubanova et al. 2019): backward ODE-RNN, sampled z0, ELBO",
               VIDODE, _B + "latent_ode", "LatentODE", "LatentODEConfig",
               fixed={"variational": True}),
    ModelEntry("convgru", "ConvGRU over the observed frames, time gaps ignored, autoregressive decoding",
               VIDODE, _B + "recurrent", "ConvGRUBaseline", "ConvGRUConfig", fixed={"time_mode": "none"}),
    ModelEntry("convgru_dt", "ConvGRU-Δt: the time gap is an extra input channel",
               VIDODE, _B + "recurrent", "ConvGRUBaseline", "ConvGRUDeltaConfig", fixed={"time_mode": "delta"}),
    ModelEntry("convgru_decay", "ConvGRU-Decay: h <- exp(-relu(w*Δt + b)) * h before each update (RNN-Decay)",
               VIDODE, _B + "recurrent", "ConvGRUBaseline", "ConvGRUDecayConfig", fixed={"time_mode": "decay"}),
    ModelEntry("vid_rnn", "Vid-RNN: Vid-ODE with ConvGRU steps instead of ODE solves, interpolated states",
               VIDODE, _B + "recurrent", "VidRNN", "VidRNNConfig", training={"discriminators": True}),
    ModelEntry("simple_ode", "non-recurrent encoder-ODE-decoder with the latent-matching loss (Eq. 1)",
               SIMPLE, _B + "simple_ode", "SimpleODE", "SimpleODEConfig"),
    ModelEntry("simple_ode_vae", "RNN encoder-ODE-decoder trained on the ELBO (Eq. 2)",
               SIMPLE, _B + "simple_ode", "SimpleODEVAE", "SimpleODEVAEConfig"),
    ModelEntry("persistence", "persistence: the last observed frame at every query time",
               "reference forecast", _B + "reference", "Persistence", "ReferenceConfig", reference=True),
    ModelEntry("pysteps_lk", "pysteps extrapolation with Lucas-Kanade optical flow",
               "reference forecast", _B + "reference", "PystepsExtrapolation", "ExtrapolationConfig",
               fixed={"method": "LK"}, reference=True),
    ModelEntry("pysteps_vet", "pysteps extrapolation with variational echo tracking (VET) flow",
               "reference forecast", _B + "reference", "PystepsExtrapolation", "ExtrapolationConfig",
               fixed={"method": "VET"}, reference=True),
    ModelEntry("frame_blend", "frame blending: linear cross-fade between the observed frames around each query",
               "reference interpolation", _B + "interpolation", "FrameBlend", "InterpolationConfig", reference=True),
    ModelEntry("flow_interpolation", "both neighbours warped halfway along OpenCV DIS optical flow, then blended",
               "reference interpolation", _B + "interpolation", "FlowInterpolation", "InterpolationConfig",
               reference=True),
    ModelEntry("wind_advection", "semi-Lagrangian advection of the fields by the observed winds",
               "reference forecast", _B + "reference", "WindAdvection", "WindAdvectionConfig", reference=True),
]
_REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def list_models() -> list[ModelEntry]:
    """All registered models, in registration order (``.name``, ``.description``, ``.paper``)."""
    return list(_ENTRIES)


def model_entry(name: str) -> ModelEntry:
    """The entry of ``name``; ConfigError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}") from None


def training_flags(name: str) -> dict[str, Any]:
    """Recipe switches that belong to training, not the model (e.g. ``{"discriminators": True}``)."""
    return {"discriminators": False, **model_entry(name).training}


def _import(entry: ModelEntry):
    try:
        return importlib.import_module(entry.module)
    except ImportError as exc:
        raise ConfigError(f"model {entry.name!r} is not available: cannot import {entry.module} ({exc})") from exc


def _model_class(entry: ModelEntry) -> type:
    return getattr(_import(entry), entry.cls)


def config_class(name: str) -> type:
    """The config dataclass of ``name``."""
    entry = model_entry(name)
    if entry.config is None:
        return ModelConfig
    return getattr(_import(entry), entry.config)


def _field_default(cls: type | None, key: str) -> Any:
    for f in dataclasses.fields(cls) if cls is not None else ():
        if f.name == key:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return dataclasses.MISSING


def _apply_fixed(entry: ModelEntry, cls: type | None, values: dict[str, Any], prefix: str = "",
                 explicit: bool = False) -> dict[str, Any]:
    """Set the entry's fixed switches; a value contradicting one is an error unless it is the class default.

    ``explicit``: the values were written by a user (a recipe), so even the class default is an error.
    """
    out = dict(values)
    for key, want in entry.fixed.items():
        same = (lambda a, b: str(a).upper() == str(b).upper()) if isinstance(want, str) else (lambda a, b: a == b)
        if key in out and not same(out[key], want) and (explicit or not same(out[key], _field_default(cls, key))):
            raise ConfigError(
                f"{prefix}{key}: model {entry.name!r} fixes {key}={want!r}; got {out[key]!r} (pick another model name)"
            )
        out[key] = want
    return out


def build_config(name: str, config: dict | Any | None = None, *, prefix: str = "", explicit: bool = False):
    """The config dataclass for ``name`` from a dict (defaults and fixed switches applied) or a dataclass.

    A dict is read as overrides of the entry's defaults; fixed switches are then set;
    every value is type-checked against the config class (errors name ``prefix + key``).
    A dataclass (or a dict from ``to_dict()``) may hold the class default where the
    entry fixes another value (it is replaced); any other contradiction is an error.
    ``explicit=True`` (a recipe's own keys) makes every contradiction an error.
    """
    entry = model_entry(name)
    cls = config_class(name)
    if config is None:
        config = {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        if cls is not None and not isinstance(config, cls):
            raise ConfigError(f"model {name!r} takes a {cls.__name__}, got {type(config).__name__}")
        current = {k: getattr(config, k) for k in entry.fixed if hasattr(config, k)}
        fixed = _apply_fixed(entry, cls, current)
        return dataclasses.replace(config, **fixed) if fixed != current else config
    if not isinstance(config, dict):
        raise ConfigError(f"config of model {name!r} must be a mapping or a dataclass, got {type(config).__name__}")
    values = _apply_fixed(entry, cls, {**entry.defaults, **config}, prefix, explicit=explicit)
    if cls is None:
        return values
    return from_dict(cls, values, prefix=prefix, check_types=True)


def get_model(name: str, config: dict | Any | None = None, **runtime: Any) -> nn.Module:
    """Build model ``name`` from ``config`` (dict or dataclass); remembers (name, config) for checkpoints.

    ``runtime`` holds data that is not configuration and goes to the constructor of
    reference forecasts (``lat``, ``lon``, ``mean``, ``std`` of ``wind_advection``).
    """
    entry = model_entry(name)
    model_cls = _model_class(entry)
    cfg = build_config(name, config)
    if entry.reference:
        model = model_cls(config=cfg, **runtime)
    elif runtime:
        raise ConfigError(f"model {name!r} takes no arguments besides its config; got {', '.join(runtime)}")
    else:
        model = model_cls(cfg)
    model.registry_name = name
    log.debug("built model %s (%s)", name, model_cls.__name__)
    return model


def model_spec(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """(name, config dict) to store in a checkpoint; ``get_model(*spec)`` rebuilds the model."""
    name = getattr(model, "registry_name", None)
    if name is None:
        raise ConfigError("model was not built by climode.models.registry.get_model; its name is unknown")
    cfg = getattr(model, "config", None)
    if cfg is None:
        data: dict[str, Any] = {}
    elif dataclasses.is_dataclass(cfg):
        data = dataclasses.asdict(cfg)
    else:
        data = dict(cfg)
    return name, data
