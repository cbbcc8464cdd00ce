"""Vid-ODE assembled: ODE-ConvGRU encoder, decoder ODE, Conv-Decoder G, warping and Psi.

See :mod:`climode.models.timeline` for the time conventions.  Shapes:
inputs [B, T, C, H, W], input times [B, T] or [T], input mask [B, T] or [T],
query times [B, K] or [K]; times are in ``config.time_unit``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from climode.errors import ModelInputError
from climode.models.base import ForecastOutput
from climode.models.config import MEMORY_SAVING_LEVELS, ModelConfig
from climode.models.convgru import ConvGRUCell
from climode.models.decoder import ConvDecoder, DecoderStep, compose, partial_step
from climode.models.encoder import ConvEncoder, Z0Head, encoder_indices, ode_rnn_encode
from climode.models.odefunc import ODEFunc, integrate
from climode.models.precision import autocast
from climode.models.timeline import (
    TIME_EPS,
    DecoderPlan,
    EncoderPlan,
    plan_decoder,
    plan_encoder,
)
from climode.models.upload import DeviceIndex


@dataclass
class VidODEOutput(ForecastOutput):
    """A :class:`~climode.models.base.ForecastOutput` with G's outputs F, D, M.

    ``flow``, ``diff`` and ``mask`` are G's outputs at each query's last step
    (scaled by the fraction of a partial step; F = 0, D = 0, M = 1 at an
    observation); ``prev_times`` [B, K] is the time that step started from (for L_diff).
    """

    flow: torch.Tensor | None = None
    diff: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def as_batch_times(t: torch.Tensor | np.ndarray | list, batch: int, name: str) -> np.ndarray:
    arr = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (batch, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != batch:
        raise ModelInputError(f"{name} must have shape [T] or [B, T] with B={batch}, got {tuple(arr.shape)}")
    return np.ascontiguousarray(arr)


def solve_from_origin(func: ODEFunc, z0: torch.Tensor, tau: np.ndarray, solver) -> torch.Tensor:
    """h at every time tau (model units from each sample's origin, where h = z0): [U, B, ...].

    One solve forward over the non-negative times and, if any, one backward.
    """
    neg = tau < -TIME_EPS / 2
    parts = []
    if neg.any():
        back = np.concatenate([[0.0], tau[neg][::-1]])
        parts.append(integrate(func, z0, torch.tensor(back), solver)[1:].flip(0))
    pos = tau[~neg]
    if len(pos) == 1:
        parts.append(z0.float().unsqueeze(0))
    else:
        parts.append(integrate(func, z0, torch.tensor(pos), solver))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@contextlib.contextmanager
def frozen_batchnorm_stats(module: nn.Module):
    """BatchNorm layers of ``module`` normalise as usual but leave their running statistics alone.

    Activation checkpointing reruns a forward pass during backward; in training
    mode that rerun would update running_mean, running_var and
    num_batches_tracked a second time.  Inside this context the update uses
    momentum 0 (running = 1 * running + 0 * batch, exactly the old value), and
    num_batches_tracked is put back on exit.  The buffers are not written
    otherwise, so autograd's saved tensors keep their versions.
    """
    norms = [m for m in module.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


@contextlib.contextmanager
def _recomputation(frozen, selective):
    """Enter BatchNorm freezing outside the selective-recompute mode (which must not see it)."""
    with frozen, selective:
        yield


def validate_inputs(cfg, inputs: torch.Tensor, times: np.ndarray, mask: np.ndarray, static=None,
                    check_finite: bool = True) -> None:
    """Shape, channel, stride, time/mask and NaN checks shared by every learned model."""
    if inputs.ndim != 5:
        raise ModelInputError(f"inputs must have shape [B, T, C, H, W], got {tuple(inputs.shape)}")
    b, t, c, h, w = inputs.shape
    if c != cfg.in_channels:
        raise ModelInputError(f"inputs have {c} channels but the model expects {cfg.in_channels}")
    if h % cfg.stride or w % cfg.stride:
        raise ModelInputError(
            f"spatial size {h}x{w} is not divisible by the encoder stride {cfg.stride}; "
            "pad or crop the grid to a multiple of it"
        )
    if times.shape[1] != t or mask.shape != (b, t):
        raise ModelInputError(
            f"input times {times.shape} and mask {mask.shape} must match the {t} input frames of the batch"
        )
    if cfg.static_channels:
        if static is None or tuple(static.shape) != (b, cfg.static_channels, h, w):
            raise ModelInputError(f"static channels must have shape {(b, cfg.static_channels, h, w)}")
    if check_finite:
        rows, frames = np.nonzero(mask > 0)  # indices from the host mask: no boolean-mask sync on the device
        check_observed_finite(inputs[torch.as_tensor(rows, device=inputs.device),
                                     torch.as_tensor(frames, device=inputs.device)])


def check_observed_finite(observed: torch.Tensor) -> None:
    """ModelInputError unless the observed input frames are finite (one device read)."""
    if not bool(torch.isfinite(observed).all()):
        raise ModelInputError(
            "observed input frames contain NaN or inf; fill missing cells (e.g. with the mean) "
            "or mark the frame unobserved with mask 0"
        )


def observed_lookup(mask: np.ndarray) -> np.ndarray:
    """``lookup[b, t]``: the row of frame t of sample b among the observed frames (-1 where unobserved)."""
    obs_b, obs_t = np.nonzero(mask > 0)
    lookup = np.full(mask.shape, -1, dtype=np.int64)
    lookup[obs_b, obs_t] = np.arange(len(obs_b))
    return lookup


def observed_indices(mask: np.ndarray, index: DeviceIndex | None = None) -> DeviceIndex:
    """Register in ``index`` the sample (``obs_b``) and frame (``obs_t``) of every observed input."""
    index = index if index is not None else DeviceIndex()
    obs_b, obs_t = np.nonzero(mask > 0)
    index.add("obs_b", obs_b)
    index.add("obs_t", obs_t)
    return index


def prepare_call(cfg, inputs, input_times, query_times, input_mask=None, static=None, check_finite: bool = True):
    """Check a model call and return per-sample times [B, T], queries [B, K] and mask [B, T] as numpy.

    ``check_finite=False`` leaves the check of the observed frames to the caller (a model that
    gathers them anyway, from its one upload of indices: :func:`check_observed_finite`).
    """
    if not isinstance(inputs, torch.Tensor):
        raise ModelInputError("inputs must be a torch tensor [B, T, C, H, W]")
    if inputs.ndim != 5:
        raise ModelInputError(f"inputs must have shape [B, T, C, H, W], got {tuple(inputs.shape)}")
    batch, n_in = inputs.shape[:2]
    times = as_batch_times(input_times, batch, "input_times")
    queries = as_batch_times(query_times, batch, "query_times")
    mask = np.ones((batch, n_in)) if input_mask is None else as_batch_times(input_mask, batch, "input_mask")
    validate_inputs(cfg, inputs, times, mask, static, check_finite)
    return times, queries, mask


def decoder_indices(plan: DecoderPlan, index: DeviceIndex | None = None) -> DeviceIndex:
    """Register in ``index`` every gather of :meth:`VidODE.decode`, computed on the host from the plan.

    Chain rows and anchors; per grid step k the latent rows of k (``dec_h``),
    the chain rows whose queries take step k whole (``dec_full``) or a fraction
    of it (``dec_part``, with ``dec_fraction``); queries at their anchor; and the
    permutation that puts the pieces back in query order (``dec_inverse``).
    """
    index = index if index is not None else DeviceIndex()
    row = plan.query_row.ravel()
    fraction = plan.query_fraction.ravel()
    on_grid = plan.query_on_grid.ravel()
    at_anchor = (fraction == 0) & ~on_grid
    # the chain step whose G output each query uses (the query's own step, or the one it lies in)
    uses_step = np.where(on_grid, plan.query_start.ravel(), plan.query_start.ravel() + 1)
    uses_step[at_anchor] = 0
    index.add("dec_rows", plan.row_sample)
    index.add("dec_anchor", plan.row_anchor)
    order: list[np.ndarray] = []
    if at_anchor.any():
        q = np.flatnonzero(at_anchor)
        index.add("dec_at_anchor", row[q])
        order.append(q)
    index.add(("dec_h", 0), plan.row_latent[:, 0])
    for k in range(1, plan.n_steps + 1):
        m = int(plan.active[k])
        index.add(("dec_h", k), plan.row_latent[:m, k])
        q = np.flatnonzero(uses_step == k)
        full, part = q[fraction[q] == 1], q[fraction[q] < 1]
        if full.size:
            index.add(("dec_full", k), row[full])
            order.append(full)
        if part.size:
            index.add(("dec_part", k), row[part])
            index.add(("dec_fraction", k), fraction[part], dtype=np.float32)
            order.append(part)
    index.add("dec_inverse", np.argsort(np.concatenate(order)))
    return index


class VidODE(nn.Module):
    """The generator of Vid-ODE (paper Section 3), with per-sample continuous times."""

    #: True while training a reconstruction objective: an observed frame is rebuilt from the one before it
    reconstruct_observed: bool = False

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config = config or ModelConfig()
        latent = config.latent_dim
        self.encoder = ConvEncoder(config.in_channels + config.static_channels, config.init_dim, config.n_downs)
        self.encoder_ode = ODEFunc(latent, config.ode_hidden)  # f_theta
        self.gru = ConvGRUCell(latent, latent) if config.use_convgru else None
        self.z0_head = Z0Head(latent)
        self.decoder_ode = ODEFunc(latent, config.ode_hidden)  # f_phi
        self.decoder = ConvDecoder(latent, config.in_channels, config.n_downs)  # G
        if config.channels_last:
            # channels-last convolutions are faster on CPU (oneDNN) and on tensor-core GPUs
            self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ helpers
    def _autocast(self, device: torch.device):
        return autocast(self.config, device)

    def _part(self, part: str) -> nn.Module:
        """The module holding the BatchNorm layers that memory-saving ``part`` reruns."""
        return {"G": self.decoder, "E": self.encoder, "encoder": self.encoder, "decoder_ode": self.decoder_ode}[part]

    def _saves_memory(self, part: str) -> bool:
        """True when ``part`` is recomputed in the backward pass (``config.memory_saving_level``)."""
        cfg = self.config
        return cfg.memory_saving and torch.is_grad_enabled() and part in MEMORY_SAVING_LEVELS[cfg.memory_saving_level]

    def _recomputed(self, part: str, fn, *args):
        """``fn(*args)``; under memory saving of ``part``, checkpointed: its activations are
        recomputed in the backward pass instead of kept, and BatchNorm statistics update once."""
        if not self._saves_memory(part):
            return fn(*args)
        return checkpoint(fn, *args, use_reentrant=False, context_fn=lambda: self._recompute_contexts(part))

    def _recompute_contexts(self, part: str):
        """Forward and recomputation contexts of a checkpointed ``part``.

        G keeps the output of its first convolution (16 MB per step at the reference
        preset), which saves recomputing half of G's FLOPs; everything else in it
        (upsampling, BatchNorm, ReLU, the other convolutions, Psi) is recomputed.
        The convolution is recognised by its weight's shape: under autocast it
        receives a bf16 copy of the weight, not the parameter itself.
        """
        forward, selective = contextlib.nullcontext(), contextlib.nullcontext()
        if part == "G" and isinstance(self.decoder.net[0], nn.Upsample):
            kept = self.decoder.net[1].weight.shape

            def policy(ctx, op, *args, **kwargs):  # noqa: ARG001 - torch's policy signature
                if op is torch.ops.aten.convolution.default and args[1].shape == kept:
                    return CheckpointPolicy.MUST_SAVE
                return CheckpointPolicy.PREFER_RECOMPUTE

            forward, selective = create_selective_checkpoint_contexts(policy)
        return forward, _recomputation(frozen_batchnorm_stats(self._part(part)), selective)

    def _conv_encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Conv-Encoder E on the observed frames [N, C, H, W]."""
        with self._autocast(frames.device):
            return self.encoder(frames)

    # ------------------------------------------------------------------ encoder
    def encode(self, inputs, plan: EncoderPlan, mask: np.ndarray, static=None,
               index: DeviceIndex | None = None) -> torch.Tensor:
        """Run the ODE-ConvGRU encoder (Eq. 1) and return each sample's final state h_T.

        ``index``: the gathers of :func:`observed_indices` and :func:`encoder_indices`,
        already sent to the device (made and sent here when None).
        """
        device = inputs.device
        lookup = observed_lookup(mask)
        if index is None:
            index = encoder_indices(lookup, plan, observed_indices(mask)).send(device)
        obs_b = index["obs_b"]
        frames = inputs[obs_b, index["obs_t"]]
        if static is not None:
            frames = torch.cat([frames, static[obs_b].to(frames.dtype)], dim=1)
        feats = self._recomputed("E", self._conv_encode, frames)  # masked frames never reach E

        def update(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            if self.gru is None:  # ablation A: the latest observation replaces the state
                return x.float()
            with self._autocast(device):
                return self.gru(h, x)

        return ode_rnn_encode(feats, lookup, plan, self.encoder_ode, self.config.encoder_solver, update, index)

    # ------------------------------------------------------------------ decoder
    def _solve_decoder(self, z0: torch.Tensor, tau: np.ndarray) -> torch.Tensor:
        solve = lambda z: solve_from_origin(self.decoder_ode, z, tau, self.config.decoder_solver)  # noqa: E731
        return self._recomputed("decoder_ode", solve, z0)

    def _step(self, h: torch.Tensor, h_prev: torch.Tensor, previous: torch.Tensor):
        cfg = self.config
        with self._autocast(h.device):
            out = self.decoder(h, h_prev)
        frame = compose(out, previous, use_warp=cfg.use_warp, use_composition=cfg.use_composition,
                        difference_mode=cfg.difference_mode)
        return frame, out.flow, out.diff, out.mask

    def _checkpointed_step(self, h, h_prev, previous):
        return self._recomputed("G", self._step, h, h_prev, previous)

    def decode(self, inputs: torch.Tensor, z0: torch.Tensor, plan: DecoderPlan, index: DeviceIndex | None = None):
        """Decoder of Eq. 2: one ODE solve, then G and Psi along each recursion chain.

        A query at its anchor is the observed frame; on the grid, the chain's
        frame; off the grid, the fraction of the next step (:func:`partial_step`).
        Each query's frame is taken as the chain passes it, so only the current
        chain frame and the returned frames are kept (without gradients).
        ``index``: the gathers of :func:`decoder_indices`, already sent to the
        device (made and sent here when None).
        """
        if index is None:
            index = decoder_indices(plan).send(inputs.device)
        latents = self._solve_decoder(z0, plan.tau)
        b, k_count = plan.query_row.shape
        rows = index["dec_rows"]
        previous = inputs[rows, index["dec_anchor"]].float()  # chain frames at grid step 0
        pieces: list[tuple[torch.Tensor, ...]] = []
        if "dec_at_anchor" in index:
            frame = previous[index["dec_at_anchor"]]
            n = len(frame)
            pieces.append((frame, frame.new_zeros(n, 2, *frame.shape[2:]), torch.zeros_like(frame),
                           frame.new_ones(n, 1, *frame.shape[2:])))
        for k in range(1, plan.n_steps + 1):
            m = int(plan.active[k])
            r = rows[:m]
            h, h_prev = latents[index[("dec_h", k)], r], latents[index[("dec_h", k - 1)][:m], r]
            frame, *aux = self._checkpointed_step(h, h_prev, previous[:m])
            if ("dec_full", k) in index:
                sel = index[("dec_full", k)]
                pieces.append((frame[sel], *(a[sel] for a in aux)))
            if ("dec_part", k) in index:
                pieces.append(self._partial(aux, index[("dec_part", k)], index[("dec_fraction", k)], previous))
            previous = frame
        inverse = index["dec_inverse"]
        out = [torch.cat([p[i] for p in pieces])[inverse] for i in range(4)]
        return tuple(o.view(b, k_count, *o.shape[1:]) for o in out)

    def _partial(self, aux, sel: torch.Tensor, fraction: torch.Tensor, previous: torch.Tensor):
        """Frames, F, D, M of the fraction ``fraction`` of the step whose G outputs are ``aux`` (rows ``sel``)."""
        cfg = self.config
        prev = previous[sel]
        flow, diff, mask = (a[sel] for a in aux)
        part = partial_step(DecoderStep(flow, diff, mask), fraction, prev,
                            use_warp=cfg.use_warp, difference_mode=cfg.difference_mode)
        frame = compose(part, prev, use_warp=cfg.use_warp, use_composition=cfg.use_composition,
                        difference_mode=cfg.difference_mode)
        return frame, part.flow, part.diff, part.mask

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        inputs: torch.Tensor,
        input_times,
        query_times,
        input_mask=None,
        static: torch.Tensor | None = None,
        sample_z0: bool | None = None,
    ) -> VidODEOutput:
        """Predict frames at ``query_times`` from frames observed at ``input_times``."""
        cfg = self.config
        times, queries, mask = prepare_call(cfg, inputs, input_times, query_times, input_mask, static,
                                            check_finite=False)
        self.encoder_ode.reset_nfe()
        self.decoder_ode.reset_nfe()
        enc_plan = plan_encoder(times, mask, cfg.time_scale, cfg.reverse_inputs)
        dec_plan = plan_decoder(times, mask, queries, enc_plan.origin, cfg.decoder_step, cfg.time_scale,
                                partial_steps=True, reconstruct_observed=self.reconstruct_observed)
        # every gather of the forward, planned on the host and sent to the device in one copy per dtype
        index = observed_indices(mask)
        encoder_indices(observed_lookup(mask), enc_plan, index)
        decoder_indices(dec_plan, index).send(inputs.device)
        check_observed_finite(inputs[index["obs_b"], index["obs_t"]])
        hidden = self._recomputed("encoder", lambda x, s: self.encode(x, enc_plan, mask, s, index), inputs, static)
        mean, std = self.z0_head(hidden)
        sample = cfg.sample_z0 if sample_z0 is None else sample_z0
        z0 = mean + std * torch.randn_like(std) if sample else mean
        frames, flow, diff, comp_mask = self.decode(inputs, z0, dec_plan, index)
        return VidODEOutput(
            frames=frames,
            flow=flow,
            diff=diff,
            mask=comp_mask,
            prev_times=dec_plan.query_prev_time,
            z0_mean=mean,
            z0_std=std,
            nfe_encoder=self.encoder_ode.nfe,
            nfe_decoder=self.decoder_ode.nfe,
        )
