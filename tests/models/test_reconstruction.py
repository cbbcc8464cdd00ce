"""Reconstruction training (the paper's interpolation objective) cannot copy its targets."""

import torch

from climode.models.config import ModelConfig
from climode.models.vidode import VidODE
from climode.training.losses import recon_loss


@torch.no_grad()
def test_an_observed_frame_is_reconstructed_from_the_previous_observation():
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(in_channels=2)).eval()
    last = model.decoder.net[-1]  # G's output conv: F (2), D (2), M (1)
    last.weight.zero_()
    last.bias.zero_()
    last.bias[-1] = 30.0  # zero flow, mask 1: the frame is the previous frame warped by nothing
    torch.manual_seed(1)
    frames = torch.rand(2, 5, 2, 8, 8)
    times = torch.tensor([0.0, 1.0, 2.5, 3.0, 4.0])
    assert torch.equal(model(frames, times, times).frames, frames)  # a forecast's query at an observation is it
    model.reconstruct_observed = True  # as the trainer sets it for a reconstruct=True protocol
    out = model(frames, times, times)  # queries at the observed times, as reconstruct=True trains
    assert float(recon_loss(out.frames, frames)) > 0.1
    torch.testing.assert_close(out.frames[:, 1:], frames[:, :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.frames[:, 0], frames[:, 0])  # the first observation has no predecessor
