"""Errors that climode reports to users as one line.

Every error a user can cause (bad data, a bad recipe, a bad argument) is a
:class:`ClimodeError`.  The CLI prints its message alone and exits non-zero;
anything else is a bug and keeps its traceback.
"""

import types


class ClimodeError(ValueError):
    """A problem with the user's input; the message says what and how to fix it."""


class DataError(ClimodeError):
    """A dataset cannot be read or does not satisfy climode's canonical form."""


class ConfigError(ClimodeError):
    """A config or recipe entry is unknown or has a bad value."""


class ModelInputError(ClimodeError):
    """Tensors given to a model have the wrong shape, times, masks or values."""


class CheckpointError(ClimodeError):
    """A checkpoint is missing, corrupt, or does not fit the request."""


class MissingDependencyError(ClimodeError):
    """An optional extra is needed; the message names the pip command."""


def require(module: str, extra: str) -> types.ModuleType:
    """Import an optional dependency or fail with the exact pip command to run."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'climode[{extra}]'"
        ) from exc


class HorizonWarning(UserWarning):
    """A forecast asked for leads beyond what the model was trained on, or produced non-physical values."""
