"""The trainer behind ``climode train``: reproducible, resumable, optionally distributed.

- One seed seeds everything; windows are a pure function of (seed, epoch, index),
  so the same recipe and seed give the same losses on the same machine.
- Checkpoints (weights + sidecar) and the training state (optimisers, schedule,
  RNG, data position) are written every ``checkpoint_every`` steps; ``resume``
  continues exactly where an interrupted run stopped.
- Under ``torchrun --nproc_per_node N`` it trains with DistributedDataParallel
  (NCCL on GPU, gloo on CPU); each rank takes every N-th window of an epoch padded
  (as torch's DistributedSampler) so every rank runs the same number of batches.
  The discriminators' gradients are all-reduced too, the NaN/inf guard is
  agreed by every rank before any step, and so is stopping: when one rank's
  ``train.max_minutes`` is spent every rank stops after the same step.  Each rank
  uses its LOCAL_RANK GPU (``device: cuda`` or ``auto``; ``cuda:N`` is refused)
  and checkpoints hold the CUDA random state of rank 0's GPU only.
- Adversarial learning follows the model's registry entry
  (``registry.training_flags``); ``train.discriminators`` true/false overrides it.
- ``train.compile`` compiles the encoder and decoder in place
  (``nn.Module.compile``), so checkpoints keep the plain parameter names.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from climode.data.loader import EpochSampler, make_loader
from climode.data.sampling import get_protocol
from climode.errors import ClimodeError, ConfigError
from climode.models.checkpoint_meta import CheckpointMeta
from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
from climode.models.inference import deterministic_forecast
from climode.models.periodic import is_periodic_grid, periodic_longitude
from climode.models.precision import precision_name
from climode.training import checkpoint as ckpt
from climode.training.data import TrainingData, build_training_data, check_time_units
from climode.training.host_memory import keep_freed_memory, release_large_blocks
from climode.training.recipe import Recipe
from climode.training.step import HOST_COPIES, Discriminators, NonFiniteError, TrainStep, host_copy

log = logging.getLogger(__name__)

UNITS = {"U850": "m/s", "V850": "m/s", "PSL": "Pa"}


class TrainingError(ClimodeError):
    """Training cannot go on (non-finite loss, inconsistent resume)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; under torchrun each rank takes its LOCAL_RANK GPU.

    ``cuda:N`` names one GPU, so with more than one process it would put every
    rank on that GPU: it is refused then (use ``cuda`` or ``auto``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if name.startswith("cuda:") and world > 1:
        raise ConfigError(f"device {name} would put all {world} torchrun processes on one GPU; "
                          "use device cuda (or auto): each rank then takes its LOCAL_RANK GPU")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was asked for but no CUDA device is available; use --device cpu")
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            name = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(name: str, config: dict[str, Any]) -> torch.nn.Module:
    """A model by registry name (``vidode`` and the baselines)."""
    try:
        from climode.models.registry import get_model
    except ImportError:  # registry not available: the main model only
        get_model = None
    if get_model is not None:
        return get_model(name, config)
    if name != "vidode":
        raise ConfigError(f"model {name!r} is unknown; use vidode")
    from climode.models.config import ModelConfig
    from climode.models.vidode import VidODE

    return VidODE(ModelConfig.from_dict(config))


#: G's mask logit at the start of a run initialised at persistence: M = sigmoid(4) = 0.982
PERSISTENCE_MASK_LOGIT = 4.0


def init_at_persistence(model: torch.nn.Module) -> None:
    """Make Vid-ODE's first prediction the previous frame: G's last convolution gives F = 0, D = 0
    and a mask logit of :data:`PERSISTENCE_MASK_LOGIT`, so Psi = M * X_prev + (1 - M) * 0 ~ X_prev."""
    decoder = getattr(model, "decoder", None)
    last = decoder.net[-1] if decoder is not None and hasattr(decoder, "net") else None
    if not isinstance(last, torch.nn.Conv2d) or not getattr(model.config, "use_composition", False):
        raise ConfigError("train.init: persistence needs a Vid-ODE with warping and composition (model vidode)")
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[-1] = PERSISTENCE_MASK_LOGIT


def model_config_for(recipe: Recipe, data: TrainingData) -> dict[str, Any]:
    """The recipe's model config completed with what the data decides (channels, time unit)."""
    config = dict(recipe.model.config)
    config.setdefault("in_channels", len(data.variables))
    n_static = sum(1 for s in data.static if s in ("cos_lat", "land_sea"))
    if n_static:
        config.setdefault("static_channels", n_static)
    config.setdefault("time_unit", data.time_unit)
    check_time_units({**config, "_model": recipe.model.name}, set(recipe.model.config), data,
                     get_protocol(recipe.data.protocol, **recipe.data.protocol_args))
    return config


@dataclass
class TrainResult:
    steps: int
    checkpoint: Path | None
    losses: list[dict[str, float]] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors on ``device`` (times stay on the host); ``host`` keeps the masks' host copies,
    which the models read as plans, so no mask makes a round trip to the device and back."""
    out: dict[str, Any] = {"host": {k: batch[k] for k in HOST_COPIES if k in batch}}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and k not in ("input_times", "target_times"):
            out[k] = v.to(device, non_blocking=True)
        else:
            out[k] = v
    return out


class Trainer:
    """Train ``recipe`` into ``run_dir``."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
                 progress: bool = True, clock=time.perf_counter):
        #: seconds for the ``train.max_minutes`` budget (a test skews one rank's clock through it)
        self.clock = clock
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(device or recipe.train.device)
        self.progress = progress and self.rank == 0
        self.distributed = self.world > 1
        self._owns_group = False

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        recipe = self.recipe
        if self.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            self._owns_group = True
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
        memory_saving = bool(recipe.model.config.get("memory_saving", False))
        if self.device.type == "cpu" and recipe.train.keep_freed_memory:
            # memory_saving asks for the smallest peak instead of the fastest reuse
            release_large_blocks() if memory_saving else keep_freed_memory()
        seed_everything(recipe.train.seed)
        from climode.models.config import ModelConfig

        stride = 2 ** int(recipe.model.config.get("n_downs", ModelConfig().n_downs))
        self.data = build_training_data(recipe.data, multiple=stride, seed=recipe.train.seed)
        self.model_config = model_config_for(recipe, self.data)
        seed_everything(recipe.train.seed)
        self.model = build_model(recipe.model.name, self.model_config).to(self.device)
        # reconstruction objectives (targets = the observed frames) rebuild each observed frame from the one before
        self.model.reconstruct_observed = bool(recipe.data.protocol_args.get("reconstruct", False))
        if recipe.train.init == "persistence":
            init_at_persistence(self.model)  # a resumed run then loads its own weights over this
        if recipe.train.init_from:
            self._start_from(recipe.train.init_from)  # likewise
        if recipe.train.compile:
            compile_in_place(self.model)
        opt_cls = {"adamax": torch.optim.Adamax, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[recipe.optim.name]
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            self.optimizer = None  # a reference forecast: nothing to train
        else:
            self.optimizer = opt_cls(params, lr=recipe.optim.lr, weight_decay=recipe.optim.weight_decay)
        o = recipe.optim
        decay = lambda epoch: max(o.decay**epoch, o.min_lr_factor)  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, decay) if self.optimizer else None
        self.use_discriminators = discriminators_enabled(recipe)
        self.disc = self._discriminators(opt_cls) if self.use_discriminators and self.optimizer else None
        net = self.model
        if self.distributed and self.optimizer is not None:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.net = net
        agree = all_ranks_agree if self.distributed else None
        self.step_fn = (TrainStep(net, self.optimizer, self.disc, recipe.loss, grad_clip=o.grad_clip, agree=agree)
                        if self.optimizer else None)
        per_rank = EpochSampler.per_rank(len(self.data.train), self.world)
        self.steps_per_epoch = max(1, math.ceil(per_rank / recipe.data.batch_size))

    def _start_from(self, spec: str) -> None:
        """Load the weights of checkpoint ``spec`` into the fresh model (``train.init_from``: fine-tuning)."""
        source = ckpt.load_checkpoint(ckpt.checkpoint_path(spec))
        name = self.recipe.model.name
        if source.meta.model and source.meta.model != name:
            raise ConfigError(f"train.init_from {spec} holds a {source.meta.model!r} model, not the recipe's "
                              f"{name!r}; start from a checkpoint of the same model")
        try:
            self.model.load_state_dict(source.state_dict)
        except RuntimeError as exc:
            raise ConfigError(f"train.init_from {spec}: its weights do not fit the recipe's model "
                              f"({str(exc).splitlines()[0]}); use the checkpoint's model config") from exc
        same = lambda a, b: json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)  # noqa: E731
        differ = sorted(k for k, v in (source.meta.config or {}).items() if not same(self.model_config.get(k, v), v))
        if differ:
            log.warning("train.init_from %s: the recipe changes the model config's %s", spec, ", ".join(differ))
        log.info("weights from %s (step %d, sha256 %s)", source.path, source.step, (source.meta.sha256 or "")[:12])

    def _discriminators(self, opt_cls: type) -> Discriminators:
        """D_img and D_seq (paper Eqs. 3-4) with their optimiser; identical on every rank under DDP."""
        o = self.recipe.optim
        channels = self.model_config["in_channels"]
        spec = self.data.train.window(0, 0)[2]
        n_frames = len(spec.input_offsets) + len(spec.target_offsets)
        d_img = ImageDiscriminator(channels).to(self.device)
        d_seq = SequenceDiscriminator(channels, n_frames).to(self.device)
        sync = None
        if self.distributed:
            for p in [*d_img.parameters(), *d_seq.parameters()]:
                torch.distributed.broadcast(p.data, src=0)
            sync = average_gradients
        d_opt = opt_cls([*d_img.parameters(), *d_seq.parameters()], lr=o.disc_lr or o.lr)
        return Discriminators(d_img, d_seq, d_opt, sync_grads=sync)

    def meta(self) -> CheckpointMeta:
        """What the checkpoint sidecar records about this model."""
        recipe = self.recipe
        return CheckpointMeta(
            model=recipe.model.name,
            config=self.model_config,
            variables=self.data.variables,
            units={v: UNITS.get(v, "1") for v in self.data.variables},
            time_unit=self.data.time_unit,
            grid=self.data.grid,
            static=self.data.static,
            normalization=self.data.normalizer.to_dict(),
            recipe=recipe.to_dict(),
            seed=recipe.train.seed,
            protocol={"name": recipe.data.protocol, **recipe.data.protocol_args},
            # the longest lead trained on: forecasts warn past it and refuse leads past 8x it
            max_lead=get_protocol(recipe.data.protocol, **recipe.data.protocol_args).trained_lead_hours(),
            trained_on=f"{recipe.data.dataset} ({recipe.data.split} split)",
            training={"discriminators": self.use_discriminators,
                      "precision": precision_name(getattr(self.model, "config", None), self.device)},
        )

    def _training_state(self, epoch: int, batch_in_epoch: int, elapsed: float) -> dict[str, Any]:
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(self.device),
            "data": {"epoch": epoch, "batch": batch_in_epoch},
            "elapsed_seconds": elapsed,
            "torch_threads": torch.get_num_threads(),
        }
        if self.disc is not None:
            state["disc_image"] = self.disc.image.state_dict()
            state["disc_sequence"] = self.disc.sequence.state_dict()
            state["disc_optimizer"] = self.disc.optimizer.state_dict()
        return state

    def _save(self, step: int, epoch: int, batch_in_epoch: int, elapsed: float) -> Path | None:
        if self.rank != 0:
            return None
        # the training state first: the model sidecar, written last, marks the checkpoint complete
        ckpt.save_training_state(self.run_dir, step, self._training_state(epoch, batch_in_epoch, elapsed))
        path = ckpt.save_checkpoint(self.run_dir, self.model, step, self.meta())
        ckpt.prune(self.run_dir, self.recipe.train.keep)
        log.info("checkpoint %s", path)
        return path

    def _restore(self) -> tuple[int, int, int, float]:
        latest = ckpt.latest_checkpoint(self.run_dir)
        if latest is None:
            log.info("no checkpoint in %s: starting from scratch", self.run_dir)
            return 0, 0, 0, 0.0
        loaded = ckpt.load_checkpoint(latest)
        if loaded.meta.config != _jsonable(self.model_config):
            raise TrainingError(f"{latest} was trained with another model config; use a new --run-dir")
        self.model.load_state_dict(loaded.state_dict)
        state = ckpt.load_training_state(self.run_dir, loaded.step)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if (self.disc is not None) != ("disc_image" in state):
            was = "with" if "disc_image" in state else "without"
            raise TrainingError(f"{latest} was trained {was} discriminators; set train.discriminators="
                                f"{str('disc_image' in state).lower()} to resume it, or use a new --run-dir")
        if self.disc is not None:
            self.disc.image.load_state_dict(state["disc_image"])
            self.disc.sequence.load_state_dict(state["disc_sequence"])
            self.disc.optimizer.load_state_dict(state["disc_optimizer"])
        ckpt.set_rng_state(state["rng"], self.device)
        threads = state.get("torch_threads")
        if threads is not None and threads != torch.get_num_threads():
            log.warning("the run was checkpointed with %d torch threads and resumes with %d: losses will differ "
                        "in the last digits from an uninterrupted run (set OMP_NUM_THREADS=%d to match)",
                        threads, torch.get_num_threads(), threads)
        log.info("resumed from step %d", loaded.step)
        return loaded.step, int(state["data"]["epoch"]), int(state["data"]["batch"]), float(state["elapsed_seconds"])

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        """The training loader positioned at ``epoch``, batch ``skip_batches``: built once, its sampler moved on.

        Worker processes persist across epochs; on CUDA batches come from pinned
        memory, so their host-to-device copies are asynchronous.
        """
        data = self.recipe.data
        skip = skip_batches * data.batch_size
        if getattr(self, "_train_loader", None) is not None:
            self._train_loader.sampler.set_epoch(epoch, skip)
            return self._train_loader
        self._train_loader = make_loader(self.data.train, data.batch_size, data.num_workers, shuffle=True,
                                         seed=self.recipe.train.seed, epoch=epoch, rank=self.rank, world=self.world,
                                         skip=skip, pin_memory=self.device.type == "cuda", persistent_workers=True)
        return self._train_loader

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self, step: int) -> dict[str, float]:
        """Mean L1 (normalised) and RMSE per variable (physical units) on fixed validation windows."""
        if self.data.validation is None:
            return {}
        self.model.eval()
        loader = make_loader(self.data.validation, self.recipe.data.batch_size, epoch=0)
        std = torch.tensor(self.data.normalizer.std, dtype=torch.float32, device=self.device)
        sums = {"l1": 0.0, "n": 0}
        sq = torch.zeros(len(self.data.variables), device=self.device)
        count = torch.zeros(len(self.data.variables), device=self.device)
        sample = None
        for batch in loader:
            batch = _to_device(batch, self.device)
            out = deterministic_forecast(self.model, batch["inputs"], batch["input_times"], batch["target_times"],
                                         host_copy(batch, "input_mask"), batch.get("static"))
            valid = torch.isfinite(batch["targets"]) & (batch["target_mask"] > 0)[..., None, None, None]
            err = torch.where(valid, out.frames - torch.nan_to_num(batch["targets"]), torch.zeros(()))
            sums["l1"] += float(err.abs().sum())
            sums["n"] += int(valid.sum())
            sq += (err**2).sum(dim=(0, 1, 3, 4)) * std**2
            count += valid.sum(dim=(0, 1, 3, 4))
            if sample is None:
                sample = (batch["targets"][0].cpu(), out.frames[0].cpu())
        scores = {"step": step, "val_l1": sums["l1"] / max(sums["n"], 1)}
        for i, v in enumerate(self.data.variables):
            scores[f"val_rmse_{v}"] = float(torch.sqrt(sq[i] / count[i].clamp_min(1)))
        if sample is not None and self.rank == 0:
            _write_sample(self.run_dir / "samples" / f"step-{step:08d}.png", sample, self.data.variables)
        self.model.train()
        return scores

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        with contextlib.ExitStack() as self._periodic:
            try:
                return self._fit()
            finally:
                self._teardown()

    def _wrap_longitude(self) -> None:
        """On a grid that goes once round the globe, the model wraps in longitude while it trains
        (circular padding and a periodic warp, as in forecasts: :mod:`climode.models.periodic`)."""
        lon = self.data.grid.get("lon")
        if lon is not None and is_periodic_grid(lon):
            log.info("global grid: training with periodic longitude")
            self._periodic.enter_context(periodic_longitude(self.model))

    def _teardown(self) -> None:
        """Leave the process group we joined, so no gloo/nccl thread outlives the interpreter."""
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self._owns_group = False

    def _fit(self) -> TrainResult:
        self._setup()
        self._wrap_longitude()
        if self.optimizer is None:
            raise ConfigError(f"model {self.recipe.model.name!r} has no trainable parameters; evaluate it instead")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        step, epoch, batch_in_epoch, elapsed = (0, 0, 0, 0.0)
        if self.resume:
            step, epoch, batch_in_epoch, elapsed = self._restore()
        elif ckpt.latest_checkpoint(self.run_dir) is not None:
            raise ConfigError(f"{self.run_dir} already holds checkpoints; pass --resume or use a new --run-dir")
        t = self.recipe.train
        max_steps = t.max_steps if t.max_steps is not None else float("inf")
        if t.epochs is not None:
            max_steps = min(max_steps, t.epochs * self.steps_per_epoch)
        budget_s = t.max_minutes * 60 if t.max_minutes is not None else float("inf")
        log_path = self.run_dir / "metrics.csv"
        val_path = self.run_dir / "validation.csv"
        if self.rank == 0:
            _truncate_csv(log_path, step)
            _truncate_csv(val_path, step)
        result = TrainResult(steps=step, checkpoint=ckpt.latest_checkpoint(self.run_dir))
        start = self.clock() - elapsed
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            total = None if math.isinf(max_steps) else int(max_steps)
            bar = tqdm(total=total, initial=step, desc=self.recipe.name, unit="step", dynamic_ncols=True)
        self.model.train()
        done = step >= max_steps
        last_saved = step
        while not done:
            loader = self._loader(epoch, batch_in_epoch)
            if len(loader) == 0:  # cannot happen with a padded sampler; never spin on an empty epoch
                raise TrainingError(f"rank {self.rank} has no training windows left in epoch {epoch} "
                                    f"(batch {batch_in_epoch} of {self.steps_per_epoch})")
            for batch in loader:
                t0 = time.perf_counter()
                try:
                    res = self.step_fn(_to_device(batch, self.device))
                except NonFiniteError as exc:
                    raise TrainingError(
                        f"non-finite values at step {step + 1}: {exc}; last good checkpoint: "
                        f"{ckpt.latest_checkpoint(self.run_dir)}; lower optim.lr or set optim.grad_clip"
                    ) from exc
                losses = res.losses
                step += 1
                batch_in_epoch += 1
                row = {"step": step, "epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], **losses,
                       "samples_per_s": len(batch["inputs"]) / (time.perf_counter() - t0)}
                result.losses.append(row)
                epoch_done = batch_in_epoch >= self.steps_per_epoch
                if epoch_done:  # the schedule steps per epoch, before any checkpoint of this step
                    epoch += 1
                    batch_in_epoch = 0
                    self.scheduler.step()
                if self.rank == 0 and (step % t.log_every == 0 or step == 1):
                    _append_csv(log_path, row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['total']:.4f}", sps=f"{row['samples_per_s']:.1f}")
                if step % t.validate_every == 0:
                    scores = self.validate(step)
                    if scores and self.rank == 0:
                        result.validation.append(scores)
                        _append_csv(val_path, scores)
                elapsed = self.clock() - start
                done = self._stop_agreed(step >= max_steps or elapsed >= budget_s)
                if step % t.checkpoint_every == 0 or done:
                    self._save(step, epoch, batch_in_epoch, elapsed)
                    last_saved = step
                if done or epoch_done:
                    break
        if last_saved != step:
            self._save(step, epoch, batch_in_epoch, self.clock() - start)
        if bar is not None:
            bar.close()
        result.steps = step
        result.checkpoint = ckpt.latest_checkpoint(self.run_dir)
        if self.distributed:
            self._check_replicas_agree()
            torch.distributed.barrier()  # no rank leaves while another still talks to it
        return result

    def _stop_agreed(self, stop: bool) -> bool:
        """Stop when any rank's budget is spent: every rank then stops after the same step.

        Each rank measures ``train.max_minutes`` on its own clock; without this
        one all-reduce per step a rank whose clock ran ahead left while the
        others waited for it in the next step's gradient all-reduce.
        """
        if not self.distributed:
            return stop
        return not all_ranks_agree(not stop)

    def _check_replicas_agree(self) -> None:
        """Every rank must end with the same weights: the generator and the discriminators."""
        parts = {"generator": list(self.model.parameters())}
        if self.disc is not None:
            parts["discriminators"] = self.disc.parameters()
        sums = {}
        for name, params in parts.items():
            checksum = _checksum(params).to(self.device)
            gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
            torch.distributed.all_gather(gathered, checksum)
            gathered = [g.cpu() for g in gathered]
            if any(not torch.allclose(g, gathered[0]) for g in gathered):
                raise TrainingError(f"ranks ended with different {name} weights: {[g.tolist() for g in gathered]}")
            sums[name] = gathered[0].tolist()
        log.info("all %d ranks hold identical weights (%s)", self.world,
                 ", ".join(f"{k} checksum {v}" for k, v in sums.items()))


