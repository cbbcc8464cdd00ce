"""climode: continuous-time spatio-temporal forecasting with Vid-ODE.

The public API is imported lazily, so ``import climode`` imports neither torch
nor xarray (the ``climode`` command can then catch a Ctrl-C from its first
moment):

- :func:`climode.open_dataset` reads fields into climode's canonical xarray form;
- :func:`climode.load_model` and :func:`climode.forecast` make forecasts;
- ``ds.climode.predict(times)`` is the xarray accessor, registered as soon as
  xarray is imported (now, if it already is; else by a one-shot import hook).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from climode._version import __version__

_LAZY = {
    "open_dataset": "climode.data.open",
    "load_model": "climode.forecast.forecaster",
    "forecast": "climode.forecast",
}

__all__ = ["__version__", *_LAZY]


class _AccessorOnXarrayImport(importlib.abc.MetaPathFinder):
    """Registers ``ds.climode`` right after xarray's own module has run (one shot)."""

    def find_spec(self, name, path=None, target=None):
        if name != "xarray":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)  # the other finders' answer
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_xarray = loader.exec_module

        def exec_module(module):
            run_xarray(module)
            importlib.import_module("climode.accessor")

        loader.exec_module = exec_module
        return spec


if "xarray" in sys.modules:
    importlib.import_module("climode.accessor")
else:
    sys.meta_path.insert(0, _AccessorOnXarrayImport())


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'climode' has no attribute {name!r}")
