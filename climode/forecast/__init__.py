"""Forecasts for people: a checkpoint and xarray data in, CF-compliant xarray out.

``Forecaster`` (from :func:`load_model`) holds a model with its config,
variables and normalisation; :func:`forecast` is the function behind
``climode forecast``; the ``ds.climode`` accessor calls the same code.

``climode.forecast`` is both this package and, called, the :func:`forecast`
function: ``climode.forecast(data, "+3h,+6h")``.
"""

import sys
import types

from climode.forecast.forecaster import Forecaster, forecast, load_model  # noqa: F401


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return forecast(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
