"""Memory saving keeps G's first convolution output under autocast too (where the weight arrives as a bf16 copy)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from climode.models.config import ModelConfig
from climode.models.vidode import VidODE

TIMES = [0.0, 1.0, 2.0, 3.0, 4.0]


class ConvCount(TorchDispatchMode):
    """Counts convolutions whose weight has ``shape``."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.count = shape, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default and args[1].shape == self.shape:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("amp_cpu", [False, True])
def test_G_first_convolution_is_kept_not_recomputed(frames, amp_cpu):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(memory_saving=True, memory_saving_level="decoder", amp_cpu=amp_cpu)).train()
    shape = model.decoder.net[1].weight.shape
    out = model(frames, TIMES, [4.5, 5.0, 6.0])
    with ConvCount(shape) as backward:
        out.frames.square().mean().backward()
    assert backward.count == 0  # the backward reran G but took its first convolution's output as saved
    assert model.decoder.net[1].weight.grad is not None
