"""The trainer's schedule, clipping, discriminator flags, torch.compile, NaN guard and DDP pieces."""

import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

from climode.errors import ConfigError
from climode.models.config import ModelConfig
from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
from climode.models.registry import get_model
from climode.models.vidode import VidODE
from climode.training.checkpoint import load_checkpoint
from climode.training.recipe import load_recipe
from climode.training.step import Discriminators, NonFiniteError, TrainStep
from climode.training.trainer import Trainer, TrainingError, compile_in_place

FAST = ["train.discriminators=false", "data.validation_split=null", "train.checkpoint_every=100"]


def grad_norm(model):
    return float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())


# ------------------------------------------------------------------ schedule and clipping
def test_adamax_lr_decays_per_epoch_to_a_floor_as_the_trainer_builds_it(tiny_recipe, tmp_path):
    # two steps per epoch: lr 1e-3, x0.99 per epoch (not per step)
    trainer = Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=6", "data.samples_per_epoch=4"]),
                      tmp_path / "a", progress=False)
    lrs = [row["lr"] for row in trainer.fit().losses]
    assert isinstance(trainer.optimizer, torch.optim.Adamax)
    assert lrs == pytest.approx([1e-3, 1e-3, 0.99e-3, 0.99e-3, 0.99**2 * 1e-3, 0.99**2 * 1e-3], rel=1e-12)
    # one step per epoch and a fast decay: the floor lr/10 holds
    trainer = Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=6", "data.samples_per_epoch=2",
                                                       "optim.decay=0.5"]), tmp_path / "b", progress=False)
    lrs = [row["lr"] for row in trainer.fit().losses]
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4, 1e-4, 1e-4], rel=1e-12)


def test_grad_clip_option_clips_the_generator_gradient(tiny_recipe, tmp_path):
    free = Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1", "optim.grad_clip=null"]),
                   tmp_path / "free", progress=False)
    free.fit()
    clipped = Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1", "optim.grad_clip=1e-4"]),
                      tmp_path / "clip", progress=False)
    clipped.fit()
    assert grad_norm(free.model) > 1e-3
    assert grad_norm(clipped.model) == pytest.approx(1e-4, rel=1e-3)


# ------------------------------------------------------------------ adversarial learning follows the registry
@pytest.mark.parametrize("name,expected", [("vidode_b", False), ("vidode_c", True), ("vidode_d", True),
                                           ("vidode_e", True)])
def test_discriminators_follow_the_registry_training_flags(tiny_recipe, tmp_path, name, expected):
    trainer = Trainer(load_recipe(tiny_recipe, [f"model.name={name}", "data.validation_split=null"]),
                      tmp_path / name, progress=False)
    trainer._setup()
    assert (trainer.disc is not None) == expected
    assert (trainer.step_fn.discriminators.modules != []) == expected
    assert trainer.meta().training == {"discriminators": expected, "precision": "float32"}


def test_an_explicit_recipe_switch_overrides_the_registry(tiny_recipe, tmp_path, caplog):
    off = Trainer(load_recipe(tiny_recipe, ["model.name=vidode_e", "train.discriminators=false"]), tmp_path / "off",
                  progress=False)
    with caplog.at_level("WARNING"):
        off._setup()
    assert off.disc is None and "overrides model 'vidode_e'" in caplog.text
    on = Trainer(load_recipe(tiny_recipe, ["model.name=vidode_b", "train.discriminators=true"]), tmp_path / "on",
                 progress=False)
    on._setup()
    assert on.disc is not None


def test_resume_refuses_a_run_trained_with_other_discriminator_settings(tiny_recipe, tmp_path):
    Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1"]), tmp_path / "run", progress=False).fit()
    again = Trainer(load_recipe(tiny_recipe, ["train.max_steps=2", "data.validation_split=null"]), tmp_path / "run",
                    resume=True, progress=False)
    with pytest.raises(TrainingError, match="trained without discriminators; set train.discriminators=false"):
        again.fit()


# ------------------------------------------------------------------ torch.compile
def test_compile_in_place_keeps_the_state_dict_keys():
    model = get_model("vidode", ModelConfig.tiny())
    keys = list(model.state_dict())
    compile_in_place(model)
    assert list(model.state_dict()) == keys
    assert not any("_orig_mod" in k for k in keys)
    assert model.encoder._compiled_call_impl is not None and model.decoder._compiled_call_impl is not None


def test_checkpoint_of_a_compiled_run_loads_into_a_plain_model(tiny_recipe, tmp_path):
    # real inductor compilation on CPU (gcc): about a minute for the tiny model
    trainer = Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1", "train.compile=true"]), tmp_path / "c",
                      progress=False)
    trainer.fit()
    assert trainer.model.encoder._compiled_call_impl is not None
    ckpt = load_checkpoint(tmp_path / "c")
    plain = get_model(ckpt.meta.model, ckpt.meta.config)
    plain.load_state_dict(ckpt.state_dict, strict=True)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key


# ------------------------------------------------------------------ NaN/inf guard
def _blob_batch(batch=2, size=16, n_in=3, n_out=2):
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(batch, n_in + n_out, 1, size, size, generator=g)
    return {
        "inputs": frames[:, :n_in], "input_times": torch.arange(n_in, dtype=torch.float64).expand(batch, -1),
        "input_mask": torch.ones(batch, n_in), "targets": frames[:, n_in:],
        "target_times": torch.arange(n_in, n_in + n_out, dtype=torch.float64).expand(batch, -1),
        "target_mask": torch.ones(batch, n_out),
    }


