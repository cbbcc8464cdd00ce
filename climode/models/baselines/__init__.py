"""Baseline forecasters that share the Vid-ODE model interface.

``model(inputs, input_times, query_times, input_mask=None, static=None)``
returns a :class:`~climode.models.base.ForecastOutput` (the
:class:`~climode.models.base.ForecastModel` call), so every baseline is
scored exactly like the model.  :mod:`.reference` holds the parameter-free
reference forecasts (persistence, pysteps extrapolation, wind advection).
"""

from climode.models.baselines.reference import (
    ExtrapolationConfig,
    Persistence,
    PystepsExtrapolation,
    ReferenceConfig,
    WindAdvection,
    WindAdvectionConfig,
)

__all__ = [
    "ExtrapolationConfig",
    "Persistence",
    "PystepsExtrapolation",
    "ReferenceConfig",
    "WindAdvection",
    "WindAdvectionConfig",
]
