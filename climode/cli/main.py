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
SUBCOMMANDS = ("forecast", "interpolate", "extrapolate", "train", "evaluate", "data", "batch")

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
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ClimodeError as exc:
        print(f"climode: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("climode: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