def discriminators_enabled(recipe: Recipe) -> bool:
    """Whether to train with D_img and D_seq: the recipe's explicit switch, else the model's registry flag."""
    from climode.models.registry import training_flags

    registry = bool(training_flags(recipe.model.name)["discriminators"])
    explicit = recipe.train.discriminators
    if explicit is None:
        return registry
    if explicit != registry:
        log.warning("train.discriminators=%s overrides model %r, whose registry entry trains %s adversarial losses",
                    explicit, recipe.model.name, "with" if registry else "without")
    return bool(explicit)


def compile_in_place(model: torch.nn.Module) -> None:
    """``torch.compile`` the encoder and decoder without changing the module tree (state-dict keys stay)."""
    for name in ("encoder", "decoder"):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            module.compile()


def all_ranks_agree(finite: bool) -> bool:
    """True only if ``finite`` holds on every rank (one all-reduce of a flag)."""
    flag = torch.tensor([0.0 if finite else 1.0], device=_collective_device())
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item() == 0.0)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over the ranks (what DDP does for the generator)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    flat = _flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat)
    flat /= torch.distributed.get_world_size()
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _checksum(params: list[torch.nn.Parameter]) -> torch.Tensor:
    flat = torch.cat([p.detach().float().flatten() for p in params])
    return torch.stack([flat.sum(), (flat * torch.arange(len(flat), device=flat.device) % 7).sum()]).cpu()


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(ckpt._to_json(value)))


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a resumed run rewrites them)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    keep = [r for r in rows if int(float(r["step"])) <= step]
    from climode.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(keep)


def _write_sample(path: Path, sample: tuple[torch.Tensor, torch.Tensor], variables: list[str]) -> None:
    """Truth and prediction of the last lead of one validation window, one column per variable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is an optional extra
        return
    truth, pred = sample[0][-1].numpy(), sample[1][-1].numpy()
    n = min(len(variables), truth.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 5), squeeze=False)
    for i in range(n):
        vmin, vmax = np.nanmin(truth[i]), np.nanmax(truth[i])
        for row, (title, field_) in enumerate((("truth", truth[i]), ("forecast", pred[i]))):
            ax = axes[row][i]
            ax.imshow(field_, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(f"{variables[i]} {title}", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    from climode.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
