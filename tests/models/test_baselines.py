import math
import sys

import numpy as np
import pytest
import torch

from climode.errors import ConfigError, ModelInputError
from climode.models.baselines.latent_ode import LatentODE, ODEConvConfig
from climode.models.baselines.recurrent import ConvGRUConfig, VidRNN, VidRNNConfig
from climode.models.baselines.simple_ode import SimpleODE, SimpleODEConfig
from climode.models.config import ModelConfig
from climode.models.latent import kl_standard_normal
from climode.models.registry import (
    build_config,
    config_class,
    get_model,
    list_models,
    model_spec,
    training_flags,
)
from climode.models.vidode import VidODE
from climode.training.step import TrainStep

LEARNED = ["ode_fc", "ode_conv", "latent_ode", "convgru", "convgru_dt", "convgru_decay",
           "vid_rnn", "simple_ode", "simple_ode_vae"]
ELBO = ["latent_ode", "simple_ode_vae"]
DETERMINISTIC = [n for n in LEARNED if n not in ELBO + ["vid_rnn"]]

# per-sample irregular times on a 0.5 grid (relative to each origin), so fixed-step rk4
# (step 0.5) visits the same points whatever the batch mates ask for
TIMES = torch.tensor([[0.0, 1.0, 2.5, 3.0, 4.0], [0.0, 0.5, 2.0, 5.0, 6.0], [3.0, 3.5, 7.0, 9.0, 9.5]])
MASK = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 1, 1, 1], [1, 1, 1, 0, 1]], dtype=torch.float32)
QUERIES = torch.tensor([[4.0, 5.0, 6.5], [6.0, 7.0, 8.0], [9.5, 10.0, 12.0]])


def tiny(name, **overrides):
    torch.manual_seed(0)
    return get_model(name, config_class(name).tiny(in_channels=2, **overrides))


@pytest.fixture
def frames():
    torch.manual_seed(1)
    return torch.rand(3, 5, 2, 8, 8)


# ---------------------------------------------------------------------- registry
def test_registry_lists_every_model_with_description_and_paper():
    names = [e.name for e in list_models()]
    expected = {"vidode", "vidode_a", "vidode_b", "vidode_c", "vidode_d", "vidode_e", *LEARNED,
                "persistence", "pysteps_lk", "pysteps_vet", "wind_advection"}
    assert expected <= set(names)
    assert all(e.description and e.paper for e in list_models())


def test_unknown_model_and_unknown_key_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'vidoe'.*vidode_a.*simple_ode_vae"):
        get_model("vidoe", {})
    with pytest.raises(ConfigError, match="unknown key latent_sise"):
        get_model("latent_ode", {"latent_sise": 4})


def test_ablations_are_switches_on_vidode_config():
    flags = {n: (get_model(n, ModelConfig.tiny()).config) for n in ("vidode_b", "vidode_d", "vidode_e")}
    assert (flags["vidode_b"].use_convgru, flags["vidode_b"].use_warp, flags["vidode_b"].use_composition) == (True, False, False)
    assert (flags["vidode_d"].use_warp, flags["vidode_d"].use_composition) == (True, False)
    assert flags["vidode_e"] == ModelConfig.tiny()
    assert isinstance(get_model("vidode_b", {}), VidODE)
    # (A) is Table 1's ODE-Conv (Table 4 repeats its KTH row): concatenated frames, conv ODE, no ConvGRU
    a = get_model("vidode_a", {})
    assert (a.config.encoder, a.config.dynamics, a.config.variational) == ("concat", "conv", False)
    assert a.config == get_model("ode_conv", {}).config
    assert not training_flags("vidode_b")["discriminators"]
    assert training_flags("vidode_c")["discriminators"] and training_flags("vidode")["discriminators"]
    with pytest.raises(ConfigError, match="fixes time_mode='delta'"):
        get_model("convgru_dt", {"time_mode": "decay"})
    with pytest.raises(ConfigError, match="fixes variational=False"):
        build_config("ode_conv", {"variational": True})


