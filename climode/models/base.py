"""What every forecast model is: the :class:`ForecastModel` call and the :class:`ForecastOutput` it returns.

Vid-ODE and every baseline (learned or reference) take observed frames at
irregular times and return frames at any query times, so the trainer,
evaluation and the Forecaster call them all the same way.  Models do not
inherit :class:`ForecastModel`; it only states the call (a structural type).
Shapes: inputs [B, T, C, H, W], input times [B, T] or [T], input mask [B, T]
or [T], query times [B, K] or [K], static channels [B, S, H, W]; times in the
model's ``config.time_unit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@dataclass
class ForecastOutput:
    """Predicted frames X_hat(s) [B, K, C, H, W] and what a model reports about making them.

    ``prev_times`` [B, K]: the time each query's last decoder step started from
    (stepping models; for L_diff).  ``z0_mean`` and ``z0_std``: the posterior
    q(z0 | inputs) of variational models (for the KL term).  ``nfe_encoder`` and
    ``nfe_decoder``: function evaluations of the ODE solves.  ``extra_losses``:
    model-specific terms (already weighted) that the training step adds to the objective.
    """

    frames: torch.Tensor
    prev_times: np.ndarray | None = None
    z0_mean: torch.Tensor | None = None
    z0_std: torch.Tensor | None = None
    nfe_encoder: int = 0
    nfe_decoder: int = 0
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)


@runtime_checkable
class ForecastModel(Protocol):
    """A model that forecasts frames at ``query_times`` from frames observed at ``input_times``.

    ``config`` is the model's config dataclass (``time_unit``, ``stride``,
    ``decoder_step``, ``sample_z0`` where they apply).  Stochastic models also
    take ``sample_z0`` (draw z0 ~ q rather than use its mean).
    """

    config: Any

    def __call__(self, inputs: torch.Tensor, input_times, query_times, input_mask=None,
                 static: torch.Tensor | None = None, **options: Any) -> ForecastOutput: ...
