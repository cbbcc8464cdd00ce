"""The two models of "Simple Video Generation using Neural ODEs" (papers/simple-video-generation-neural-odes).

- :class:`SimpleODE` (its Section 5.1, Equation 1): a non-recurrent encoder q_phi
  embeds each frame, z(t) = I(f_theta, q_phi(x_{t_K}), t_K, t) is solved from the
  latent of the newest observed frame x_{t_K} (the paper writes the initial frame
  x_{t_0}; for forecasting the frame nearest the forecast is the one that must
  matter, and the ODE runs backwards to the earlier frames of Eq. 1's sum), and
  p_psi decodes each z(t).  Eq. 1 is
  sum_i ||x_{t_i} - p_psi(z(t_i))||^2 + ||q_phi(x_{t_i}) - z(t_i)||^2 over the
  observed frames; the model puts both terms (means over cells, weighted by
  ``input_recon_weight`` and ``latent_weight``) in ``extra_losses`` as
  ``input_recon`` and ``latent_match``.  Deterministic: ``sample_z0`` is rejected.
- :class:`SimpleODEVAE` (Section 5.2, Equation 2): a recurrent encoder (a ConvGRU
  over the observed frames with the gap Δt as an input channel, so it sees
  irregular times) gives q_phi(z0 | C) = N(mu, sigma^2); z0 is sampled with the
  reparameterisation trick; p_psi(x | z(t)) = N(Dec(z(t)), obs_std^2) with
  obs_std = 1 as in the paper.  Training maximises the ELBO
  E_q[log p(x | z)] - KL(q || N(0, I)), i.e. minimises -E[log p] + KL.  (Eq. 2 as
  printed adds the KL, a sign slip.)  Both per observed cell: the model puts
  -E[log p] over its observed inputs (a mean over cells, as the target term is) in
  ``extra_losses["nll"]`` and the KL divided by the observed cells per sample in
  ``extra_losses["kl"]``.  ``elbo_terms`` returns all three.  Scored at the
  posterior mean (:mod:`climode.models.inference`).

Both papers' models are trained as reconstruction (targets = the observed frames)
and used for prediction by solving further along z(t).  The VAE's z0 sits at each
sample's first observation, the Eq. 1 model's at its newest; times before it are
solved backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from climode.errors import ConfigError
from climode.models.base import ForecastOutput
from climode.models.baselines.latent_ode import ODEDecoding
from climode.models.baselines.recurrent import (
    BaselineConfig,
    FrameDecoder,
    encode_observed,
    gap_channel,
    prepare_inputs,
    ragged_steps,
    resolve_sample,
    run_ragged,
)
from climode.models.config import SolverConfig
from climode.models.convgru import ConvGRUCell
from climode.models.encoder import ConvEncoder, Z0Head
from climode.models.odefunc import ODEFunc
from climode.models.precision import autocast


@dataclass
class SimpleODEConfig(BaselineConfig):
    """Non-recurrent encoder-ODE-decoder (Eq. 1); weights of its two input terms."""

    ode_hidden: int = 32
    input_recon_weight: float = 1.0
    latent_weight: float = 1.0
    decoder_solver: SolverConfig = field(default_factory=SolverConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ode_hidden < 1 or self.input_recon_weight < 0 or self.latent_weight < 0:
            raise ConfigError("ode_hidden must be >= 1 and the loss weights >= 0")


@dataclass
class SimpleODEVAEConfig(BaselineConfig):
    """RNN encoder-ODE-decoder trained on the ELBO (Eq. 2); ``reverse_inputs`` runs the RNN from the last frame."""

    sample_z0: bool = True
    ode_hidden: int = 32
    reverse_inputs: bool = True
    elbo_on_inputs: bool = True
    obs_std: float = 1.0
    decoder_solver: SolverConfig = field(default_factory=SolverConfig)

    @property
    def variational(self) -> bool:
        return True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ode_hidden < 1 or self.obs_std <= 0:
            raise ConfigError("ode_hidden must be >= 1 and obs_std positive")


def _origin(times: np.ndarray, obs: list[np.ndarray]) -> np.ndarray:
    return np.array([times[b, o[0]] for b, o in enumerate(obs)])


def _newest(times: np.ndarray, obs: list[np.ndarray]) -> np.ndarray:
    return np.array([times[b, o[-1]] for b, o in enumerate(obs)])


def _observed(inputs: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    obs_b, obs_t = np.nonzero(mask > 0)
    return inputs[torch.as_tensor(obs_b, device=inputs.device), torch.as_tensor(obs_t, device=inputs.device)]


class SimpleODE(ODEDecoding, nn.Module):
    """x_hat(t) = p_psi(I(f_theta, q_phi(x_{t_0}), t_0, t)) with the latent-matching loss of Eq. 1."""

    def __init__(self, config: SimpleODEConfig | None = None):
        super().__init__()
        self.config = cfg = config or SimpleODEConfig()
        self.encoder = ConvEncoder(cfg.in_channels + cfg.static_channels, cfg.init_dim, cfg.n_downs)  # q_phi
        self.decoder_ode = ODEFunc(cfg.latent_dim, cfg.ode_hidden)  # f_theta
        self.decoder = FrameDecoder(cfg.latent_dim, cfg.in_channels, cfg.n_downs)  # p_psi

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, sample_z0=None) -> ForecastOutput:
        cfg = self.config
        resolve_sample(cfg, sample_z0)
        times, queries, mask, obs = prepare_inputs(self, inputs, input_times, query_times, input_mask, static)
        self.decoder_ode.reset_nfe()
        feats, lookup = encode_observed(self.encoder, inputs, mask, static, cfg)  # q_phi(x_{t_i})
        # z(t_K) = q_phi(x_{t_K}) at the newest observation; earlier inputs are reached backwards
        z0 = feats[torch.as_tensor([lookup[b, o[-1]] for b, o in enumerate(obs)], device=inputs.device)]
        need_inputs = bool(cfg.input_recon_weight or cfg.latent_weight)
        at_q, at_in = self.solve_latents(z0, _newest(times, obs), queries, times if need_inputs else None, mask)
        frames = self.decode_latent(at_q, None).view(*queries.shape, *inputs.shape[2:])
        extra = {}
        if need_inputs:
            # rows of at_in follow np.nonzero(mask), as do the rows of feats
            if cfg.input_recon_weight:
                recon = (self.decode_latent(at_in, None) - _observed(inputs, mask).float()).square().mean()
                extra["input_recon"] = cfg.input_recon_weight * recon
            if cfg.latent_weight:
                extra["latent_match"] = cfg.latent_weight * (feats - at_in).square().mean()
        return ForecastOutput(frames=frames, nfe_decoder=self.decoder_ode.nfe, extra_losses=extra)


class SimpleODEVAE(ODEDecoding, nn.Module):
    """z0 ~ q_phi(. | C) from a ConvGRU over the context, z(t) by the ODE, x_hat(t) = mu_psi(z(t)) (Eq. 2)."""

    def __init__(self, config: SimpleODEVAEConfig | None = None):
        super().__init__()
        self.config = cfg = config or SimpleODEVAEConfig()
        latent = cfg.latent_dim
        self.encoder = ConvEncoder(cfg.in_channels + cfg.static_channels, cfg.init_dim, cfg.n_downs)
        self.rnn = ConvGRUCell(latent + 1, latent)  # input [E(x), Δt]
        self.z0_head = Z0Head(latent)  # mu_phi, sigma_phi
        self.decoder_ode = ODEFunc(latent, cfg.ode_hidden)  # f_theta
        self.decoder = FrameDecoder(latent, cfg.in_channels, cfg.n_downs)  # mu_psi

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, sample_z0=None) -> ForecastOutput:
        cfg = self.config
        sample = resolve_sample(cfg, sample_z0)
        times, queries, mask, obs = prepare_inputs(self, inputs, input_times, query_times, input_mask, static)
        self.decoder_ode.reset_nfe()
        feats, lookup = encode_observed(self.encoder, inputs, mask, static, cfg)
        steps = ragged_steps(times, obs, cfg.time_scale, reverse=cfg.reverse_inputs)

        def step_fn(h, x, gap, j):
            with autocast(cfg, x.device):
                return self.rnn(h, torch.cat([x, gap_channel(gap, x)], dim=1))

        hidden, _, _ = run_ragged(feats, lookup, steps, tuple(feats.shape[1:]), step_fn)
        mean, std = self.z0_head(hidden)
        z0 = mean + std * torch.randn_like(std) if sample else mean
        at_q, at_in = self.solve_latents(z0, _origin(times, obs), queries, times if cfg.elbo_on_inputs else None, mask)
        frames = self.decode_latent(at_q, None).view(*queries.shape, *inputs.shape[2:])
        extra = {}
        if sample:
            extra["kl"] = self.kl_per_cell(mean, std, int((mask > 0).sum()) * inputs[0, 0].numel(), inputs.shape[0])
        if cfg.elbo_on_inputs:
            extra["nll"] = self.gaussian_nll(self.decode_latent(at_in, None), _observed(inputs, mask))
        return ForecastOutput(
            frames=frames,
            z0_mean=mean,
            z0_std=std,
            nfe_encoder=len(steps),
            nfe_decoder=self.decoder_ode.nfe,
            extra_losses=extra,
        )