@torch.no_grad()
def test_model_rebuilds_from_name_and_config_dict(frames):
    for name in ("vidode_b", "ode_fc", "convgru_decay", "simple_ode_vae"):
        model = tiny(name).eval()
        name2, data = model_spec(model)
        assert name2 == name and isinstance(data, dict)
        rebuilt = get_model(name2, data).eval()
        rebuilt.load_state_dict(model.state_dict())
        a = model(frames, TIMES, QUERIES, MASK, sample_z0=False if name in ELBO else None).frames
        b = rebuilt(frames, TIMES, QUERIES, MASK, sample_z0=False if name in ELBO else None).frames
        assert torch.equal(a, b), name


def test_reference_models_resolve_lazily(monkeypatch):
    pytest.importorskip("climode.models.baselines.reference")
    persistence = get_model("persistence", {"in_channels": 2})
    assert get_model(*model_spec(persistence)).config == persistence.config
    assert config_class("pysteps_vet")().method == "VET"
    with pytest.raises(ConfigError, match="fixes method='LK'"):
        build_config("pysteps_lk", {"method": "vet2"})
    assert build_config("pysteps_lk", {"method": "lk"}).method == "LK"
    monkeypatch.setitem(sys.modules, "climode.models.baselines.reference", None)  # import fails
    assert "persistence" in [e.name for e in list_models()]
    assert isinstance(get_model("convgru", {}), torch.nn.Module)
    with pytest.raises(ConfigError, match="not available"):
        get_model("persistence", {})


# ---------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("name", LEARNED)
@torch.no_grad()
def test_output_shapes_for_irregular_per_sample_times(name, frames):
    model = tiny(name).eval()
    out = model(frames, TIMES, QUERIES, MASK)
    assert out.frames.shape == (3, 3, 2, 8, 8)
    assert torch.isfinite(out.frames).all()
    one = model(frames[:, :, :, :, :4].repeat(1, 1, 1, 1, 3), TIMES[0], [4.5], MASK[0])  # shared [T] times, 8x12
    assert one.frames.shape == (3, 1, 2, 8, 12)


@pytest.mark.parametrize("name", LEARNED)
@torch.no_grad()
def test_masked_frames_do_not_matter_observed_ones_do(name, frames):
    model = tiny(name).eval()
    base = model(frames, TIMES, QUERIES, MASK, sample_z0=False).frames
    changed = frames.clone()
    changed[0, 2] = float("nan")  # unobserved: may even be NaN
    changed[1, 1] = 100.0
    changed[2, 3] = -7.0
    assert torch.equal(model(changed, TIMES, QUERIES, MASK, sample_z0=False).frames, base)
    changed = changed + 0.5 * MASK.view(3, 5, 1, 1, 1)  # every observed frame
    assert not torch.allclose(model(changed, TIMES, QUERIES, MASK, sample_z0=False).frames, base, atol=1e-4)


@pytest.mark.parametrize("name", LEARNED)
@torch.no_grad()
def test_prediction_independent_of_batch_mates(name, frames):
    model = tiny(name).eval()
    together = model(frames, TIMES, QUERIES, MASK, sample_z0=False)
    for b in range(3):
        alone = model(frames[b : b + 1], TIMES[b : b + 1], QUERIES[b : b + 1], MASK[b : b + 1], sample_z0=False)
        assert torch.allclose(alone.frames[0], together.frames[b], atol=1e-4), (name, b)


@pytest.mark.parametrize("name", LEARNED)
def test_every_parameter_gets_a_gradient(name, frames):
    model = tiny(name).train()
    out = model(frames, TIMES, QUERIES, MASK)
    loss = out.frames.square().mean() + sum(out.extra_losses.values())
    if out.z0_std is not None:
        loss = loss + out.z0_std.mean() + out.z0_mean.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


