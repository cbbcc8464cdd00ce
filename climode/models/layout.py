"""Memory layout: keep activations in the layout of the weights that consume them.

A model moved to channels-last (``ModelConfig.channels_last``) has channels-last
conv weights, but tensors rebuilt by ``torch.cat``, ``torch.stack`` or the ODE
solver's output buffer come back contiguous (NCHW).  oneDNN then converts every
such input (and its gradient) inside the convolution, and ops such as bilinear
upsampling run their slow NCHW kernel: at the reference preset that conversion
cost 0.9 s of a 5.9 s training step.
"""

from __future__ import annotations

import torch


def like_weight(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last if ``weight`` (a 4-D conv weight) is stored channels-last."""
    if x.dim() == 4 and not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x
