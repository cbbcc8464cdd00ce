"""Observation windows: which frames of a sequence are inputs and which are targets.

A *protocol* draws a :class:`WindowSpec`: integer frame offsets, relative to the
window start, on the regular time grid of the underlying data, for the observed
inputs and for the targets to predict.  The paper's protocols are here:

- :class:`RegularExtrapolation`: 5 inputs, the next 5 frames as targets;
- :class:`RegularInterpolation`: a 10-frame window, inputs the even frames,
  targets the odd frames in between;
- :class:`IrregularExtrapolation` / :class:`IrregularInterpolation`: a 20-frame
  window with a random subset of observed frames (``n_observed`` or
  ``sampling_rate``, the fraction swept in the paper's Figure 6);
- :class:`CAM5Protocol`: 5 inputs with random gaps of up to 48 h on a 3-hourly
  grid, then 3-hourly targets after the last input;
- :class:`FixedProtocol`: explicit offsets (e.g. inputs at 0, 9, 21, 42, 57 h);
- :class:`FrameRateProtocol`: inputs every ``stride`` frames (stride drawn per
  window), targets the frames between them and the frames right after: frame-rate
  conversion and continuation in one objective (the bundled video model).

Randomness comes only from the ``numpy.random.Generator`` handed to ``sample``;
:func:`window_rng` makes window ``index`` of ``epoch`` a pure function of
``(seed, epoch, index)``, identical in every DataLoader worker.

This module uses numpy only (no torch), so it is cheap to import.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Sequence

import numpy as np

from climode.errors import ConfigError

__all__ = [
    "WindowSpec",
    "WindowProtocol",
    "RegularExtrapolation",
    "RegularInterpolation",
    "IrregularExtrapolation",
    "IrregularInterpolation",
    "CAM5Protocol",
    "FixedProtocol",
    "FrameRateProtocol",
    "PROTOCOLS",
    "get_protocol",
    "window_rng",
    "sample_window",
]

# spawn_key domains: windows and shuffles never share a random stream.
_WINDOW_DOMAIN = 0
SHUFFLE_DOMAIN = 7  # the shuffled order of an epoch (climode.data.loader.EpochSampler)


def _offsets(values: Sequence[int] | np.ndarray, what: str) -> tuple[int, ...]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a flat list of frame offsets, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ConfigError(f"{what} must be whole frame offsets, got {arr.tolist()}")
    out = tuple(int(v) for v in arr)
    if any(v < 0 for v in out):
        raise ConfigError(f"{what} must be >= 0 (offsets from the window start), got {list(out)}")
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ConfigError(f"{what} must be strictly increasing, got {list(out)}")
    return out


@dataclass(frozen=True)
class WindowSpec:
    """One drawn window: input and target frame offsets from the window start.

    ``step_hours`` is the grid step the protocol assumes (``None``: whatever
    regular step the data has).  Inputs and targets may overlap (reconstruction).
    """

    input_offsets: tuple[int, ...]
    target_offsets: tuple[int, ...]
    step_hours: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_offsets", _offsets(self.input_offsets, "input offsets"))
        object.__setattr__(self, "target_offsets", _offsets(self.target_offsets, "target offsets"))
        if not self.input_offsets:
            raise ConfigError("a window needs at least one input frame")

    @property
    def length(self) -> int:
        """Number of grid frames the window spans from its start."""
        return max(self.input_offsets + self.target_offsets) + 1

    def input_hours(self) -> np.ndarray:
        """Input times on the nominal grid, relative to the first input (needs ``step_hours``)."""
        return self._hours(self.input_offsets)

    def target_hours(self) -> np.ndarray:
        """Target times on the nominal grid, relative to the first input."""
        return self._hours(self.target_offsets)

    def _hours(self, offsets: tuple[int, ...]) -> np.ndarray:
        step = 1.0 if self.step_hours is None else float(self.step_hours)
        return (np.asarray(offsets, dtype=np.float64) - self.input_offsets[0]) * step


def window_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of window ``index`` in ``epoch``: a pure function of the three."""
    for name, value in (("seed", seed), ("epoch", epoch), ("index", index)):
        if int(value) != value or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    seq = np.random.SeedSequence(int(seed), spawn_key=(_WINDOW_DOMAIN, int(epoch), int(index)))
    return np.random.Generator(np.random.PCG64(seq))


def _check_step(step_hours: float | None) -> None:
    if step_hours is not None and not (math.isfinite(step_hours) and step_hours > 0):
        raise ConfigError(f"step_hours must be a positive number of hours or None, got {step_hours!r}")


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


