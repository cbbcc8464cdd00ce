import copy

import numpy as np
import pytest
import torch

from climode.models.config import ModelConfig, SolverConfig
from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator
from climode.models.vidode import VidODE
from climode.training.losses import LossWeights
from climode.training.step import Discriminators, TrainStep


def moving_blob_batch(batch=2, size=16, n_in=5, n_out=3, speed=1.0):
    """A Gaussian blob moving right by ``speed`` px per frame."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = []
    for b in range(batch):
        cy, cx0 = 5.0 + 5 * b, 2.0
        seq = [np.exp(-((yy - cy) ** 2 + (xx - cx0 - speed * t) ** 2) / 4.0) for t in range(n_in + n_out)]
        frames.append(np.stack(seq)[:, None])
    frames = torch.from_numpy(np.stack(frames))
    return {
        "inputs": frames[:, :n_in],
        "input_times": torch.arange(n_in, dtype=torch.float64).expand(batch, -1),
        "input_mask": torch.ones(batch, n_in),
        "targets": frames[:, n_in:],
        "target_times": torch.arange(n_in, n_in + n_out, dtype=torch.float64).expand(batch, -1),
        "target_mask": torch.ones(batch, n_out),
    }


def centroid_x(frame: torch.Tensor) -> float:
    w = frame.clamp_min(0).squeeze()
    xs = torch.arange(w.shape[-1], dtype=w.dtype)
    return float((w.sum(0) * xs).sum() / w.sum())


@pytest.fixture(scope="module")
def overfit_run():
    torch.manual_seed(0)
    cfg = ModelConfig.tiny(in_channels=1, init_dim=8, ode_hidden=16, difference_mode="residual")
    model = VidODE(cfg)
    batch = moving_blob_batch()
    step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=3e-3))
    losses = [step(batch).losses["recon"] for _ in range(150)]
    return model, batch, losses


def test_tiny_model_overfits_one_batch(overfit_run):
    _, _, losses = overfit_run
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) / 10


def test_moving_pattern_displacement_grows_with_lead_time(overfit_run):
    model, batch, _ = overfit_run
    model.eval()
    with torch.no_grad():
        out = model(batch["inputs"][:1], batch["input_times"][:1], [5.0, 6.0, 7.0]).frames[0]
    start = centroid_x(batch["inputs"][0, -1])
    shifts = [centroid_x(out[k]) - start for k in range(3)]
    assert 0.3 < shifts[0] < shifts[1] < shifts[2]


def test_gan_step_updates_generator_and_discriminators():
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(in_channels=1))
    d_img = ImageDiscriminator(1, base=8)
    d_seq = SequenceDiscriminator(1, n_frames=8, base=8)
    disc = Discriminators(d_img, d_seq, torch.optim.Adamax([*d_img.parameters(), *d_seq.parameters()], lr=1e-3))
    step = TrainStep(model, torch.optim.Adamax(model.parameters(), lr=1e-3), disc)
    before_g = [p.detach().clone() for p in model.parameters()]
    before_d = [p.detach().clone() for p in disc.image.parameters()]
    before_seq = [p.detach().clone() for p in disc.sequence.parameters()]
    result = step(moving_blob_batch(size=32))
    assert {"recon", "diff", "adv_img", "adv_seq", "disc"} <= set(result.losses)
    assert all(np.isfinite(v) for v in result.losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before_g, model.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, disc.image.parameters()))
    changed = [not torch.equal(a, b) for a, b in zip(before_seq, disc.sequence.parameters())]
    assert sum(changed) == len(changed)  # every tensor of D_seq moved


class RecordingAdamax(torch.optim.Adamax):
    """Adamax that records, at its step, which of ``watched`` hold a gradient."""

    watched: list = []
    seen: list | None = None

    def step(self, closure=None):
        self.seen = [p.grad is not None for p in self.watched]
        return super().step(closure)


def gan_setup():
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(in_channels=1))
    d_img, d_seq = ImageDiscriminator(1, base=8), SequenceDiscriminator(1, n_frames=8, base=8)
    d_opt = RecordingAdamax([*d_img.parameters(), *d_seq.parameters()], lr=0.05)  # a large D update
    d_opt.watched = list(model.parameters())
    weights = LossWeights(img=1.0, seq=1.0)  # adversarial terms as large as L_recon
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), Discriminators(d_img, d_seq, d_opt), weights)
    return step, moving_blob_batch(size=32)


def eq4_sequences(batch, last, n_frames=8):
    """Eq. 4 for extrapolation, built by hand: per target s_k, [inputs, true targets before s_k, last[k]]."""
    seqs = []
    for k in range(batch["targets"].shape[1]):
        seq = torch.cat([batch["inputs"], batch["targets"][:, :k], last[:, k : k + 1]], dim=1)
        pad = seq.new_zeros(seq.shape[0], n_frames - seq.shape[1], *seq.shape[2:])
        seqs.append(torch.cat([pad, seq], dim=1))
    return torch.stack(seqs, dim=1).flatten(0, 1)  # [B * K, n_frames, ...], sample-major


def generator_grads(step, g0, d_img, d_seq, batch):
    """d/dG of Eq. 7 for generator ``g0`` against discriminators (d_img, d_seq), computed independently."""
    g = copy.deepcopy(g0)
    out = g(batch["inputs"], batch["input_times"], batch["target_times"], batch["input_mask"])
    ref = TrainStep(g, torch.optim.SGD(g.parameters(), lr=0.0), weights=step.weights)
    losses = ref.generator_losses(batch, out)
    for d in (d_img, d_seq):
        d.requires_grad_(False)
    seq = eq4_sequences(batch, out.frames)
    w = step.weights
    total = (losses["recon"] + w.diff * losses["diff"] + w.img * ((d_img(out.frames.flatten(0, 1)) - 1) ** 2).mean()
             + w.seq * ((d_seq(seq) - 1) ** 2).mean())
    return torch.autograd.grad(total, list(g.parameters()), allow_unused=True)


def test_discriminator_update_never_reaches_the_generator():
    step, batch = gan_setup()
    step(batch)
    # at D's optimiser step no generator parameter held a gradient: D saw detached fakes
    assert step.discriminators.optimizer.seen is not None and not any(step.discriminators.optimizer.seen)


def test_discriminator_gradient_is_its_own_loss_on_detached_fakes():
    step, batch = gan_setup()
    g0 = copy.deepcopy(step.model)
    d_pre = [copy.deepcopy(d) for d in step.discriminators.modules]
    step(batch)
    frames = g0(batch["inputs"], batch["input_times"], batch["target_times"], batch["input_mask"]).frames.detach()
    d_img, d_seq = d_pre
    real_seq = eq4_sequences(batch, batch["targets"])
    fake_seq = eq4_sequences(batch, frames)
    lsgan = lambda r, f: 0.5 * (((r - 1) ** 2).mean() + (f**2).mean())  # noqa: E731
    d_loss = (lsgan(d_img(batch["targets"].flatten(0, 1)), d_img(frames.flatten(0, 1)))
              + lsgan(d_seq(real_seq), d_seq(fake_seq)))
    expected = torch.autograd.grad(d_loss, [*d_img.parameters(), *d_seq.parameters()])
    got = [p.grad for p in step.discriminators.parameters()]
    # no generator backward leaked into D's gradients
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(got, expected))


def test_generator_adversarial_gradient_uses_the_updated_discriminators():
    step, batch = gan_setup()
    g0 = copy.deepcopy(step.model)
    d_pre = [copy.deepcopy(d) for d in step.discriminators.modules]
    step(batch)
    got = [p.grad for p in step.model.parameters()]
    d_post = [copy.deepcopy(d) for d in step.discriminators.modules]
    post = generator_grads(step, g0, *d_post, batch)
    pre = generator_grads(step, g0, *d_pre, batch)

    def close(a, b):
        return all((x is None and y is None) or torch.allclose(x, y, rtol=1e-4, atol=1e-7) for x, y in zip(a, b))

    assert close(got, post)
    assert not close(got, pre)  # the check can tell the two orders apart


def test_missing_targets_never_enter_the_loss():
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(in_channels=1))
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0))
    batch = moving_blob_batch()
    clean = step(batch).losses
    batch["targets"] = batch["targets"].clone()
    batch["targets"][:, -1] = float("nan")  # missing truth
    batch["target_mask"] = batch["target_mask"].clone()
    batch["target_mask"][0, 0] = 0  # a padded target
    dirty = step(batch).losses
    assert np.isfinite(dirty["recon"]) and np.isfinite(dirty["diff"])
    assert dirty["recon"] != clean["recon"]


def _time_coded_batch():
    """Interpolation: inputs at 0, 2, 4, 6 and targets at 1, 3, 5; every frame holds its own time."""
    t_in, t_tg = torch.tensor([[0.0, 2, 4, 6]]), torch.tensor([[1.0, 3, 5]])
    frame = lambda t: torch.full((1, 1, 8, 8), float(t))  # noqa: E731
    return {"inputs": torch.stack([frame(t) for t in t_in[0]], dim=1), "input_times": t_in,
            "input_mask": torch.ones(1, 4), "targets": torch.stack([frame(t) for t in t_tg[0]], dim=1),
            "target_times": t_tg, "target_mask": torch.ones(1, 3)}


def test_sequence_discriminator_sees_each_target_after_the_true_frames_before_it_in_time_order():
    from climode.training.adversarial import sequences_ending_with

    batch = _time_coded_batch()
    fake = torch.full((1, 3, 1, 8, 8), -1.0)
    real_seq = sequences_ending_with(batch, batch["targets"], 7)
    fake_seq = sequences_ending_with(batch, fake, 7)
    assert real_seq.shape == fake_seq.shape == (3, 7, 1, 8, 8)
    values = real_seq[:, :, 0, 0, 0]
    # s = 1: [0, 1]; s = 3: [0, 1, 2, 3]; s = 5: [0, ..., 5]; zero-padded at the front
    assert values.tolist() == [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 2, 3], [0, 0, 1, 2, 3, 4, 5]]
    assert torch.equal(fake_seq[:, :-1], real_seq[:, :-1]) and bool((fake_seq[:, -1] == -1).all())


def test_nan_target_cells_are_masked_alike_in_real_and_generated_frames():
    step, batch = gan_setup()
    batch["targets"][:, :, :, :4, :] = float("nan")  # e.g. grid padding
    frames = torch.rand_like(batch["targets"])
    d_img, d_seq = step.discriminators.modules
    seen = []
    d_img.register_forward_hook(lambda m, args, out: seen.append(("img", args[0])))
    d_seq.register_forward_hook(lambda m, args, out: seen.append(("seq", args[0])))
    step._scores(batch, batch["targets"])
    step._scores(batch, frames)
    (_, real_img), (_, real_seq), (_, fake_img), (_, fake_seq) = seen
    for real, fake in ((real_img, fake_img), (real_seq[:, -1], fake_seq[:, -1])):
        assert bool((real[..., :4, :] == 0).all()) and bool((fake[..., :4, :] == 0).all())
        assert bool((fake[..., 4:, :] != 0).all())


def test_extreme_l1_weighs_the_tails_of_the_truth_only():
    from climode.training.losses import extreme_l1

    target = torch.tensor([[[[0.5, -0.9, 3.0, float("nan")]]]])  # [B=1, K=1, 1, 4], standardised
    off = torch.tensor([[[[1.5, 0.1, 2.0, 9.0]]]])  # 1 off everywhere
    # the two cells within one standard deviation and the missing one weigh nothing; 3.0 weighs 2.0
    assert float(extreme_l1(off, target)) == pytest.approx(2.0 * 1.0 / 3)
    assert float(extreme_l1(off, target, torch.zeros(1, 1))) == 0.0  # a masked frame weighs nothing
    filled = torch.tensor([[[[0.5, -0.9, 1.0, 0.0]]]])  # the extreme cell filled to 1
    deep = torch.tensor([[[[0.5, -0.9, 2.5, 0.0]]]])
    assert float(extreme_l1(filled, target)) > float(extreme_l1(deep, target)) > 0


def test_extreme_term_enters_the_step_with_its_weight():
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(in_channels=1, init_dim=8, ode_hidden=16, difference_mode="residual"))
    batch = moving_blob_batch()
    batch["targets"] = batch["targets"] * 4.0  # peaks beyond one standard deviation
    step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=1e-3), weights=LossWeights(extreme=2.0))
    losses = {k: torch.as_tensor(v) for k, v in step.generator_losses(batch, model(
        batch["inputs"], batch["input_times"], batch["target_times"], batch["input_mask"])).items()}
    assert float(losses["extreme"]) > 0
    total = step.total_loss(losses)
    assert float(total) == pytest.approx(float(losses["recon"] + losses["diff"] + 2.0 * losses["extreme"]), rel=1e-6)
    assert "extreme" not in TrainStep(model, step.optimizer).generator_losses(batch, model(
        batch["inputs"], batch["input_times"], batch["target_times"], batch["input_mask"]))