@pytest.mark.parametrize("name", LEARNED)
def test_a_few_steps_reduce_the_loss(name, frames):
    model = tiny(name, **({"n_inputs": 3} if name in ("ode_fc", "ode_conv") else {}))
    batch = {
        "inputs": frames[:2, :3],
        "input_times": TIMES[:2, :3],
        "input_mask": torch.ones(2, 3),
        "targets": frames[:2, 3:],
        "target_times": TIMES[:2, 3:],
    }
    step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=1e-2))
    torch.manual_seed(0)
    totals = [step(batch).losses["total"] for _ in range(6)]
    assert all(math.isfinite(t) for t in totals)
    assert min(totals[-2:]) < totals[0], totals


@pytest.mark.parametrize("name", LEARNED)
def test_bad_input_is_a_clear_error(name, frames):
    model = tiny(name).eval()
    with pytest.raises(ModelInputError, match="channels"):
        model(torch.rand(3, 5, 3, 8, 8), TIMES, QUERIES)
    with pytest.raises(ModelInputError, match="not strictly increasing"):
        model(frames, [0.0, 2.0, 1.0, 3.0, 4.0], [5.0])
    with pytest.raises(ModelInputError, match="no observed"):
        model(frames, TIMES, QUERIES, torch.zeros(3, 5))


# ---------------------------------------------------------------------- sampling and the ELBO
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_models_reject_sampled_z0(name, frames):
    with pytest.raises(ConfigError, match="sample_z0"):
        config_class(name).tiny(sample_z0=True)
    model = tiny(name).eval()
    with pytest.raises(ConfigError, match="sample_z0"):
        model(frames, TIMES, QUERIES, MASK, sample_z0=True)


@pytest.mark.parametrize("name", ELBO)
@torch.no_grad()
def test_elbo_models_sample_an_ensemble(name, frames):
    model = tiny(name).eval()
    assert model.config.sample_z0
    a, b = (model(frames, TIMES, QUERIES, MASK).frames for _ in range(2))
    c, d = (model(frames, TIMES, QUERIES, MASK, sample_z0=False).frames for _ in range(2))
    assert not torch.allclose(a, b) and torch.equal(c, d)


@pytest.mark.parametrize("name", ELBO)
def test_elbo_sign_and_terms(name, frames):
    model = tiny(name).eval()
    terms = model.elbo_terms(frames, TIMES, MASK)
    assert float(terms.kl.detach()) >= 0
    assert float(terms.log_likelihood.detach()) < 0  # Gaussian with std 1: log p <= -0.5 log(2 pi) per cell
    assert torch.allclose(terms.loss, -(terms.log_likelihood - terms.kl))
    # the NLL is -log N(x; Dec(z(t)), 1) of the observed inputs per cell (queries at the input times
    # decode the same z(t)); the KL is per observed cell too (5 frames of 2 x 8 x 8 cells per sample)
    torch.manual_seed(3)
    with torch.no_grad():
        out = model(frames, TIMES[0], TIMES[0])
    expected = (0.5 * (frames - out.frames).square() + 0.5 * math.log(2 * math.pi)).mean()
    assert torch.allclose(out.extra_losses["nll"], expected, rtol=1e-4)
    kl = kl_standard_normal(out.z0_mean, out.z0_std) / (5 * 2 * 8 * 8)
    assert torch.allclose(out.extra_losses["kl"], kl)
    # TrainStep minimises -ELBO: the model's NLL and KL beside L_recon
    batch = {"inputs": frames, "input_times": TIMES[0], "input_mask": torch.ones(3, 5),
             "targets": frames, "target_times": TIMES[0]}
    losses = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0)).generator_losses(batch, out)
    assert set(losses) == {"recon", "nll", "kl"}
    assert torch.equal(losses["kl"], out.extra_losses["kl"]) and torch.equal(losses["nll"], out.extra_losses["nll"])


