"""The typed config layer: YAML files and ``--set`` overrides validated into dataclasses.

Recipes, batch specs and evaluation configs are all read the same way:

- :func:`read_yaml` reads YAML where numbers are numbers (``1e-3`` is a float,
  as in YAML 1.2; plain PyYAML reads it as a string),
- :func:`apply_overrides` applies ``section.key=value`` overrides,
- :func:`from_dict` builds a dataclass, rejecting unknown keys by name,
- :func:`load_config` does all three for one file.

Every problem is a one-line :class:`~climode.errors.ConfigError` naming the key.
This module imports nothing from climode but :mod:`climode.errors`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from climode.errors import ConfigError

T = TypeVar("T")

#: one ``--set`` override: ``"section.key=value"`` (value read as YAML) or ``(key path, value)``
Override = str | tuple[str | list[str] | tuple[str, ...], Any]


class _NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a float as YAML 1.2 does (YAML 1.1 needs ``1.0e-3``)."""


_NumberLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """YAML text as every climode config reads it: ``1e-3`` is a float, ``null`` is None."""
    return yaml.load(text, Loader=_NumberLoader)  # noqa: S506 (a SafeLoader subclass)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (key path, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value or section.key=value")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        return path, read_yaml(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc})".splitlines()[0]) from exc


def apply_overrides(data: dict[str, Any], overrides: Iterable[Override]) -> dict[str, Any]:
    """Set each override's value in ``data`` (in place; returned), creating missing or null sections.

    An override is ``"section.key=value"`` (the value read as YAML, as ``--set``
    does) or a ``(key path, value)`` pair taken as it is.
    """
    for item in overrides:
        if isinstance(item, str):
            path, value = parse_override(item)
        else:
            key_path, value = item
            path = key_path.split(".") if isinstance(key_path, str) else list(key_path)
            if not path or not all(path):
                raise ConfigError(f"override {item!r} has an empty key")
        node = data
        for part in path[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path, overrides: Iterable[Override] | None = None, *,
                label: str = "config") -> T:
    """Read YAML file ``path``, apply ``overrides`` and validate it into ``cls``.

    ``cls.from_dict(data)`` builds it when the class has one, else
    ``from_dict(cls, data, check_types=True)``.  ``label`` names the kind of file
    in errors ("recipe", "batch spec").  Errors are one line, prefixed with the
    file name when the content is at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{label} {path} does not exist")
    try:
        data = read_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label} {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label} {path} must be a mapping of keys, got {type(data).__name__}")
    try:
        data = apply_overrides(data, overrides or [])
        build = getattr(cls, "from_dict", None)
        built: T = build(data) if build is not None else from_dict(cls, data, check_types=True)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}".splitlines()[0]) from exc
    return built


def from_dict(cls: type[T], data: Any, prefix: str = "", *, check_types: bool = False) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys by name.

    With ``check_types`` values are checked against the field annotations and a
    mismatch is an error naming the key and what is allowed: ``int`` (not bool),
    ``float`` (ints accepted and converted), ``bool``, ``str``, ``Literal[...]``,
    ``list[X]``, ``dict[str, X]``, ``X | None`` and nested dataclasses (built from
    mappings, checked too).  Other annotations are left to the class.  Range checks
    stay in each class's ``__post_init__``.  (Off by default: some specs accept
    more than their annotations and normalise in ``__post_init__``.)
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__} must be a mapping, got {type(data).__name__}")
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s}; allowed keys: {', '.join(sorted(allowed))}"
        )
    values = dict(data)
    if check_types:
        hints = _type_hints(cls)
        values = {k: _checked(v, hints[k], f"{prefix}{k}") if k in hints else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad value in {prefix.rstrip('.') or cls.__name__}: {exc}") from exc


def _type_hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of ``cls`` (empty when they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):  # an annotation names something not importable at runtime: leave it unchecked
        return {}


def _describe(tp: Any) -> str:
    """``tp`` in words, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_describe(a) for a in inner)
        return f"{text} (or null)" if len(inner) < len(args) else text
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {getattr(tp, '__name__', tp)} entries"
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return words.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    words = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}
    return words.get(tp, _describe(tp))


def _checked(value: Any, tp: Any, key: str) -> Any:
    """``value`` if it has type ``tp`` (ints made floats where a float is asked for); ConfigError otherwise."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad() -> ConfigError:
        return ConfigError(f"{key} must be {_describe(tp)}, got {value!r}")

    if tp is Any or isinstance(tp, TypeVar):
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _checked(value, option, key)
            except ConfigError:
                continue
        raise bad()
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad()
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:  # tuple[X, Y]: one type per position
            if len(value) != len(args):
                raise bad()
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [_checked(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item_types))]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        item = args[1] if len(args) == 2 else Any
        return {k: _checked(v, item, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, prefix=f"{key}.", check_types=True)
        raise bad()
    return value  # an annotation this checker does not know: the class checks it


__all__ = ["Override", "apply_overrides", "from_dict", "load_config", "parse_override", "read_yaml"]