class PoisonedStep(TrainStep):
    """A TrainStep whose reconstruction loss becomes inf while ``poisoned`` (as an overflow would)."""

    poisoned = False

    def generator_losses(self, batch, out):
        losses = super().generator_losses(batch, out)
        if self.poisoned:
            losses["recon"] = losses["recon"] * float("inf")
        return losses


def _gan_step(seed=0, agree=None, sync=None):
    torch.manual_seed(seed)
    model = VidODE(ModelConfig.tiny(in_channels=1))
    d_img, d_seq = ImageDiscriminator(1, base=8), SequenceDiscriminator(1, n_frames=5, base=8)
    disc = Discriminators(d_img, d_seq, torch.optim.Adamax([*d_img.parameters(), *d_seq.parameters()], lr=1e-2),
                          sync_grads=sync)
    return PoisonedStep(model, torch.optim.Adamax(model.parameters(), lr=1e-3), disc, agree=agree)


def test_non_finite_loss_stops_before_any_optimiser_step():
    step = _gan_step()
    before = [p.detach().clone() for p in [*step.model.parameters(), *step.discriminators.parameters()]]
    step.poisoned = True
    with pytest.raises(NonFiniteError, match=r"the loss became non-finite \(here: \{'recon': inf"):
        step(_blob_batch())
    after = [*step.model.parameters(), *step.discriminators.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not step.optimizer.state and not step.discriminators.optimizer.state


def test_non_finite_loss_in_training_names_the_step_and_checkpoint(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe, FAST + ["optim.lr=1.0e+30", "optim.grad_clip=null"])
    trainer = Trainer(recipe, tmp_path / "nan", progress=False)
    with pytest.raises(TrainingError, match=r"non-finite values at step \d+: .*last good checkpoint"):
        trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # the bad step was never applied


def _ddp_worker(rank, world, store, out):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    from climode.training.trainer import _checksum, all_ranks_agree, average_gradients

    try:
        # 1) different batches per rank: averaged discriminator gradients keep D identical
        step = _gan_step(seed=0, agree=all_ranks_agree, sync=average_gradients)
        torch.manual_seed(100 + rank)
        batch = _blob_batch()
        batch["targets"] = torch.rand_like(batch["targets"])
        step(batch)
        checksum = _checksum(step.discriminators.parameters())
        gathered = [torch.zeros_like(checksum) for _ in range(world)]
        torch.distributed.all_gather(gathered, checksum)
        # 2) a NaN on rank 1 only: every rank stops, none waits for the other
        step.poisoned = rank == 1
        try:
            step(_blob_batch())
            verdict = "stepped"
        except NonFiniteError as exc:
            verdict = str(exc)
        out.put((rank, [g.tolist() for g in gathered], verdict))
        torch.distributed.barrier()  # as the trainer does: no rank tears gloo down while the other still talks
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_share_discriminator_updates_and_agree_on_a_nan(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, tmp_path / "store", out)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r, (g, v)) for r, g, v in (out.get(timeout=180) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    gathered = results[0][0]
    assert np.allclose(gathered[0], gathered[1])  # D identical on both ranks
    assert "on another rank" in results[0][1]
    assert "here:" in results[1][1]


# ------------------------------------------------------------------ fine-tuning
def test_init_from_starts_a_fresh_run_at_a_checkpoints_weights(tiny_recipe, tmp_path):
    Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=2"]), tmp_path / "a", progress=False).fit()
    saved = load_checkpoint(tmp_path / "a").state_dict

    def one_step(name, *extra):  # a step of lr 1e-12 moves no weight by more than 1e-12 (Adamax)
        Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1", "train.seed=5", "optim.lr=1e-12", *extra]),
                tmp_path / name, progress=False).fit()
        return load_checkpoint(tmp_path / name)

    tuned = one_step("b", f"train.init_from={tmp_path / 'a'}")
    for key, value in tuned.state_dict.items():
        if "running_" not in key and "num_batches" not in key:  # batch-norm statistics move at any lr
            torch.testing.assert_close(value, saved[key], rtol=0, atol=1e-9)
    assert tuned.meta.recipe["train"]["init_from"] == str(tmp_path / "a")  # the sidecar says where it started
    fresh = one_step("c")
    assert max(float((v - saved[k]).abs().max()) for k, v in fresh.state_dict.items()) > 1e-3


def test_init_from_refuses_another_model_or_other_shapes(tiny_recipe, tmp_path):
    Trainer(load_recipe(tiny_recipe, FAST + ["train.max_steps=1"]), tmp_path / "a", progress=False).fit()
    with pytest.raises(ConfigError, match="holds a 'vidode' model, not the recipe's 'vidode_d'"):
        Trainer(load_recipe(tiny_recipe, FAST + ["model.name=vidode_d", f"train.init_from={tmp_path / 'a'}"]),
                tmp_path / "b", progress=False).fit()
    # a shipped model by name: found, but its layers are larger than the tiny recipe's
    with pytest.raises(ConfigError, match="train.init_from hurricanes_cpu: its weights do not fit"):
        Trainer(load_recipe(tiny_recipe, FAST + ["train.init_from=hurricanes_cpu"]), tmp_path / "c",
                progress=False).fit()