@pytest.mark.parametrize("name", ELBO)
def test_elbo_models_learn_the_forecast_targets(name, frames):
    """The target term L_recon and the input NLL pull on the decoder with comparable strength."""
    model = tiny(name).train()
    torch.manual_seed(4)
    out = model(frames, TIMES, QUERIES, MASK)
    targets = torch.rand(3, 3, 2, 8, 8)
    losses = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0)).generator_losses(
        {"inputs": frames, "input_times": TIMES, "input_mask": MASK, "targets": targets, "target_times": QUERIES}, out)
    params = [p for p in model.decoder.parameters()]
    norm = {k: torch.cat([g.flatten() for g in torch.autograd.grad(losses[k], params, retain_graph=True)]).norm()
            for k in ("recon", "nll")}
    assert 0.05 < float(norm["recon"] / norm["nll"]) < 20, norm


# ---------------------------------------------------------------------- model-specific behaviour
@torch.no_grad()
def test_plain_convgru_ignores_time_gaps_the_others_do_not(frames):
    times_a = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    times_b = torch.tensor([0.0, 0.3, 2.6, 3.1, 4.0])  # same order and last time, other gaps
    for name, ignores in (("convgru", True), ("convgru_dt", False), ("convgru_decay", False)):
        model = tiny(name).eval()
        a = model(frames, times_a, [5.0, 6.0]).frames
        b = model(frames, times_b, [5.0, 6.0]).frames
        assert torch.equal(a, b) == ignores, name


@torch.no_grad()
def test_vid_rnn_interpolates_hidden_states_between_grid_steps():
    model = VidRNN(VidRNNConfig.tiny(in_channels=2)).eval()
    assert model.config.decoder_step / model.config.time_scale == 1.0
    z0 = torch.rand(2, model.config.latent_dim, 4, 4)
    h = model._solve_decoder(z0, np.array([0.0, 0.25, 1.0, 2.0]))
    assert torch.equal(h[0], z0)
    assert torch.allclose(h[1], 0.75 * h[0] + 0.25 * h[2])
    assert torch.allclose(h[3], model.decoder_ode(h[2], 1.0))
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.decoder.modules()) > 0  # Vid-ODE's G is kept


@torch.no_grad()
def test_simple_ode_predicts_from_the_newest_frame_and_matches_latents(frames):
    model = SimpleODE(SimpleODEConfig.tiny(in_channels=2)).eval()
    base = model(frames, TIMES, QUERIES, MASK)
    changed = frames.clone()
    changed[:, 0] += 1.0  # an earlier observed frame: enters only the Eq. 1 losses
    other = model(changed, TIMES, QUERIES, MASK)
    assert torch.equal(other.frames, base.frames)
    assert not torch.allclose(other.extra_losses["latent_match"], base.extra_losses["latent_match"])
    changed[:, 4] += 1.0  # the newest observation (observed in every sample) drives the forecast
    assert not torch.allclose(model(changed, TIMES, QUERIES, MASK).frames, base.frames)
    # with the newest frame alone, the ODE latent there is the encoded latent: no mismatch
    last_only = torch.tensor([[0.0, 0, 0, 0, 1]]).repeat(3, 1)
    out = model(frames, TIMES, QUERIES, last_only)
    assert float(out.extra_losses["latent_match"]) == 0.0
    assert float(out.extra_losses["input_recon"]) > 0.0


@torch.no_grad()
def test_concat_encoder_needs_its_input_slots_and_ode_rnn_variant_runs(frames):
    model = LatentODE(ODEConvConfig.tiny(in_channels=2, n_inputs=5)).eval()
    with pytest.raises(ModelInputError, match="5 input slots"):
        model(frames[:, :4], TIMES[:, :4], [9.5])
    variant = LatentODE(ODEConvConfig.tiny(in_channels=2, encoder="ode_rnn", update="conv")).eval()
    assert variant(frames, TIMES, QUERIES, MASK).frames.shape == (3, 3, 2, 8, 8)
    assert ConvGRUConfig.from_dict(ConvGRUConfig.tiny().to_dict()) == ConvGRUConfig.tiny()
