"""The ConvGRU cell of the ODE-ConvGRU encoder (paper Eq. 1)."""

from __future__ import annotations

import torch
from torch import nn

from climode.models.layout import like_weight


class ConvGRUCell(nn.Module):
    """h_t = ConvGRUCell(h_t^-, E(X_t)) with 3x3 convolutions.

    gates = sigmoid(conv([x, h])) split into reset r and update u;
    candidate c = tanh(conv([x, r*h])); h' = (1-u)*h + u*c.
    """

    def __init__(self, input_dim: int, hidden_dim: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.gates = nn.Conv2d(input_dim + hidden_dim, 2 * hidden_dim, kernel_size, padding=pad)
        self.candidate = nn.Conv2d(input_dim + hidden_dim, hidden_dim, kernel_size, padding=pad)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The new state in float32: under autocast the convolutions run in bf16, the blend does not."""
        x = like_weight(x, self.gates.weight)
        h = like_weight(h, self.gates.weight).float()
        gates = torch.sigmoid(self.gates(torch.cat([x, h.to(x.dtype)], dim=1)))
        reset, update = gates.float().chunk(2, dim=1)
        cand = torch.tanh(self.candidate(torch.cat([x, (reset * h).to(x.dtype)], dim=1)))
        return (1 - update) * h + update * cand.float()
