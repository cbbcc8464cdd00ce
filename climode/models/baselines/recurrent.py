"""Recurrent baselines of Vid-ODE (paper Tables 5 and Fig. 8) and helpers shared by the baselines.

- :class:`ConvGRUBaseline` with ``time_mode``:
  ``"none"`` (ConvGRU, time gaps ignored), ``"delta"`` (ConvGRU-Δt: the gap Δt is
  an extra input channel) and ``"decay"`` (ConvGRU-Decay, RNN-Decay of Che et al.
  2018: h <- exp(-relu(w*Δt + b)) * h before each update).  Encoding runs forward
  in time over each sample's own observations; decoding is autoregressive on the
  grid a + k*decoder_step from the anchor a (the last observation at or before
  the query), with one last step of the remaining gap onto off-grid queries, as
  Vid-ODE's recursion (see :mod:`climode.models.timeline`).  Frames are produced
  directly: X_hat(s) = Dec(h(s)).
- :class:`VidRNN`: Vid-ODE with each ODE solve replaced by a ConvGRU step whose
  input is the gap Δt; the decoder steps on the fixed grid k*decoder_step from z0
  and linearly interpolates hidden states in between (paper Section 4, Fig. 8).
  G, warping and Psi are Vid-ODE's.

The helpers (config base, input checks, ragged per-sample sequences, the frame
decoder) are shared with :mod:`.latent_ode` and :mod:`.simple_ode`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from climode.errors import ConfigError, ModelInputError
from climode.models.base import ForecastOutput
from climode.models.config import ConvModelSizes, ModelConfig, SolverConfig, from_dict
from climode.models.convgru import ConvGRUCell
from climode.models.encoder import ConvEncoder
from climode.models.precision import autocast
from climode.models.timeline import TIME_EPS, EncoderPlan, observed_times, plan_decoder
from climode.models.vidode import VidODE, observed_indices, observed_lookup, prepare_call

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- configs
@dataclass
class BaselineConfig(ConvModelSizes):
    """Fields every learned baseline shares (see :class:`ModelConfig` for their meaning).

    ``init_dim`` and ``n_downs`` size the Conv-Encoder E (latent channels
    c' = init_dim * 2**n_downs); times are in ``time_unit`` and the model runs on
    physical time / ``time_scale``.  Baselines produce frames directly, so
    ``use_composition`` is always False (no L_diff).
    """

    in_channels: int = 3
    static_channels: int = 0
    init_dim: int = 8
    n_downs: int = 2
    time_unit: str = "frame"
    time_scale: float = 10.0
    decoder_step: float = 1.0
    sample_z0: bool = False
    amp: bool = False

    #: whether this configuration is trained on an ELBO (only then may z0 be sampled)
    @property
    def variational(self) -> bool:  # overridden by ELBO configs
        return False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_solver") and isinstance(value, dict):
                setattr(self, f.name, from_dict(SolverConfig, value, prefix=f"{f.name}."))
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be at least 1, got {self.in_channels}")
        if self.static_channels < 0:
            raise ConfigError(f"static_channels must be >= 0, got {self.static_channels}")
        if self.n_downs < 0 or self.init_dim < 1:
            raise ConfigError("n_downs must be >= 0 and init_dim >= 1")
        if self.time_scale <= 0 or self.decoder_step <= 0:
            raise ConfigError("time_scale and decoder_step must be positive")
        if self.sample_z0 and not self.variational:
            raise ConfigError(
                f"{type(self).__name__} is deterministic (not trained on an ELBO): sample_z0 must be False"
            )

    @property
    def use_composition(self) -> bool:
        return False

    @classmethod
    def tiny(cls, **overrides: Any):
        """A few-thousand-parameter model with fixed-step solvers, for tests."""
        base: dict[str, Any] = dict(init_dim=4, n_downs=1, time_scale=1.0)
        names = {f.name for f in fields(cls)}
        for name in ("encoder_solver", "decoder_solver"):
            if name in names:
                base[name] = SolverConfig(method="rk4", step_size=0.5)
        for name, value in (("ode_hidden", 8), ("latent_size", 8), ("fc_grid", 2)):
            if name in names:
                base[name] = value
        base.update(overrides)
        return cls(**base)


@dataclass
class ConvGRUConfig(BaselineConfig):
    """ConvGRU baselines; ``time_mode`` picks ConvGRU ("none"), ConvGRU-Δt ("delta") or ConvGRU-Decay ("decay")."""

    time_mode: Literal["none", "delta", "decay"] = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time_mode not in ("none", "delta", "decay"):
            raise ConfigError(f"time_mode {self.time_mode!r} is unknown; use 'none', 'delta' or 'decay'")


@dataclass
class ConvGRUDeltaConfig(ConvGRUConfig):
    """ConvGRU-Δt defaults."""

    time_mode: Literal["none", "delta", "decay"] = "delta"


@dataclass
class ConvGRUDecayConfig(ConvGRUConfig):
    """ConvGRU-Decay defaults."""

    time_mode: Literal["none", "delta", "decay"] = "decay"


@dataclass
class VidRNNConfig(ModelConfig):
    """Vid-ODE's config; Vid-RNN ignores ``encoder_solver`` and ``decoder_solver`` (no ODEs)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.use_convgru:
            raise ConfigError("Vid-RNN needs use_convgru=True: its encoder is a ConvGRU")


# ---------------------------------------------------------------------- helpers
def prepare_inputs(model: nn.Module, inputs, input_times, query_times, input_mask, static):
    """Validate a call like Vid-ODE does; return times [B,T], queries [B,K], mask [B,T], observed indices."""
    times, queries, mask = prepare_call(model.config, inputs, input_times, query_times, input_mask, static)
    obs = observed_times(times, mask)
    if not np.all(np.isfinite(queries)):
        raise ModelInputError("query times must be finite")
    return times, queries, mask, obs


def resolve_sample(config, sample_z0: bool | None) -> bool:
    """The effective sample_z0; deterministic models reject True with a ConfigError."""
    sample = bool(config.sample_z0 if sample_z0 is None else sample_z0)
    if sample and not config.variational:
        raise ConfigError(
            f"sample_z0=True needs a model trained on an ELBO; {type(config).__name__} is deterministic"
        )
    return sample


def encode_observed(encoder: nn.Module, inputs, mask: np.ndarray, static, config):
    """E(X_t) of the observed frames only: features [N, ...] and lookup [B, T] -> row (-1 if masked)."""
    device = inputs.device
    index = observed_indices(mask).send(device)  # the rows in the order of observed_lookup
    frames = inputs[index["obs_b"], index["obs_t"]]
    if static is not None:
        frames = torch.cat([frames, static[index["obs_b"]].to(frames.dtype)], dim=1)
    with autocast(config, device):
        feats = encoder(frames).float()
    return feats, observed_lookup(mask)


@dataclass
class RaggedStep:
    """The j-th observation of every sample that has one: samples, input indices, gaps (model time)."""

    samples: np.ndarray
    frames: np.ndarray
    gaps: np.ndarray


def ragged_steps(times: np.ndarray, obs: list[np.ndarray], time_scale: float, reverse: bool) -> list[RaggedStep]:
    """Each sample's own observation sequence, aligned by position (not by time).

    Step j holds the j-th observation of each sample (in time order, or reversed)
    and its gap |t_j - t_{j-1}| / time_scale (0 at j = 0).  Recurrent cells that are
    not ODEs must see each sample's own gaps, so they cannot share a time union.
    """
    seqs = [o[::-1] if reverse else o for o in obs]
    out = []
    for j in range(max(len(s) for s in seqs)):
        samples = np.array([b for b, s in enumerate(seqs) if j < len(s)], dtype=np.int64)
        idx = np.array([seqs[b][j] for b in samples], dtype=np.int64)
        gaps = np.array(
            [0.0 if j == 0 else abs(times[b, seqs[b][j]] - times[b, seqs[b][j - 1]]) / time_scale for b in samples]
        )
        out.append(RaggedStep(samples, idx, gaps))
    return out


def run_ragged(
    feats: torch.Tensor,
    lookup: np.ndarray,
    steps: list[RaggedStep],
    hidden_shape: tuple[int, ...],
    step_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Run ``h = step_fn(h, x, gap, j)`` over ragged sequences from h = 0.

    Returns the final state of each sample [B, ...], every state after an update
    [N, ...] and an index [B, T] into it (-1 where not observed).
    """
    batch = lookup.shape[0]
    device = feats.device
    hidden = feats.new_zeros((batch, *hidden_shape))
    states, where = [], np.full(lookup.shape, -1, dtype=np.int64)
    count = 0
    for j, st in enumerate(steps):
        rows = torch.as_tensor(st.samples, device=device)
        x = feats[torch.as_tensor(lookup[st.samples, st.frames], device=device)]
        gap = torch.as_tensor(st.gaps, device=device, dtype=torch.float32)
        new = step_fn(hidden[rows], x, gap, j)
        hidden = hidden.index_copy(0, rows, new)
        states.append(new)
        where[st.samples, st.frames] = count + np.arange(len(st.samples))
        count += len(st.samples)
    return hidden, torch.cat(states), where


def gap_channel(gap: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Δt [N] as a constant map [N, 1, h, w] shaped like ``like``."""
    n, _, h, w = like.shape
    return gap.to(like.dtype).view(-1, 1, 1, 1).expand(n, 1, h, w)


class FrameDecoder(nn.Module):
    """Decoder p_psi producing frames directly: latent map [N, c', h', w'] -> [N, C, H, W].

    The Conv-Encoder E inverted: ``n_ups`` times [bilinear Upsample x2 + Conv3x3 +
    BatchNorm + ReLU], halving the channels, then Conv3x3 to C channels (no activation).
    """

    def __init__(self, latent_dim: int, out_channels: int, n_ups: int):
        super().__init__()
        layers: list[nn.Module] = []
        dim = latent_dim
        for _ in range(n_ups):
            out = max(dim // 2, 1)
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(dim, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            dim = out
        layers.append(nn.Conv2d(dim, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).float()


# ---------------------------------------------------------------------- ConvGRU family
class ConvGRUBaseline(nn.Module):
    """ConvGRU, ConvGRU-Δt and ConvGRU-Decay over per-sample irregular observations.

    h_i = ConvGRUCell(h_{i-1}', [E(X_{t_i}), Δt_i]) where h' = h (ConvGRU, ConvGRU-Δt)
    or h' = exp(-relu(w*Δt_i + b)) * h (ConvGRU-Decay, per-channel w, b); the Δt
    channel is present only in ConvGRU-Δt.  Decoding feeds each predicted frame
    back: h_{k} = cell(h_{k-1}', [E(X_hat_{k-1}), Δt]), X_hat_k = Dec(h_k).
    """

    def __init__(self, config: ConvGRUConfig | None = None):
        super().__init__()
        self.config = config = config or ConvGRUConfig()
        latent = config.latent_dim
        self.encoder = ConvEncoder(config.in_channels + config.static_channels, config.init_dim, config.n_downs)
        extra = 1 if config.time_mode == "delta" else 0
        self.cell = ConvGRUCell(latent + extra, latent)
        if config.time_mode == "decay":
            self.decay_weight = nn.Parameter(torch.ones(1, latent, 1, 1))
            self.decay_bias = nn.Parameter(torch.zeros(1, latent, 1, 1))
        self.decoder = FrameDecoder(latent, config.in_channels, config.n_downs)
        self.steps = 0

    def advance(self, h: torch.Tensor, x: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """One recurrent step: decay (ConvGRU-Decay), then the ConvGRU update with E(X) (and Δt)."""
        self.steps += 1
        mode = self.config.time_mode
        if mode == "decay":
            h = torch.exp(-torch.relu(self.decay_weight * gap.view(-1, 1, 1, 1) + self.decay_bias)) * h
        if mode == "delta":
            x = torch.cat([x, gap_channel(gap, x)], dim=1)
        with autocast(self.config, x.device):
            return self.cell(h, x)

    def _embed(self, frames: torch.Tensor, samples: np.ndarray, static) -> torch.Tensor:
        if static is not None:
            frames = torch.cat([frames, static[torch.as_tensor(samples, device=frames.device)].to(frames.dtype)], 1)
        with autocast(self.config, frames.device):
            return self.encoder(frames).float()

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, sample_z0=None) -> ForecastOutput:
        cfg = self.config
        resolve_sample(cfg, sample_z0)
        times, queries, mask, obs = prepare_inputs(self, inputs, input_times, query_times, input_mask, static)
        device = inputs.device
        self.steps = 0
        feats, lookup = encode_observed(self.encoder, inputs, mask, static, cfg)
        steps = ragged_steps(times, obs, cfg.time_scale, reverse=False)
        _, states, where = run_ragged(
            feats, lookup, steps, (cfg.latent_dim, *feats.shape[2:]),
            lambda h, x, gap, j: self.advance(h, x, gap),
        )
        n_enc = self.steps
        origin = np.array([times[b, o[0]] for b, o in enumerate(obs)])
        plan = plan_decoder(times, mask, queries, origin, cfg.decoder_step, cfg.time_scale,
                            reconstruct_observed=getattr(self, "reconstruct_observed", False))
        rows = plan.row_sample
        dev = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        h = states[dev(where[rows, plan.row_anchor])]
        x = inputs[dev(rows), dev(plan.row_anchor)].float()
        step = cfg.decoder_step / cfg.time_scale
        hs, xs = [h], [x]
        for k in range(1, plan.n_steps + 1):
            m = int(plan.active[k])
            gap = torch.full((m,), step, device=device)
            h = self.advance(hs[-1][:m], self._embed(xs[-1][:m], rows[:m], static), gap)
            with autocast(cfg, device):
                x = self.decoder(h)
            hs.append(h)
            xs.append(x)
        offsets = np.cumsum([0] + [len(t) for t in hs])
        all_h, all_x = torch.cat(hs), torch.cat(xs)
        b_count, k_count = queries.shape
        flat_row = plan.query_row.ravel()
        start = plan.query_start.ravel()
        idx = offsets[start] + flat_row
        on_grid = plan.query_on_grid.ravel()
        remaining = (queries.ravel() - plan.query_prev_time.ravel()) / cfg.time_scale
        at_point = ~on_grid & (np.abs(remaining) <= TIME_EPS)
        branch = ~on_grid & ~at_point
        out = all_x.new_zeros((b_count * k_count, *all_x.shape[1:]))
        if on_grid.any():
            out[dev(np.flatnonzero(on_grid))] = all_x[dev(idx[on_grid])]
        if at_point.any():
            with autocast(cfg, device):
                out[dev(np.flatnonzero(at_point))] = self.decoder(all_h[dev(idx[at_point])])
        if branch.any():
            sel = dev(idx[branch])
            samples = rows[flat_row[branch]]
            h_b = self.advance(all_h[sel], self._embed(all_x[sel], samples, static),
                               torch.as_tensor(remaining[branch], device=device, dtype=torch.float32))
            with autocast(cfg, device):
                out[dev(np.flatnonzero(branch))] = self.decoder(h_b)
        return ForecastOutput(
            frames=out.view(b_count, k_count, *out.shape[1:]),
            prev_times=plan.query_prev_time,
            nfe_encoder=n_enc,
            nfe_decoder=self.steps - n_enc,
        )


# ---------------------------------------------------------------------- Vid-RNN
class GapGRU(nn.Module):
    """The RNN stand-in for ODESolve over a gap: h <- ConvGRUCell(h, Δt); ``nfe`` counts steps."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.cell = ConvGRUCell(1, latent_dim)
        self.nfe = 0

    def reset_nfe(self) -> None:
        self.nfe = 0

    def forward(self, h: torch.Tensor, gap: torch.Tensor | float) -> torch.Tensor:
        self.nfe += 1
        gap = torch.as_tensor(gap, device=h.device, dtype=torch.float32).expand(h.shape[0])
        return self.cell(h, gap_channel(gap, h))


class VidRNN(VidODE):
    """Vid-ODE with its ODEs replaced by ConvGRUs (paper Fig. 8).

    Encoder: the reversed ConvGRU over each sample's observations, with the gap
    advanced by ``encoder_ode`` = GapGRU instead of ODESolve(f_theta).  Decoder:
    states h_k = GapGRU(h_{k-1}, g) on the grid k*g (g = decoder_step / time_scale)
    from z0, and h(tau) = (1-w) h_k + w h_{k+1} in between.  E, the z0 head, G,
    warping and Psi are Vid-ODE's.
    """

    def __init__(self, config: VidRNNConfig | None = None):
        config = config or VidRNNConfig()
        if not isinstance(config, VidRNNConfig):
            config = VidRNNConfig(**{f.name: getattr(config, f.name) for f in fields(ModelConfig)})
        super().__init__(config)
        latent = config.latent_dim
        self.encoder_ode = GapGRU(latent)  # replaces f_theta
        self.decoder_ode = GapGRU(latent)  # replaces f_phi

    def encode(self, inputs, plan: EncoderPlan, mask: np.ndarray, static=None, index=None) -> torch.Tensor:  # noqa: ARG002
        """The ConvGRU encoder on each sample's own gaps, in the plan's (reversed) order (its own gathers:
        ``index``, Vid-ODE's uploaded encoder indices, does not apply)."""
        feats, lookup = encode_observed(self.encoder, inputs, mask, static, self.config)
        batch = mask.shape[0]
        per_sample: list[list[tuple[float, int]]] = [[] for _ in range(batch)]
        for sigma, (samples, frames) in zip(plan.sigma, plan.updates):
            for b, i in zip(samples, frames):
                per_sample[int(b)].append((float(sigma), int(i)))
        steps = []
        for j in range(max(len(s) for s in per_sample)):
            samples = np.array([b for b in range(batch) if j < len(per_sample[b])], dtype=np.int64)
            frames = np.array([per_sample[b][j][1] for b in samples], dtype=np.int64)
            gaps = np.array([0.0 if j == 0 else per_sample[b][j][0] - per_sample[b][j - 1][0] for b in samples])
            steps.append(RaggedStep(samples, frames, gaps))

        def step_fn(h, x, gap, j):
            if j > 0:
                h = self.encoder_ode(h, gap)
            with self._autocast(x.device):
                return self.gru(h, x)

        final, _, _ = run_ragged(feats, lookup, steps, tuple(feats.shape[1:]), step_fn)
        return final

    def _solve_decoder(self, z0: torch.Tensor, tau: np.ndarray) -> torch.Tensor:
        """h at every tau by GapGRU steps on the grid k*g and linear interpolation: [U, B, ...]."""
        g = self.config.decoder_step / self.config.time_scale
        pos = tau / g
        k_lo = int(math.floor(pos.min() + 1e-6))
        k_hi = int(math.ceil(pos.max() - 1e-6))
        grid = {0: z0.float()}
        for k in range(1, max(k_hi, 0) + 1):
            grid[k] = self.decoder_ode(grid[k - 1], g)
        for k in range(-1, min(k_lo, 0) - 1, -1):
            grid[k] = self.decoder_ode(grid[k + 1], -g)
        out = []
        for p in pos:
            k0 = int(math.floor(p + 1e-6))
            w = p - k0
            out.append(grid[k0] if w <= 1e-6 else (1 - w) * grid[k0] + w * grid[k0 + 1])
        return torch.stack(out)
