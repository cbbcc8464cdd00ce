import numpy as np
import pytest
import torch

from climode.errors import ConfigError, ModelInputError
from climode.models.config import MEMORY_SAVING_LEVELS, ModelConfig, SolverConfig
from climode.models.decoder import DecoderStep
from climode.models.vidode import VidODE

TIMES = torch.tensor([0.0, 1.0, 2.5, 3.0, 4.0])


@torch.no_grad()
def test_reference_preset_has_published_size():
    model = VidODE(ModelConfig.reference())
    n = sum(p.numel() for p in model.parameters())
    assert 1.85e6 < n < 1.95e6
    out = model.eval()(torch.rand(1, 2, 3, 32, 32), [0.0, 1.0], [2.0])
    assert out.frames.shape == (1, 1, 3, 32, 32)


@pytest.mark.parametrize("channels,size", [(1, (8, 12)), (3, (8, 8)), (5, (4, 16))])
@torch.no_grad()
def test_any_channel_count_and_size(channels, size):
    model = VidODE(ModelConfig.tiny(in_channels=channels)).eval()
    out = model(torch.rand(2, 3, channels, *size), [0.0, 1.0, 2.0], [2.5, 3.0, 7.0])
    assert out.frames.shape == (2, 3, channels, *size)
    assert torch.isfinite(out.frames).all()


@torch.no_grad()
def test_unobserved_frames_do_not_matter_observed_ones_do(tiny_model, frames):
    mask = torch.tensor([[1, 0, 1, 1, 0]] * 3, dtype=torch.float32)
    queries = torch.tensor([4.5, 6.0])
    base = tiny_model(frames, TIMES, queries, mask).frames
    changed = frames.clone()
    changed[:, 1] = torch.rand_like(changed[:, 1]) * 100
    changed[:, 4] = float("nan")  # unobserved frames may even be NaN
    assert torch.equal(tiny_model(changed, TIMES, queries, mask).frames, base)
    changed[:, 2] += 0.5
    assert not torch.allclose(tiny_model(changed, TIMES, queries, mask).frames, base, atol=1e-4)


@torch.no_grad()
def test_prediction_independent_of_batch_mates(tiny_model, frames):
    # sample 0 alone versus sample 0 beside samples with other irregular times.  Batch-mates'
    # times only change where the fixed RK4 steps (0.5) fall (docs/model.md): the worst
    # difference measured is 1.8e-7, the float rounding of batched convolutions (2.2e-7 with
    # identical times); mixing up samples would show at 1e-2.  Tolerance 1e-5.
    times = torch.tensor([[0.0, 1.0, 2.5, 3.0, 4.0], [0.0, 0.5, 2.0, 5.0, 6.0], [3.0, 3.5, 7.0, 9.0, 9.5]])
    mask = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 1, 1, 1], [1, 1, 1, 0, 1]], dtype=torch.float32)
    queries = torch.tensor([[4.0, 5.0, 6.5], [6.0, 7.0, 8.0], [9.5, 10.0, 12.0]])
    together = tiny_model(frames, times, queries, mask).frames
    for b in range(3):
        alone = tiny_model(frames[b : b + 1], times[b : b + 1], queries[b : b + 1], mask[b : b + 1]).frames
        assert torch.allclose(alone[0], together[b], atol=1e-5, rtol=0), b


@torch.no_grad()
def test_frame_at_a_time_does_not_depend_on_other_requested_times(tiny_model, frames):
    t1, t2 = 4.5, 6.0  # one interpolation-free extrapolation, off the internal grid
    both = tiny_model(frames, TIMES, [t1, t2]).frames
    only1 = tiny_model(frames, TIMES, [t1]).frames
    only2 = tiny_model(frames, TIMES, [t2]).frames
    assert torch.allclose(both[:, 0], only1[:, 0], atol=1e-5)
    assert torch.allclose(both[:, 1], only2[:, 0], atol=1e-5)


@torch.no_grad()
def test_interpolation_and_extrapolation_in_one_call(tiny_model, frames):
    queries = [0.5, 2.0, 3.5, 5.0, 8.0]  # inside and beyond the observed range
    out = tiny_model(frames, TIMES, queries)
    assert out.frames.shape == (3, 5, 3, 8, 8)
    # interpolated frames restart from the last observation at or before them
    np.testing.assert_allclose(out.prev_times[0], [0.0, 1.0, 3.0, 4.0, 7.0])
    inside = tiny_model(frames, TIMES, [2.0]).frames
    assert torch.allclose(inside[:, 0], out.frames[:, 1], atol=1e-5)


@torch.no_grad()
def test_shifting_timestamps_changes_forecast(tiny_model, frames):
    a = tiny_model(frames, TIMES, [6.0]).frames
    b = tiny_model(frames, TIMES * 1.5, [6.0]).frames
    assert not torch.allclose(a, b, atol=1e-4)


@torch.no_grad()
def test_warp_chain_uses_previous_composed_frame(tiny_model, frames, monkeypatch):
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 1.0

    def fake_decoder(h, h_prev):
        n = h.shape[0]
        return DecoderStep(flow=flow.expand(n, -1, -1, -1), diff=torch.full((n, 3, 8, 8), 0.3), mask=torch.full((n, 1, 8, 8), 0.5))

    monkeypatch.setattr(tiny_model.decoder, "forward", fake_decoder)
    out = tiny_model(frames[:1], TIMES, [5.0, 6.0]).frames[0]
    from climode.models.warp import warp

    last = frames[:1, -1]
    first = 0.5 * warp(last, flow) + 0.5 * 0.3
    second = 0.5 * warp(first, flow) + 0.5 * 0.3
    assert torch.allclose(out[0], first[0], atol=1e-6)
    assert torch.allclose(out[1], second[0], atol=1e-6)


