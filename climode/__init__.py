"""climode: continuous-time spatio-temporal forecasting with Vid-ODE.

The public API is imported lazily, so ``import climode`` does not import torch:

- :func:`climode.open_dataset` reads fields into climode's canonical xarray form;
- :func:`climode.load_model` and :func:`climode.forecast` make forecasts;
- ``ds.climode.predict(times)`` is the xarray accessor.
"""

from __future__ import annotations

import importlib

from climode._version import __version__

_LAZY = {
    "open_dataset": "climode.data.open",
    "load_model": "climode.forecast.forecaster",
    "forecast": "climode.forecast",
}

__all__ = ["__version__", *_LAZY]

from climode import accessor as _accessor  # noqa: E402,F401  registers ds.climode


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'climode' has no attribute {name!r}")
