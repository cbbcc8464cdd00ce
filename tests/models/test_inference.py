"""Every registered model is scored deterministically and sees every observed input frame.

``deterministic_forecast`` is what evaluation, video evaluation and the trainer's
validation call; variational models are scored at the posterior mean of z0.
"""

import pytest
import torch

from climode.models.inference import deterministic_forecast, is_stochastic
from climode.models.registry import config_class, get_model, list_models

LEARNED = [e.name for e in list_models() if not e.reference]
REFERENCE = [e.name for e in list_models() if e.reference]
TIMES = torch.tensor([[0.0, 1.0, 2.5, 3.0, 4.0], [0.0, 0.5, 2.0, 3.5, 5.0]])
QUERIES = torch.tensor([[4.5, 5.0, 6.0], [5.5, 6.0, 7.0]])


def _learned(name):
    torch.manual_seed(0)
    return get_model(name, config_class(name).tiny(in_channels=2))


def _frames():
    torch.manual_seed(1)
    return torch.rand(2, 5, 2, 16, 16)


@pytest.mark.parametrize("name", LEARNED)
def test_every_observed_input_frame_moves_the_forecast(name):
    model = _learned(name).eval()
    frames = _frames().requires_grad_(True)
    deterministic_forecast(model, frames, TIMES, QUERIES).frames.square().sum().backward()
    per_frame = frames.grad.abs().sum(dim=(2, 3, 4))  # [B, T]
    if name == "simple_ode":  # Eq. 1 encodes one frame: the newest observation
        assert bool((per_frame[:, -1] > 0).all()), per_frame
    else:
        assert bool((per_frame > 0).all()), per_frame


@pytest.mark.parametrize("name", LEARNED + REFERENCE)
def test_scoring_the_same_windows_twice_gives_identical_numbers(name):
    if name in REFERENCE:
        runtime = {"lat": torch.linspace(10, 40, 16).numpy(), "lon": torch.linspace(260, 300, 16).numpy()} \
            if name == "wind_advection" else {}
        model = get_model(name, {"in_channels": 2}, **runtime)
    else:
        model = _learned(name)
    model.eval()
    frames = _frames()
    torch.manual_seed(5)
    first = deterministic_forecast(model, frames, TIMES, QUERIES).frames
    torch.manual_seed(6)  # another random state: a sampled z0 would differ
    second = deterministic_forecast(model, frames, TIMES, QUERIES).frames
    assert torch.equal(first, second)
    if is_stochastic(model):  # a draw does differ, so the mean is what was scored
        assert not torch.equal(model(frames, TIMES, QUERIES).frames, first)
