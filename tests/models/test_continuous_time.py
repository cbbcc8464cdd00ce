"""What a query at an arbitrary time computes: anchors, grid frames and fractional steps."""

import numpy as np
import pytest
import torch

from climode.models.config import ModelConfig
from climode.models.vidode import VidODE

TIMES = torch.tensor([0.0, 1.0, 2.5, 3.0, 4.0])


@torch.no_grad()
@pytest.mark.parametrize("difference_mode", ["residual", "image"])
def test_query_at_an_observation_time_is_that_observation(frames, difference_mode):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(difference_mode=difference_mode)).eval()
    mask = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])  # 2.5 unobserved: a query there is a forecast
    out = model(frames, TIMES, [0.0, 1.0, 2.5, 3.0, 4.0], mask)
    for k in (0, 1, 3, 4):
        assert torch.equal(out.frames[:, k], frames[:, k]), k
    assert (out.frames[:, 2] - frames[:, 1]).abs().max() > 1e-3  # from 1.0, not a copy of anything
    assert torch.equal(out.flow[:, 4], torch.zeros_like(out.flow[:, 4]))
    np.testing.assert_allclose(out.prev_times[0], [0.0, 1.0, 2.0, 3.0, 4.0])


def moving_blob_model(speed: float = 1.0) -> VidODE:
    """A tiny Vid-ODE whose G says: move everything ``speed`` pixels right per decoder step, no new content."""
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(decoder_step=1.0)).eval()
    last = model.decoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = speed  # flow dx
        last.bias[-1] = 30.0  # mask M = sigmoid(30): all warp
    return model


def centroid_x(frames: torch.Tensor) -> np.ndarray:
    """x centroid of channel 0 of frames [K, C, H, W]."""
    img = frames[:, 0].double()
    xs = torch.arange(img.shape[-1], dtype=torch.float64)
    return ((img.sum(1) * xs).sum(-1) / img.sum((1, 2))).numpy()


@torch.no_grad()
def test_displacement_grows_smoothly_with_query_time_on_and_off_the_grid():
    model = moving_blob_model()
    y, x = torch.meshgrid(torch.arange(8.0), torch.arange(32.0), indexing="ij")
    blob = torch.exp(-((x - 6) ** 2 + (y - 3.5) ** 2) / 3.0)
    inputs = blob.expand(1, 5, 3, 8, 32).clone()
    queries = 4.0 + np.arange(0, 25) / 8  # 0 to 3 decoder steps after the last input, every 1/8 step
    out = model(inputs, TIMES, queries).frames[0]
    shift = centroid_x(out) - centroid_x(inputs[0, -1:])[0]
    assert np.all(np.diff(shift) > 0.05)  # strictly growing, including between grid points
    # bilinear warping moves the centroid by exactly the flow: the fraction of the step
    np.testing.assert_allclose(shift, queries - 4.0, atol=1e-3)


@torch.no_grad()
def test_query_between_two_grid_steps_lies_between_them(tiny_model, frames):
    queries = 4.0 + np.linspace(0.0, 1.0, 11)
    out = tiny_model(frames, TIMES, queries).frames
    last = frames[:, -1]
    distance = (out - last[:, None]).flatten(2).norm(dim=2)  # [B, K] from the last observation
    assert torch.all(distance[:, 1:] - distance[:, :-1] > 0)
    assert torch.all(distance[:, 0] == 0)


@torch.no_grad()
def test_frame_is_continuous_across_grid_points(tiny_model, frames):
    eps = 1e-4
    out = tiny_model(frames, TIMES, [4.0 + eps, 5.0 - eps, 5.0, 5.0 + eps, 6.0 - eps, 6.0]).frames
    scale = (out[:, 2] - frames[:, -1]).abs().max()
    assert (out[:, 0] - frames[:, -1]).abs().max() < 1e-3 * scale
    assert (out[:, 1] - out[:, 2]).abs().max() < 1e-3 * scale
    assert (out[:, 3] - out[:, 2]).abs().max() < 1e-3 * scale
    assert (out[:, 4] - out[:, 5]).abs().max() < 1e-3 * scale


@torch.no_grad()
def test_off_grid_frame_does_not_depend_on_the_other_requested_times(tiny_model, frames):
    alone = tiny_model(frames, TIMES, [5.4]).frames[:, 0]
    mixed = tiny_model(frames, TIMES, [1.0, 2.2, 4.0, 5.0, 5.4, 6.0, 7.3]).frames[:, 4]
    np.testing.assert_allclose(mixed.numpy(), alone.numpy(), atol=1e-5, rtol=0)


def test_gradients_reach_g_through_a_fractional_step(frames):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny()).train()
    out = model(frames, TIMES, [4.5])
    out.frames.sum().backward()
    assert model.decoder.net[-1].weight.grad.abs().sum() > 0
    assert model.decoder_ode.net[0].weight.grad.abs().sum() > 0


def test_g_runs_once_per_output_frame_of_a_regular_extrapolation(frames):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny()).train()
    calls = []
    model.decoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    encoded = []
    model.encoder.register_forward_hook(lambda module, args, out: encoded.append(args[0].shape[0]))
    out = model(frames, TIMES, [5.0, 6.0, 7.0, 8.0, 9.0])  # 5 inputs, the next 5 grid frames
    out.frames.sum().backward()
    assert calls == [3] * 5  # one G step per output frame, for the 3 samples
    assert encoded == [15]  # E once per observed frame


@torch.no_grad()
def test_dense_off_grid_queries_reuse_the_chain_steps(tiny_model, frames):
    rows = []
    hook = tiny_model.decoder.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    queries = 4.0 + (np.arange(60) + 0.5) / 20  # 60 times inside the first 3 steps after the last input
    out = tiny_model(frames, TIMES, queries)
    hook.remove()
    assert out.frames.shape[1] == 60
    assert rows == [3, 3, 3]  # three chain steps for the batch of 3, not one G step per query
