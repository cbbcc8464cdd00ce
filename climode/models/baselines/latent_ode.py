"""Neural-ODE baselines of Vid-ODE (paper Table 1, Table 5): ODE-FC, ODE-Conv and Latent ODE.

One class, :class:`LatentODE`, configured by :class:`LatentODEConfig`:

- ``encoder="concat"``: the paper's ODE-FC / ODE-Conv ("both take the channel-wise
  concatenated frames as an input for the Conv-Encoder E").  Adapted to per-sample
  irregular times: each of the ``n_inputs`` slots contributes [X * m, m, m * t_rel]
  (frame, observation mask, time since the sample's first observation in model
  units); masked frames are replaced by zeros and never reach E.
- ``encoder="ode_rnn"``: an ODE-RNN (Rubanova et al. 2019) run backwards from the
  last observation: h^- = ODESolve(f_theta, h, gap), h = update(h^-, E(X)), with
  ``update="gru"`` (GRU / ConvGRU) or ``"conv"`` (a plain update h = tanh(W [x, h])).
- ``dynamics="conv"``: latent maps [c', H/s, W/s] and a convolutional f (ODE-Conv);
  ``"fc"``: a latent vector z of ``latent_size`` (features average-pooled to a
  ``fc_grid`` x ``fc_grid`` grid, then a linear layer) and a fully-connected f (ODE-FC,
  Latent ODE).  f_phi (decoder) is always a separate network.
- ``variational=True``: z0 ~ N(mu, sigma^2) with the reparameterisation trick and the
  ELBO (Latent ODE) per observed cell: the model puts -E[log p(X | z)] over its observed
  input frames (Gaussian, std ``obs_std``; a mean over cells, as the target term
  L_recon is) in ``extra_losses["nll"]`` and KL(q(z0) || N(0, I)) divided by the
  observed cells per sample in ``extra_losses["kl"]`` (TrainStep weighs it by
  ``loss.kl``).  Scored at the posterior mean (:mod:`climode.models.inference`).

z0 sits at each sample's first observation (its origin); frames are decoded
directly, X_hat(s) = Dec(z(s)), so a frame depends only on its own time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from climode.errors import ConfigError, ModelInputError
from climode.models.base import ForecastOutput
from climode.models.baselines.recurrent import (
    BaselineConfig,
    FrameDecoder,
    encode_observed,
    prepare_inputs,
    resolve_sample,
)
from climode.models.config import SolverConfig
from climode.models.convgru import ConvGRUCell
from climode.models.encoder import ConvEncoder, Z0Head, ode_rnn_encode
from climode.models.latent import kl_standard_normal
from climode.models.odefunc import ODEFunc
from climode.models.precision import autocast
from climode.models.timeline import plan_encoder, union_times
from climode.models.vidode import solve_from_origin


@dataclass
class LatentODEConfig(BaselineConfig):
    """ODE-FC, ODE-Conv and Latent ODE (see the module docstring for the switches).

    ``sample_z0`` defaults to ``variational``; ``n_inputs`` is the number of input
    slots of the concat encoder; ``elbo_on_inputs`` adds the reconstruction NLL of the
    observed inputs (variational models only).
    """

    encoder: Literal["concat", "ode_rnn"] = "ode_rnn"
    update: Literal["gru", "conv"] = "gru"
    dynamics: Literal["conv", "fc"] = "fc"
    variational: bool = True
    sample_z0: bool | None = None
    n_inputs: int = 5
    latent_size: int = 32
    fc_grid: int = 4
    ode_hidden: int = 64
    reverse_inputs: bool = True
    elbo_on_inputs: bool = True
    obs_std: float = 1.0
    encoder_solver: SolverConfig = field(default_factory=lambda: SolverConfig(method="rk4"))
    decoder_solver: SolverConfig = field(default_factory=SolverConfig)

    def __post_init__(self) -> None:
        if self.sample_z0 is None:
            self.sample_z0 = bool(self.variational)
        super().__post_init__()
        for name, allowed in (("encoder", ("concat", "ode_rnn")), ("update", ("gru", "conv")), ("dynamics", ("conv", "fc"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} {getattr(self, name)!r} is unknown; use one of {', '.join(allowed)}")
        if self.n_inputs < 1 or self.latent_size < 1 or self.fc_grid < 1 or self.ode_hidden < 1:
            raise ConfigError("n_inputs, latent_size, fc_grid and ode_hidden must be >= 1")
        if self.obs_std <= 0:
            raise ConfigError(f"obs_std must be positive, got {self.obs_std}")


@dataclass
class ODEFCConfig(LatentODEConfig):
    """ODE-FC defaults: concatenated frames, latent vector, fully-connected f, deterministic."""

    encoder: Literal["concat", "ode_rnn"] = "concat"
    dynamics: Literal["conv", "fc"] = "fc"
    variational: bool = False


@dataclass
class ODEConvConfig(LatentODEConfig):
    """ODE-Conv defaults: concatenated frames, latent maps, convolutional f, deterministic.

    ``encoder="ode_rnn", update="conv"`` gives the ODE-RNN variant with a plain conv update.
    """

    encoder: Literal["concat", "ode_rnn"] = "concat"
    dynamics: Literal["conv", "fc"] = "conv"
    variational: bool = False


@dataclass
class ELBOTerms:
    """E_q[log p(X | z)], KL(q(z0) || N(0, I)) and the loss -ELBO = -(E[log p] - KL), per observed cell."""

    log_likelihood: torch.Tensor
    kl: torch.Tensor
    loss: torch.Tensor


class FCODEFunc(nn.Module):
    """dz/dt = f(z) for a latent vector: Linear-Tanh-Linear-Tanh-Linear (autonomous); counts ``nfe``."""

    def __init__(self, latent_size: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_size, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, latent_size)
        )
        self.nfe = 0

    def reset_nfe(self) -> None:
        self.nfe = 0

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - autonomous
        self.nfe += 1
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.net(z.float())


class PlainUpdate(nn.Module):
    """The ODE-RNN update without gates: h = tanh(W [x, h]) (conv for maps, linear for vectors)."""

    def __init__(self, size: int, spatial: bool):
        super().__init__()
        self.net = nn.Conv2d(2 * size, size, 3, padding=1) if spatial else nn.Linear(2 * size, size)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([x, h.to(x.dtype)], dim=1))).float()


class VectorGRU(nn.Module):
    """nn.GRUCell with Vid-ODE's argument order: h' = GRU(h, x)."""

    def __init__(self, size: int):
        super().__init__()
        self.cell = nn.GRUCell(size, size)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x.float(), h.float())


class VectorZ0Head(nn.Module):
    """Linear head giving the mean and std (softplus) of a vector z0."""

    def __init__(self, size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(size, size), nn.ReLU(), nn.Linear(size, 2 * size))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(h.float()).chunk(2, dim=1)
        return mean, F.softplus(raw) + 1e-4




class ODEDecoding:
    """Decoding shared by the encoder-ODE-decoder baselines (mixin for nn.Modules).

    Needs ``self.config`` (``time_scale``, ``decoder_solver``), ``self.decoder_ode``
    and :meth:`decode_latent`.  The decoder ODE is solved once from each sample's
    origin over the union of the shifted times (Vid-ODE's ``_solve_decoder``).
    """

    def decode_latent(self, z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        with autocast(self.config, z.device):
            return self.decoder(z)

    def solve_latents(self, z0, origin, queries, times=None, mask=None):
        """z(s) at the queries [B, K, ...] and, given times and mask, at each observed input [N, ...]."""
        ts = self.config.time_scale
        parts = [np.zeros(1), ((queries - origin[:, None]) / ts).ravel()]
        obs_b, obs_t = (np.nonzero(mask > 0) if mask is not None else (None, None))
        if times is not None:
            parts.append((times[obs_b, obs_t] - origin[obs_b]) / ts)
        tau, where = union_times(parts)
        latents = solve_from_origin(self.decoder_ode, z0, tau, self.config.decoder_solver)  # [U, B, ...]
        device = z0.device
        qb = np.repeat(np.arange(queries.shape[0]), queries.shape[1])
        at_queries = latents[torch.as_tensor(where[1], device=device), torch.as_tensor(qb, device=device)]
        at_inputs = None
        if times is not None:
            at_inputs = latents[torch.as_tensor(where[2], device=device), torch.as_tensor(obs_b, device=device)]
        return at_queries, at_inputs

    def gaussian_nll(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """-log N(target; pred, obs_std^2) per cell: the mean over the cells of the observed frames.

        A mean, like the target term L_recon, so neither term drowns the other
        (a sum over cells made the forecast targets' gradient ~1e-4 of this one's).
        """
        std = self.config.obs_std
        elem = 0.5 * ((target.float() - pred) / std) ** 2 + math.log(std) + 0.5 * math.log(2 * math.pi)
        return elem.mean()

    @staticmethod
    def kl_per_cell(mean: torch.Tensor, std: torch.Tensor, observed_cells: int, batch: int) -> torch.Tensor:
        """KL(q(z0) || N(0, I)) per observed cell: the ELBO divided by the cells it explains.

        With the NLL a mean over cells, dividing the KL (summed over latent cells,
        per sample) by the observed cells per sample keeps the ELBO's own balance.
        """
        return kl_standard_normal(mean, std) / max(observed_cells / batch, 1.0)

    def elbo_terms(self, inputs, input_times, input_mask=None, static=None) -> ELBOTerms:
        """The ELBO of reconstructing the observed inputs with a sampled z0 (the paper's training)."""
        cfg = self.config
        if not (cfg.variational and cfg.elbo_on_inputs):
            raise ConfigError("elbo_terms needs a variational model with elbo_on_inputs=True")
        batch = inputs.shape[0]
        mask = np.ones(inputs.shape[:2]) if input_mask is None else np.broadcast_to(
            np.asarray(input_mask.cpu() if isinstance(input_mask, torch.Tensor) else input_mask, dtype=float),
            inputs.shape[:2])
        t = input_times.detach().cpu().double().numpy() if isinstance(input_times, torch.Tensor) else np.asarray(input_times, float)
        t = np.broadcast_to(t, inputs.shape[:2])
        first = np.array([[t[b, np.flatnonzero(mask[b] > 0)[0]]] for b in range(batch)])
        out = self(inputs, input_times, first, input_mask, static, sample_z0=True)
        log_lik = -out.extra_losses["nll"]
        kl = out.extra_losses["kl"]
        return ELBOTerms(log_likelihood=log_lik, kl=kl, loss=-(log_lik - kl))


class LatentODE(ODEDecoding, nn.Module):
    """ODE-FC, ODE-Conv or Latent ODE: encoder -> z0 -> ODESolve(f_phi) -> Dec, frames directly."""

    def __init__(self, config: LatentODEConfig | None = None):
        super().__init__()
        self.config = cfg = config or LatentODEConfig()
        latent = cfg.latent_dim
        vector = cfg.dynamics == "fc"
        in_ch = cfg.n_inputs * (cfg.in_channels + 2) if cfg.encoder == "concat" else cfg.in_channels
        self.encoder = ConvEncoder(in_ch + cfg.static_channels, cfg.init_dim, cfg.n_downs)
        size = cfg.latent_size if vector else latent
        if vector:
            self.to_vector = nn.Linear(latent * cfg.fc_grid**2, size)
            self.from_vector = nn.Linear(size, latent * cfg.fc_grid**2)
        make_ode = (lambda: FCODEFunc(size, cfg.ode_hidden)) if vector else (lambda: ODEFunc(size, cfg.ode_hidden))
        if cfg.encoder == "ode_rnn":
            self.encoder_ode = make_ode()  # f_theta
            if cfg.update == "conv":
                self.update = PlainUpdate(size, spatial=not vector)
            else:
                self.update = VectorGRU(size) if vector else ConvGRUCell(size, size)
        if cfg.variational:
            self.z0_head = VectorZ0Head(size) if vector else Z0Head(latent)
        self.decoder_ode = make_ode()  # f_phi
        self.decoder = FrameDecoder(latent, cfg.in_channels, cfg.n_downs)

    def to_latent(self, feats: torch.Tensor) -> torch.Tensor:
        if self.config.dynamics != "fc":
            return feats
        return self.to_vector(F.adaptive_avg_pool2d(feats, self.config.fc_grid).flatten(1))

    def decode_latent(self, z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        cfg = self.config
        if cfg.dynamics == "fc":
            g = cfg.fc_grid
            z = self.from_vector(z).view(len(z), cfg.latent_dim, g, g)
            z = torch.relu(F.interpolate(z, size=size, mode="bilinear", align_corners=False))
        with autocast(cfg, z.device):
            return self.decoder(z)

    def _concat_features(self, inputs, times, mask, origin, static) -> torch.Tensor:
        cfg = self.config
        b, t, c, h, w = inputs.shape
        if t != cfg.n_inputs:
            raise ModelInputError(f"the concat encoder takes {cfg.n_inputs} input slots, got {t}")
        m = torch.as_tensor(mask > 0, device=inputs.device)
        frames = torch.where(m.view(b, t, 1, 1, 1), inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))
        rel = np.where(mask > 0, (np.nan_to_num(times) - origin[:, None]) / cfg.time_scale, 0.0)
        rel = torch.as_tensor(rel, dtype=inputs.dtype, device=inputs.device)
        maps = torch.stack([m.to(inputs.dtype), rel], dim=2).view(b, t, 2, 1, 1).expand(b, t, 2, h, w)
        x = torch.cat([frames, maps], dim=2).reshape(b, t * (c + 2), h, w)
        if static is not None:
            x = torch.cat([x, static.to(x.dtype)], dim=1)
        with autocast(cfg, x.device):
            return self.to_latent(self.encoder(x).float())

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, sample_z0=None) -> ForecastOutput:
        cfg = self.config
        sample = resolve_sample(cfg, sample_z0)
        times, queries, mask, obs = prepare_inputs(self, inputs, input_times, query_times, input_mask, static)
        batch = inputs.shape[0]
        self.decoder_ode.reset_nfe()
        nfe_enc = 0
        if cfg.encoder == "concat":
            origin = np.array([times[b, o[0]] for b, o in enumerate(obs)])
            hidden = self._concat_features(inputs, times, mask, origin, static)
        else:
            self.encoder_ode.reset_nfe()
            plan = plan_encoder(times, mask, cfg.time_scale, cfg.reverse_inputs)
            origin = plan.origin
            feats, lookup = encode_observed(self.encoder, inputs, mask, static, cfg)
            hidden = ode_rnn_encode(self.to_latent(feats), lookup, plan, self.encoder_ode, cfg.encoder_solver, self.update)
            nfe_enc = self.encoder_ode.nfe
        mean = std = None
        z0 = hidden
        if cfg.variational:
            mean, std = self.z0_head(hidden)
            z0 = mean + std * torch.randn_like(std) if sample else mean
        want_inputs = cfg.variational and cfg.elbo_on_inputs
        at_q, at_in = self.solve_latents(z0, origin, queries, times if want_inputs else None, mask)
        size = tuple(inputs.shape[-2:])
        enc_size = (size[0] // cfg.stride, size[1] // cfg.stride)
        frames = self.decode_latent(at_q, enc_size).view(*queries.shape, *inputs.shape[2:])
        extra = {}
        if want_inputs:
            obs_b, obs_t = np.nonzero(mask > 0)
            target = inputs[torch.as_tensor(obs_b, device=inputs.device), torch.as_tensor(obs_t, device=inputs.device)]
            extra["nll"] = self.gaussian_nll(self.decode_latent(at_in, enc_size), target)
        if cfg.variational and sample:
            extra["kl"] = self.kl_per_cell(mean, std, int((mask > 0).sum()) * inputs[0, 0].numel(), batch)
        return ForecastOutput(
            frames=frames,
            z0_mean=mean,
            z0_std=std,
            nfe_encoder=nfe_enc,
            nfe_decoder=self.decoder_ode.nfe,
            extra_losses=extra,
        )