def test_every_parameter_gets_a_gradient(frames):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(sample_z0=True)).train()
    out = model(frames, TIMES, [4.5, 5.0, 6.0])
    loss = out.frames.mean() + out.diff.abs().mean() + out.z0_std.mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


@pytest.mark.parametrize("level", list(MEMORY_SAVING_LEVELS))
def test_memory_saving_gives_same_gradients_and_batchnorm_statistics(frames, level):
    torch.manual_seed(0)
    plain = VidODE(ModelConfig.tiny())
    saving = VidODE(ModelConfig.tiny(memory_saving=True, memory_saving_level=level))
    saving.load_state_dict(plain.state_dict())
    grads = []
    for model in (plain, saving):
        model.train()
        out = model(frames, TIMES, [4.5, 5.0, 6.0])
        out.frames.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    # the recomputation in backward must not update BatchNorm's running statistics again
    buffers = dict(plain.named_buffers())
    assert {n for n in buffers if n.endswith("num_batches_tracked")}, "the model has BatchNorm layers"
    for name, value in saving.named_buffers():
        assert torch.equal(value, buffers[name]), name
    with torch.no_grad():
        after = [m.eval()(frames, TIMES, [4.5, 6.0]).frames for m in (plain, saving)]
    assert torch.equal(after[0], after[1])


def test_adjoint_gradients_match_direct_backprop(frames):
    torch.manual_seed(0)
    solver = dict(method="dopri5", rtol=1e-6, atol=1e-7)
    direct = VidODE(ModelConfig.tiny(decoder_solver=SolverConfig(**solver)))
    adjoint = VidODE(ModelConfig.tiny(decoder_solver=SolverConfig(**solver, adjoint=True)))
    adjoint.load_state_dict(direct.state_dict())
    grads = []
    for model in (direct, adjoint):
        model.eval()
        model(frames, TIMES, [5.0, 6.0]).frames.mean().backward()
        grads.append(model.decoder_ode.net[0].weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-2)


@torch.no_grad()
def test_default_encoder_solver_steps_scale_with_gap_length(frames):
    # the default encoder solver takes RK4 steps of 0.1 model time (one frame at the default
    # time_scale of 10 frames): 4 function evaluations per frame of gap, not per gap
    default = ModelConfig()
    model = VidODE(ModelConfig.tiny(encoder_solver=default.encoder_solver, time_scale=default.time_scale)).eval()

    def encoder_nfe(times):
        return model(frames[:, : len(times)], times, [times[-1] + 1.0]).nfe_encoder

    short, long = encoder_nfe([0.0, 1.0]), encoder_nfe([0.0, 6.0])
    assert (short, long) == (4, 24)
    # the reversed encoder crosses [0.5, 0.6] in model time, which float32 makes a hair longer
    # than one step of 0.1: that must not cost a second step
    assert encoder_nfe([0.0, 1.0, 6.0]) == 4 * (5 + 1)


@torch.no_grad()
def test_sampled_z0_gives_an_ensemble(frames):
    model = VidODE(ModelConfig.tiny(sample_z0=True)).eval()
    a = model(frames, TIMES, [5.0]).frames
    b = model(frames, TIMES, [5.0]).frames
    c = model(frames, TIMES, [5.0], sample_z0=False).frames
    d = model(frames, TIMES, [5.0], sample_z0=False).frames
    assert not torch.allclose(a, b) and torch.equal(c, d)


def test_forward_encoder_order_supports_interpolation(frames):
    model = VidODE(ModelConfig.tiny(reverse_inputs=False)).eval()
    with torch.no_grad():
        out = model(frames, TIMES, [0.5, 2.0, 6.0]).frames
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(input_times=[0.0, 2.0, 1.0, 3.0, 4.0]), "not strictly increasing"),
        (dict(input_times=[0.0, 1.0, 1.0, 3.0, 4.0]), "not strictly increasing"),
        (dict(input_mask=[1, 1, 1]), "mask"),
        (dict(input_times=[0.0, 1.0, 2.0]), "match"),
        (dict(inputs=torch.rand(3, 5, 4, 8, 8)), "4 channels"),
        (dict(inputs=torch.rand(3, 5, 3, 9, 8)), "not divisible"),
        (dict(query_times=[-1.0]), "before its first observation"),
        (dict(input_mask=[0, 0, 0, 0, 0]), "no observed"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_model, frames, kwargs, message):
    args = dict(inputs=frames, input_times=TIMES, query_times=[5.0], input_mask=None)
    args.update(kwargs)
    with pytest.raises(ModelInputError, match=message):
        tiny_model(**args)


def test_nan_in_observed_input_is_a_clear_error(tiny_model, frames):
    frames = frames.clone()
    frames[0, 2, 0, 1, 1] = float("nan")
    with pytest.raises(ModelInputError, match="NaN"):
        tiny_model(frames, TIMES, [5.0])


def test_config_rejects_unknown_keys_and_values():
    with pytest.raises(ConfigError, match="unknown key decoder_solver.methd"):
        ModelConfig.from_dict({"decoder_solver": {"methd": "rk4"}})
    with pytest.raises(ConfigError, match="solver method"):
        SolverConfig(method="rk5")
    with pytest.raises(ConfigError, match="difference_mode"):
        ModelConfig(difference_mode="sum")
    cfg = ModelConfig.from_dict(ModelConfig.tiny().to_dict())
    assert cfg == ModelConfig.tiny()