class WindowProtocol(abc.ABC):
    """A rule that draws windows; subclasses are frozen dataclasses."""

    name: ClassVar[str] = ""
    step_hours: float | None

    @property
    @abc.abstractmethod
    def max_length(self) -> int:
        """The most grid frames any drawn window can span (windows must fit the sequence)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> WindowSpec:
        """Draw one window."""

    def trained_lead_hours(self) -> float | None:
        """The longest target lead after the last input (hours, or frames without ``step_hours``); None if unbounded."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """Name and parameters, for configs and checkpoint sidecars."""
        out: dict[str, Any] = {"name": self.name}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _n_observed(n_observed: int | None, sampling_rate: float | None, pool: int, minimum: int) -> int:
    """How many frames of a pool of ``pool`` frames are observed."""
    if n_observed is not None and sampling_rate is not None:
        raise ConfigError("give n_observed or sampling_rate, not both")
    if sampling_rate is not None:
        if not (0.0 < sampling_rate <= 1.0):
            raise ConfigError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
        n = int(round(sampling_rate * pool))
    elif n_observed is not None:
        n = n_observed
    else:
        n = pool // 2
    n = max(n, minimum)
    if not isinstance(n, (int, np.integer)) or n > pool:
        raise ConfigError(f"cannot observe {n} frames out of {pool}: lower n_observed or sampling_rate")
    return int(n)


@dataclass(frozen=True)
class RegularExtrapolation(WindowProtocol):
    """``n_inputs`` consecutive frames, then the next ``n_targets`` frames."""

    n_inputs: int = 5
    n_targets: int = 5
    step_hours: float | None = None
    name: ClassVar[str] = "extrapolation"

    def __post_init__(self) -> None:
        _check_count("n_inputs", self.n_inputs, 1)
        _check_count("n_targets", self.n_targets, 0)
        _check_step(self.step_hours)

    @property
    def max_length(self) -> int:
        return self.n_inputs + self.n_targets

    def trained_lead_hours(self) -> float | None:
        return self.n_targets * (1.0 if self.step_hours is None else float(self.step_hours))

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        n = self.n_inputs
        return WindowSpec(tuple(range(n)), tuple(range(n, n + self.n_targets)), self.step_hours)


@dataclass(frozen=True)
class RegularInterpolation(WindowProtocol):
    """A ``window``-frame window: inputs the even frames, targets the odd frames in between.

    ``reconstruct=True`` makes the targets the observed frames themselves (the
    published training objective).
    """

    window: int = 10
    reconstruct: bool = False
    step_hours: float | None = None
    name: ClassVar[str] = "interpolation"

    def __post_init__(self) -> None:
        _check_count("window", self.window, 3)
        _check_step(self.step_hours)

    @property
    def max_length(self) -> int:
        return self.window

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        inputs = tuple(range(0, self.window, 2))
        targets = inputs if self.reconstruct else tuple(range(1, inputs[-1], 2))
        return WindowSpec(inputs, targets, self.step_hours)


@dataclass(frozen=True)
class IrregularExtrapolation(WindowProtocol):
    """A ``window``-frame window; a random subset of the first half is observed, the second half is the target.

    The number observed is ``n_observed``, or ``round(sampling_rate * window // 2)``,
    or half of the first half when neither is given.
    """

    window: int = 20
    n_observed: int | None = None
    sampling_rate: float | None = None
    step_hours: float | None = None
    name: ClassVar[str] = "irregular_extrapolation"

    def __post_init__(self) -> None:
        _check_count("window", self.window, 2)
        _check_step(self.step_hours)
        _n_observed(self.n_observed, self.sampling_rate, self.window // 2, 1)

    @property
    def max_length(self) -> int:
        return self.window

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        half = self.window // 2
        k = _n_observed(self.n_observed, self.sampling_rate, half, 1)
        observed = np.sort(rng.choice(half, size=k, replace=False))
        return WindowSpec(tuple(observed.tolist()), tuple(range(half, self.window)), self.step_hours)


@dataclass(frozen=True)
class IrregularInterpolation(WindowProtocol):
    """A ``window``-frame window with a random observed subset; targets are the unobserved frames.

    The first and last frames are always observed, so every target lies inside
    the observed span.  ``reconstruct=True`` targets the observed frames instead.
    """

    window: int = 20
    n_observed: int | None = None
    sampling_rate: float | None = None
    reconstruct: bool = False
    step_hours: float | None = None
    name: ClassVar[str] = "irregular_interpolation"

    def __post_init__(self) -> None:
        _check_count("window", self.window, 2)
        _check_step(self.step_hours)
        _n_observed(self.n_observed, self.sampling_rate, self.window, 2)

    @property
    def max_length(self) -> int:
        return self.window

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        k = _n_observed(self.n_observed, self.sampling_rate, self.window, 2)
        inner = rng.choice(np.arange(1, self.window - 1), size=k - 2, replace=False)
        observed = np.sort(np.concatenate([[0, self.window - 1], inner])).astype(int)
        if self.reconstruct:
            targets = tuple(observed.tolist())
        else:
            targets = tuple(sorted(set(range(self.window)) - set(observed.tolist())))
        return WindowSpec(tuple(observed.tolist()), targets, self.step_hours)


@dataclass(frozen=True)
class CAM5Protocol(WindowProtocol):
    """The paper's CAM5 protocol: ``n_inputs`` frames with random gaps, then regular targets.

    Each gap between consecutive inputs is drawn uniformly from the grid
    multiples of ``step_hours`` in ``[min_gap_hours, max_gap_hours]`` (e.g. inputs
    at 0, 9, 21, 42, 57 h); the targets are the ``n_targets`` grid frames right
    after the last input (60, 63, 66, 69, 72 h).

    With ``max_lead_hours`` the targets are instead ``n_targets`` distinct grid
    frames drawn uniformly from the leads ``step_hours, 2 step_hours, ...,
    max_lead_hours`` after the last input: on hourly data (``step_hours=1``) and a
    3-hour decoder step they fall at, between and beyond the decoder's grid, so a
    continuous-time decoder is trained off its grid too.
    """

    n_inputs: int = 5
    n_targets: int = 5
    step_hours: float | None = 3.0
    max_gap_hours: float = 48.0
    min_gap_hours: float | None = None
    max_lead_hours: float | None = None
    name: ClassVar[str] = "cam5"

    def __post_init__(self) -> None:
        _check_count("n_inputs", self.n_inputs, 1)
        _check_count("n_targets", self.n_targets, 0)
        if self.step_hours is None:
            raise ConfigError("the CAM5 protocol needs step_hours (3.0 for CAM5 output)")
        _check_step(self.step_hours)
        lo, hi = self._gap_steps()
        if lo < 1 or hi < lo:
            raise ConfigError(
                f"gaps must satisfy step_hours <= min_gap_hours <= max_gap_hours, got "
                f"step {self.step_hours}, min {self.min_gap_hours}, max {self.max_gap_hours}"
            )
        if self.max_lead_hours is not None and self._lead_steps() < self.n_targets:
            raise ConfigError(
                f"max_lead_hours={self.max_lead_hours} holds fewer than n_targets={self.n_targets} grid steps of "
                f"{self.step_hours} h; raise max_lead_hours or lower n_targets"
            )

    def _lead_steps(self) -> int:
        """Grid steps up to the longest target lead."""
        if self.max_lead_hours is None:
            return self.n_targets
        return int(math.floor(float(self.max_lead_hours) / float(self.step_hours) + 1e-9))  # type: ignore[arg-type]


    def _gap_steps(self) -> tuple[int, int]:
        step = float(self.step_hours)  # type: ignore[arg-type]
        lo_h = step if self.min_gap_hours is None else float(self.min_gap_hours)
        for name, h in (("min_gap_hours", lo_h), ("max_gap_hours", float(self.max_gap_hours))):
            if abs(h / step - round(h / step)) > 1e-9:
                raise ConfigError(f"{name}={h} is not a multiple of step_hours={step}")
        return int(round(lo_h / step)), int(round(float(self.max_gap_hours) / step))

    @property
    def max_length(self) -> int:
        return (self.n_inputs - 1) * self._gap_steps()[1] + self._lead_steps() + 1

    def trained_lead_hours(self) -> float | None:
        return self._lead_steps() * float(self.step_hours)  # type: ignore[arg-type]

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        lo, hi = self._gap_steps()
        gaps = rng.integers(lo, hi + 1, size=self.n_inputs - 1)
        inputs = np.concatenate([[0], np.cumsum(gaps)]).astype(int)
        last = int(inputs[-1])
        if self.max_lead_hours is None:
            leads = np.arange(1, self.n_targets + 1)
        else:
            leads = np.sort(rng.choice(np.arange(1, self._lead_steps() + 1), size=self.n_targets, replace=False))
        return WindowSpec(tuple(inputs.tolist()), tuple((last + leads).tolist()), self.step_hours)


@dataclass(frozen=True)
class FixedProtocol(WindowProtocol):
    """Explicit input and target frame offsets, the same for every window.

    Use :meth:`from_hours` to give them in hours, e.g.
    ``FixedProtocol.from_hours([0, 9, 21, 42, 57], [60, 63, 66, 69, 72], step_hours=3)``.
    """

    input_offsets: tuple[int, ...] = (0, 3, 7, 14, 19)
    target_offsets: tuple[int, ...] = (20, 21, 22, 23, 24)
    step_hours: float | None = 3.0
    name: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        _check_step(self.step_hours)
        spec = WindowSpec(self.input_offsets, self.target_offsets, self.step_hours)
        object.__setattr__(self, "input_offsets", spec.input_offsets)
        object.__setattr__(self, "target_offsets", spec.target_offsets)

    @classmethod
    def from_hours(
        cls, input_hours: Sequence[float], target_hours: Sequence[float], step_hours: float
    ) -> "FixedProtocol":
        """Offsets given in hours from the window start; each must be a multiple of ``step_hours``."""
        _check_step(step_hours)

        def to_frames(hours: Sequence[float], what: str) -> tuple[int, ...]:
            h = np.asarray(hours, dtype=np.float64)
            frames = h / step_hours
            if h.size and (not np.all(np.isfinite(frames)) or np.any(np.abs(frames - np.round(frames)) > 1e-9)):
                raise ConfigError(f"{what} {h.tolist()} are not all multiples of step_hours={step_hours}")
            return tuple(int(v) for v in np.round(frames))

        return cls(to_frames(input_hours, "input hours"), to_frames(target_hours, "target hours"), step_hours)

    @property
    def max_length(self) -> int:
        return max(self.input_offsets + self.target_offsets) + 1

    def trained_lead_hours(self) -> float | None:
        lead = max(self.target_offsets, default=0) - max(self.input_offsets)
        return max(lead, 0) * (1.0 if self.step_hours is None else float(self.step_hours))

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        return WindowSpec(self.input_offsets, self.target_offsets, self.step_hours)


@dataclass(frozen=True)
class FrameRateProtocol(WindowProtocol):
    """``n_inputs`` frames every ``stride`` frames, ``stride`` drawn from ``strides`` per window;
    targets: every frame between the inputs (interpolation at fractions 1/stride of a gap)
    and the ``n_future`` frames after the last input (extrapolation).
    """

    n_inputs: int = 4
    strides: tuple[int, ...] = (1, 2, 4)
    n_future: int = 4
    step_hours: float | None = None
    name: ClassVar[str] = "frame_rate"

    def __post_init__(self) -> None:
        _check_count("n_inputs", self.n_inputs, 2)
        _check_count("n_future", self.n_future, 0)
        if not self.strides or any(not isinstance(s, (int, np.integer)) or s < 1 for s in self.strides):
            raise ConfigError(f"strides must be positive whole frame counts, got {self.strides!r}")
        _check_step(self.step_hours)

    @property
    def max_length(self) -> int:
        return (self.n_inputs - 1) * max(self.strides) + 1 + self.n_future

    def sample(self, rng: np.random.Generator) -> WindowSpec:
        stride = int(self.strides[int(rng.integers(len(self.strides)))])
        inputs = tuple(range(0, (self.n_inputs - 1) * stride + 1, stride))
        between = tuple(k for k in range(inputs[-1]) if k % stride)
        future = tuple(range(inputs[-1] + 1, inputs[-1] + 1 + self.n_future))
        return WindowSpec(inputs, between + future, self.step_hours)


PROTOCOLS: dict[str, type[WindowProtocol]] = {
    cls.name: cls
    for cls in (
        RegularExtrapolation,
        RegularInterpolation,
        IrregularExtrapolation,
        IrregularInterpolation,
        CAM5Protocol,
        FixedProtocol,
        FrameRateProtocol,
    )
}


def get_protocol(name: str, **params: Any) -> WindowProtocol:
    """Build a protocol by name (see :data:`PROTOCOLS`), e.g. from a config entry."""
    cls = PROTOCOLS.get(name)
    if cls is None:
        raise ConfigError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"protocol {name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(allowed)}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls(**params)


def sample_window(protocol: WindowProtocol, seed: int, epoch: int, index: int) -> WindowSpec:
    """Window ``index`` of ``epoch``: the same in every process for the same arguments."""
    return protocol.sample(window_rng(seed, epoch, index))
