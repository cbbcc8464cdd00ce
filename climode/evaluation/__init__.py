"""Scoring a model and reference forecasts on the same held-out windows (``climode evaluate``)."""

from climode.evaluation.runner import EvaluationConfig, evaluate  # noqa: F401
