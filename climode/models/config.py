"""Typed configuration of the Vid-ODE model.

One :class:`ModelConfig` holds every size, switch and solver setting.  The
``reference`` preset reproduces the published implementation's sizes
(128x128 RGB, generator about 1.9M parameters); ``tiny`` is for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from climode.config import from_dict
from climode.errors import ConfigError

FIXED_STEP_METHODS = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams", "heun2", "heun3")
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5")

#: what ``ModelConfig.memory_saving`` recomputes in the backward pass at each level
MEMORY_SAVING_LEVELS: dict[str, tuple[str, ...]] = {
    "decoder": ("G",),  # Conv-Decoder G and Psi, per output step
    "decoder_encoder": ("G", "E"),  # and the Conv-Encoder E
    "full": ("G", "encoder", "decoder_ode"),  # G, the whole ODE-ConvGRU encoder (E included), the decoder solve
}


@dataclass
class SolverConfig:
    """How one ODE is integrated with torchdiffeq.

    ``step_size`` applies to fixed-step methods and is in model time, i.e. in
    units of ``ModelConfig.time_scale`` physical time units (0.125 at
    ``time_scale=24`` hours is a 3-hour step).  Each solve takes full steps from
    its start and a shorter last step; ``None`` means one step per interval
    between the times the solve must visit, whatever its length.
    """

    method: str = "dopri5"
    rtol: float = 1e-3
    atol: float = 1e-4
    step_size: float | None = None
    adjoint: bool = False

    def __post_init__(self) -> None:
        if self.method not in FIXED_STEP_METHODS + ADAPTIVE_METHODS:
            raise ConfigError(
                f"solver method {self.method!r} is unknown; use one of "
                f"{', '.join(FIXED_STEP_METHODS + ADAPTIVE_METHODS)}"
            )
        if self.step_size is not None and self.step_size <= 0:
            raise ConfigError(f"solver step_size must be positive, got {self.step_size}")
        if self.rtol <= 0 or self.atol <= 0:
            raise ConfigError("solver rtol and atol must be positive")

    @property
    def adaptive(self) -> bool:
        return self.method in ADAPTIVE_METHODS


class ConvModelSizes:
    """What every convolutional model config derives from ``init_dim`` and ``n_downs``, and (de)serialisation."""

    init_dim: int
    n_downs: int

    @property
    def latent_dim(self) -> int:
        """Channels c' of the latent state h (``init_dim * 2**n_downs``)."""
        return self.init_dim * 2**self.n_downs

    @property
    def stride(self) -> int:
        """Spatial size reduction of the Conv-Encoder E; H and W must be multiples of it."""
        return 2**self.n_downs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Build from a mapping, rejecting unknown keys by name."""
        return from_dict(cls, data)


@dataclass
class ModelConfig(ConvModelSizes):
    """Sizes, switches and solvers of Vid-ODE (paper symbols in brackets).

    Times passed to the model are in ``time_unit`` (hours for climate fields,
    frames for video); the ODEs run on model time = physical time / ``time_scale``.
    ``decoder_step`` is the fixed internal step of the flow/difference/mask
    recursion (the training time step), in ``time_unit``.

    The default encoder solver takes RK4 steps of at most 0.1 model time (one
    frame at the default ``time_scale=10`` frames, 2.4 h at ``time_scale=24``
    hours), so a long gap between observations gets several steps.
    ``memory_saving`` recomputes activations in the backward pass instead of
    keeping them; ``memory_saving_level`` says which (see
    :data:`MEMORY_SAVING_LEVELS` and docs/model.md).
    """

    in_channels: int = 3
    static_channels: int = 0
    init_dim: int = 32
    n_downs: int = 2
    ode_hidden: int = 64
    time_unit: str = "frame"
    time_scale: float = 10.0
    decoder_step: float = 1.0
    encoder_solver: SolverConfig = field(default_factory=lambda: SolverConfig(method="rk4", step_size=0.1))
    decoder_solver: SolverConfig = field(default_factory=SolverConfig)
    reverse_inputs: bool = True
    sample_z0: bool = False
    use_convgru: bool = True
    use_warp: bool = True
    use_composition: bool = True
    difference_mode: Literal["image", "residual"] = "image"
    memory_saving: bool = False
    memory_saving_level: Literal["decoder", "decoder_encoder", "full"] = "full"
    amp: bool = True
    amp_cpu: bool = False
    channels_last: bool = True

    def __post_init__(self) -> None:
        for name in ("encoder_solver", "decoder_solver"):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, from_dict(SolverConfig, value, prefix=f"{name}."))
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be at least 1, got {self.in_channels}")
        if self.static_channels < 0:
            raise ConfigError(f"static_channels must be >= 0, got {self.static_channels}")
        if self.n_downs < 0 or self.init_dim < 1 or self.ode_hidden < 1:
            raise ConfigError("n_downs must be >= 0 and init_dim, ode_hidden >= 1")
        if self.time_scale <= 0 or self.decoder_step <= 0:
            raise ConfigError("time_scale and decoder_step must be positive")
        if self.difference_mode not in ("image", "residual"):
            raise ConfigError(
                f"difference_mode {self.difference_mode!r} is unknown; use 'image' (the paper's "
                "composition) or 'residual' ((1-M)*(X_prev + D))"
            )
        if self.memory_saving_level not in MEMORY_SAVING_LEVELS:
            raise ConfigError(
                f"memory_saving_level {self.memory_saving_level!r} is unknown; use one of "
                f"{', '.join(MEMORY_SAVING_LEVELS)}"
            )
        if self.use_composition and not self.use_warp:
            raise ConfigError("use_composition needs use_warp: the mask M blends the warped image with D")

    @classmethod
    def reference(cls, **overrides: Any) -> "ModelConfig":
        """The published implementation's sizes: 128x128 RGB, 1.9M generator parameters."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> "ModelConfig":
        """A few-thousand-parameter model with fixed-step solvers, for tests."""
        base: dict[str, Any] = dict(
            init_dim=4,
            n_downs=1,
            ode_hidden=8,
            time_scale=1.0,
            encoder_solver=SolverConfig(method="rk4", step_size=0.5),
            decoder_solver=SolverConfig(method="rk4", step_size=0.5),
        )
        base.update(overrides)
        return cls(**base)
