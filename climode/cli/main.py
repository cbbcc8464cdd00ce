"""Entry point of the ``climode`` command.

Each subcommand lives in its own module of :mod:`climode.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning an exit code.  Subcommand modules
import the heavy parts of climode (torch, xarray) only inside ``func``, so
``climode --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from climode._version import __version__
from climode.errors import ClimodeError

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("forecast", "interpolate", "extrapolate", "train", "evaluate", "summarize", "data", "batch")

log = logging.getLogger("climode")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="climode",
        description="Continuous-time forecasting of gridded fields (U850, V850, PSL) and video with Vid-ODE.",
    )
    parser.add_argument("--version", action="version", version=f"climode {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what climode does (-v), and debug messages (-vv)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"climode.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"climode.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``climode`` command; user errors and Ctrl-C end in one line on stderr, never a traceback.

    ``import climode`` loads neither xarray nor torch, so this function is entered a few
    milliseconds after start and a Ctrl-C from then on is caught here (exit 130).
    """
    try:
        _restore_interrupt()
        parser = build_parser()
        args = parser.parse_args(argv)
        quiet = getattr(args, "quiet", False)
        level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except ClimodeError as exc:
        print(f"climode: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system refusing a write or read that the checks could not foresee
        print(f"climode: error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("climode: interrupted", file=sys.stderr)
        return 130


def _restore_interrupt() -> None:
    """Ctrl-C raises KeyboardInterrupt again (caught below, after ``finally`` blocks clean up temporary
    files) once main() runs; until then climode's import answered it by exiting at once."""
    import signal

    import climode

    if signal.getsignal(signal.SIGINT) is climode._interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_error(exc: OSError) -> str:
    """``cannot write /x/y.nc: Read-only file system`` from an OSError, without Python's [Errno] noise."""
    what = exc.strerror or _one_line(exc)
    name = exc.filename if exc.filename is not None else ""
    return f"{name}: {what}" if name else what


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
