"""Name and unit mappings given by users, and how each interface spells them in errors.

The same mapping reaches :func:`climode.open_dataset` three ways: keyword arguments
in Python (``variables={'PSL': 'slp'}``, ``units={'PSL': 'hPa'}``), flags on the
command line (``--var PSL=slp``, ``--units PSL=hPa``) and entries of a batch spec
(``variables: {PSL: slp}``).  :func:`parse_assignments` reads the command-line
form; :func:`interface` sets, for the errors raised inside it, which spelling
they suggest, so a user is never pointed at an option their interface lacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from typing import Iterator, Mapping

from climode.errors import ConfigError

#: name -> (how to map a variable, how to give units): ``{name}`` and ``{value}`` are filled in
SPELLINGS: dict[str, tuple[str, str]] = {
    "python": ("variables={{'{name}': '{value}'}}", "units={{'{name}': '{value}'}}"),
    "cli": ("--var {name}={value}", "--units {name}={value}"),
    "spec": ("variables: {{{name}: {value}}} in the spec", "units: {{{name}: {value}}} in the spec"),
}
#: name -> (the option mapping variables, the option giving units)
OPTIONS: dict[str, tuple[str, str]] = {"python": ("variables", "units"), "cli": ("--var", "--units"),
                                        "spec": ("variables", "units")}
_CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("climode_interface", default="python")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@contextlib.contextmanager
def interface(name: str) -> Iterator[None]:
    """Within the block, errors suggest mappings in the spelling of ``name`` (python, cli, spec)."""
    token = _CURRENT.set(name)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def variable_hint(name: str, value: str = "name_in_file") -> str:
    """How the current interface maps canonical ``name`` to a source variable ``value``."""
    return SPELLINGS[_CURRENT.get()][0].format(name=name, value=value)


def units_hint(name: str, value: str) -> str:
    """How the current interface gives the units ``value`` of ``name``."""
    return SPELLINGS[_CURRENT.get()][1].format(name=name, value=value)


def option(kind: str) -> str:
    """The current interface's name for the ``variables`` or ``units`` option."""
    return OPTIONS[_CURRENT.get()][0 if kind == "variables" else 1]


def parse_assignments(text: str, flag: str) -> dict[str, str]:
    """``'U850=u,V850=v,PSL=slp'`` -> ``{'U850': 'u', 'V850': 'v', 'PSL': 'slp'}``.

    Names are checked by :func:`check_variables` / :func:`check_units`; here only
    the syntax: comma-separated ``KEY=VALUE`` pairs, each key once, no empty part.
    ``flag`` (``--var``) names the option in the one-line ConfigError.
    """
    out: dict[str, str] = {}
    for part in str(text).split(","):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value or "=" in value:
            raise ConfigError(f"{flag}: cannot read {part.strip()!r}; write NAME=VALUE pairs separated by commas, "
                              f"e.g. {flag} U850=u,V850=v,PSL=slp")
        if not _KEY.match(key):
            raise ConfigError(f"{flag}: {key!r} is not a variable name")
        if key in out:
            raise ConfigError(f"{flag}: {key} is given twice")
        out[key] = value
    return out


def format_assignments(mapping: Mapping[str, str]) -> str:
    """The inverse of :func:`parse_assignments`."""
    return ",".join(f"{k}={v}" for k, v in mapping.items())


def check_variables(mapping: Mapping, what: str, allowed=None) -> dict[str, str]:
    """A canonical -> source name mapping with canonical keys (``allowed``: those of the model)."""
    from climode.data import lexicon

    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{what} must map canonical names to names in the data, e.g. PSL: slp")
    known = list(allowed) if allowed is not None else list(lexicon.CANONICAL)
    out = {}
    for key, value in mapping.items():
        if key not in known:
            raise ConfigError(f"{what}: {key!r} is not one of {', '.join(known)}")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{what}: {key} must name a variable of the data, got {value!r}")
        out[str(key)] = value.strip()
    return out


def check_units(mapping: Mapping, what: str) -> dict[str, str]:
    """A canonical name -> units mapping whose units climode can convert (hPa, mb, knots, ...)."""
    from climode.data import lexicon

    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{what} must map canonical names to units, e.g. PSL: hPa")
    out = {}
    for key, value in mapping.items():
        if key not in lexicon.CANONICAL:
            raise ConfigError(f"{what}: {key!r} is not one of {', '.join(lexicon.CANONICAL)}")
        canonical = lexicon.get(key).units
        if not isinstance(value, str) or lexicon.conversion_factor(value, canonical) is None:
            raise ConfigError(f"{what}: {key} units {value!r} cannot be converted to {canonical}; known: "
                              f"{', '.join(lexicon.known_units(canonical)[:12])}, ...")
        out[str(key)] = value.strip()
    return out
