"""How every model is called when it is scored: deterministically.

Variational models (Latent ODE, the Eq. 2 VAE, Vid-ODE trained with a sampled
z0) draw z0 ~ q(z0 | inputs) in training; scored with a draw, two scorings of
the same window differ.  Evaluation, video evaluation and the trainer's
validation all call :func:`deterministic_forecast`, which decodes the posterior
mean of q(z0 | inputs), as the Forecaster does for a single forecast.  Ensembles
(``climode forecast --members``) are the only place a draw is scored.
"""

from __future__ import annotations

import torch

from climode.models.base import ForecastOutput


def is_stochastic(model: torch.nn.Module) -> bool:
    """True when ``model`` samples z0 unless told otherwise (its config's ``sample_z0``)."""
    return bool(getattr(getattr(model, "config", None), "sample_z0", False))


def deterministic_forecast(model: torch.nn.Module, inputs, input_times, query_times, input_mask=None,
                           static=None) -> ForecastOutput:
    """``model``'s forecast at the posterior mean of z0 (the model as it is for models without a z0)."""
    extra = {"sample_z0": False} if is_stochastic(model) else {}
    return model(inputs, input_times, query_times, input_mask, static, **extra)
