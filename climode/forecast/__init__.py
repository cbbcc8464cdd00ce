"""Forecasts for people: a checkpoint and xarray data in, CF-compliant xarray out.

``Forecaster`` (from :func:`load_model`) holds a model with its config,
variables and normalisation; :func:`run_forecast` (``climode.run_forecast``)
is the function behind ``climode forecast``; the ``ds.climode`` accessor calls
the same code.  ``forecast`` is the deprecated name of :func:`run_forecast`.
"""

from climode.forecast.forecaster import (  # noqa: F401
    ForecastInfo,
    Forecaster,
    forecast,
    load_model,
    run_forecast,
)
