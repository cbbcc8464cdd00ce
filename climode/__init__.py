"""climode: continuous-time spatio-temporal forecasting with Vid-ODE.

The public API is imported lazily, so ``import climode`` imports neither torch
nor xarray (the ``climode`` command can then catch a Ctrl-C from its first
moment):

- :func:`climode.open_dataset` reads fields into climode's canonical xarray form;
- :func:`climode.load_model` and :func:`climode.run_forecast` make forecasts
  (``climode.forecast`` is the package that holds them);
- ``ds.climode.predict(times)`` is the xarray accessor, registered as soon as
  xarray is imported (now, if it already is; else by a one-shot import hook).
"""

from __future__ import annotations

import os
import signal
import sys


def _is_climode_command() -> bool:
    """True while this process starts the ``climode`` command (console script or ``python -m climode``)."""
    if os.path.basename(sys.argv[0] if sys.argv else "") == "climode":
        return True
    argv = list(getattr(sys, "orig_argv", ()))
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "climode"


def _interrupted_while_starting(signum, frame):  # pragma: no cover - exercised in a subprocess
    os.write(2, b"climode: interrupted\n")
    os._exit(130)


# Ctrl-C before main() is reached: no import traceback (main() restores Python's handler); a SIGINT
# that the parent ignores (a background job) stays ignored
if _is_climode_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import importlib  # noqa: E402
import importlib.abc  # noqa: E402
import importlib.util  # noqa: E402

from climode._version import __version__  # noqa: E402

_LAZY = {
    "open_dataset": "climode.data.open",
    "load_model": "climode.forecast.forecaster",
    "run_forecast": "climode.forecast",
}

__all__ = ["__version__", *_LAZY]


class _AccessorOnXarrayImport(importlib.abc.MetaPathFinder):
    """Registers ``ds.climode`` right after xarray's own module has run, then leaves ``sys.meta_path``."""

    _looking = False

    def find_spec(self, name, path=None, target=None):
        if name != "xarray" or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(name)  # the other finders' answer
        finally:
            self._looking = False
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_xarray = loader.exec_module

        def exec_module(module):
            run_xarray(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
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
