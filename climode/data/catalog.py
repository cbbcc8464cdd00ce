"""The data catalog: named datasets described in ``data_catalog.yaml``.

The catalog is the top-level ``data_catalog.yaml`` of the repository (the build
copies it into the wheel) unless ``CLIMODE_CATALOG`` (or ``path=``) names another file.  Paths may use environment variables, ``${NAME}`` or
``${NAME:-default}``; a variable that is unset falls back to the inline default,
then to the catalog's ``environment:`` defaults (``CLIMODE_DATA`` defaults to
``~/climode_data``).  An item of ``paths`` may itself be a list of alternatives,
tried in order: the first that exists is used (an alternative naming an unset
variable is skipped), so ``[${NCARG_ROOT}/lib/ncarg/..., /usr/share/ncarg/...]``
finds the files of an NCL install and of Debian's package alike.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from climode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DRIVERS = ("netcdf", "zarr", "synthetic", "video")
CATALOG_ENV = "CLIMODE_CATALOG"
_FIELDS = {
    "driver", "description", "paths", "variables", "units", "licence", "license", "obtain",
    "calendar", "generator", "args", "splits", "evaluation_only",
}
_ENV_RE = re.compile(r"\$(\w+)")


#: The catalog an installed wheel carries: the top-level data_catalog.yaml, copied in by the build (setup.py).
PACKAGED_CATALOG = Path(__file__).with_name("data_catalog.yaml")
#: The catalog of a source checkout (an editable install): the same file, where users look for it.
CHECKOUT_CATALOG = Path(__file__).resolve().parents[2] / "data_catalog.yaml"


def default_catalog_path() -> Path:
    """``$CLIMODE_CATALOG`` if set, else the catalog of the installed package or of the checkout."""
    env = os.environ.get(CATALOG_ENV)
    if env:
        return Path(env).expanduser()
    return PACKAGED_CATALOG if PACKAGED_CATALOG.is_file() else CHECKOUT_CATALOG


def expand(text: str, defaults: Mapping[str, str] | None = None) -> str:
    """Expand ``$NAME``, ``${NAME}``, ``${NAME:-default}`` (defaults may nest) and ``~``.

    An unset name without an inline default uses ``defaults`` (the catalog's
    ``environment:``), else it is an error.
    """
    defaults = defaults or {}
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "{" and text[j - 1] == "$":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise DataError(f"unbalanced braces in path {text!r}")
            body = text[i + 2 : j - 1]
            name, sep, default = body.partition(":-")
            out.append(_lookup(name, default if sep else None, defaults))
            i = j
            continue
        match = _ENV_RE.match(text, i) if text[i] == "$" else None
        if match:
            out.append(_lookup(match.group(1), None, defaults))
            i = match.end()
            continue
        out.append(text[i])
        i += 1
    return os.path.expanduser("".join(out))


def _lookup(name: str, default: str | None, defaults: Mapping[str, str]) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if default is not None:
        return expand(default, defaults)
    if name in defaults:
        return expand(str(defaults[name]), defaults)
    raise DataError(f"environment variable {name} is not set and has no default: export {name}=/path/to/data")


@dataclass(frozen=True)
class CatalogEntry:
    """One named dataset of the catalog."""

    name: str
    driver: str
    description: str = ""
    #: each item: a path or glob, or a tuple of alternatives tried in order
    paths: tuple[str | tuple[str, ...], ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    licence: str = ""
    obtain: str = ""
    calendar: str | None = None
    generator: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    splits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: held out for good: ``climode evaluate`` scores windows rolled over the whole record, training refuses it
    evaluation_only: bool = False
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def summary(self) -> str:
        """The first line of the description."""
        lines = self.description.strip().splitlines()
        return lines[0].strip() if lines else ""

    def expanded_paths(self) -> list[str]:
        """The entry's paths (or globs) with environment variables expanded.

        Of a list of alternatives, the first that exists; if none does, the
        first that can be expanded (so an error can name it).
        """
        return [self._choose(item) for item in self.paths]

    def _alternatives(self, item: str | tuple[str, ...]) -> tuple[list[str], DataError | None]:
        """Expanded alternatives of one path item, and the first expansion error."""
        expanded: list[str] = []
        error: DataError | None = None
        for alt in (item,) if isinstance(item, str) else item:
            try:
                expanded.append(expand(alt, self.environment))
            except DataError as exc:
                error = error or exc
        return expanded, error

    def _choose(self, item: str | tuple[str, ...]) -> str:
        expanded, error = self._alternatives(item)
        for path in expanded:
            if _exists(path):
                return path
        if expanded:
            return expanded[0]
        assert error is not None
        raise error

    def missing(self) -> list[str]:
        """The path items with nothing on disk, as text (alternatives joined by ``or``)."""
        if self.driver == "synthetic":
            return []
        out: list[str] = []
        for item in self.paths:
            shown: list[str] = []
            found = False
            for alt in (item,) if isinstance(item, str) else item:
                try:
                    path = expand(alt, self.environment)
                except DataError:
                    shown.append(alt)  # names an unset variable: shown as written
                    continue
                found = found or _exists(path)
                shown.append(path)
            if not found:
                out.append(" or ".join(shown))
        return out

    def files(self) -> list[str]:
        """Existing files or stores matching the entry's paths, sorted per pattern."""
        out: list[str] = []
        for pattern in self.expanded_paths():
            if glob.has_magic(pattern):
                out.extend(sorted(glob.glob(pattern)))
            elif os.path.exists(pattern):
                out.append(pattern)
        return out

    def available(self) -> bool:
        """Whether the data can be opened here: every path exists (or its generator imports)."""
        if self.driver == "synthetic":
            module = (self.generator or "").partition(":")[0]
            try:
                return bool(module) and importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                return False
        return bool(self.paths) and not self.missing()

    def obtain_text(self) -> str:
        """How to get the data, on one line, with environment variables expanded where they can be."""
        text = " ".join(self.obtain.split())
        try:
            return expand(text, self.environment) if "$" in text else text
        except DataError:
            return text

    def load_generator(self) -> Callable[..., Any]:
        """Import the ``module.path:function`` of a synthetic entry."""
        if not self.generator or ":" not in self.generator:
            raise ConfigError(
                f"catalog entry {self.name!r}: 'generator' must be 'module.path:function', got {self.generator!r}"
            )
        module_name, _, attr = self.generator.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise DataError(
                f"catalog entry {self.name!r}: cannot import generator module {module_name!r} ({exc})"
            ) from None
        try:
            func = getattr(module, attr)
        except AttributeError:
            raise DataError(
                f"catalog entry {self.name!r}: module {module_name!r} has no function {attr!r}"
            ) from None
        return func

    def seed_for(self, split: str | None = None, seed: int | None = None) -> int:
        """The seed to generate: ``seed`` if given (checked against ``split``), else the split's first."""
        if split is None:
            return 0 if seed is None else int(seed)
        if split not in self.splits:
            known = ", ".join(self.splits) or "none"
            raise ConfigError(
                f"catalog entry {self.name!r} has no split {split!r}; its splits are: {known}"
            )
        lo, hi = self.splits[split]
        if seed is None:
            return lo
        if not lo <= int(seed) <= hi:
            raise ConfigError(
                f"seed {seed} is outside split {split!r} of {self.name!r} (seeds {lo}..{hi})"
            )
        return int(seed)


def _exists(pattern: str) -> bool:
    """Whether a path exists, or a glob matches something."""
    return bool(glob.glob(pattern)) if glob.has_magic(pattern) else os.path.exists(pattern)


@dataclass(frozen=True)
class Catalog:
    """All entries of one catalog file."""

    path: Path
    entries: Mapping[str, CatalogEntry]

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> CatalogEntry:
        """The entry called ``name``; a ConfigError lists the known names otherwise."""
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(
                f"no dataset {name!r} in catalog {self.path}; known: {', '.join(self.entries)}"
            ) from None


def load_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Read and validate a catalog file (default: :func:`default_catalog_path`)."""
    import yaml

    target = Path(path).expanduser() if path is not None else default_catalog_path()
    try:
        raw = yaml.safe_load(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"data catalog {target} not found; check {CATALOG_ENV}") from None
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read data catalog {target}: {first}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), dict):
        raise ConfigError(f"data catalog {target} must have a 'datasets:' mapping of named entries")
    environment = raw.get("environment") or {}
    if not isinstance(environment, dict):
        raise ConfigError(f"data catalog {target}: 'environment' must map variable names to defaults")
    environment = {str(k): str(v) for k, v in environment.items()}
    entries = {
        str(name): _entry(str(name), spec, target, environment)
        for name, spec in raw["datasets"].items()
    }
    return Catalog(path=target, entries=entries)


def _entry(name: str, spec: Any, where: Path, environment: Mapping[str, str]) -> CatalogEntry:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"data catalog {where}, entry {name!r}: {msg}")

    if not isinstance(spec, dict):
        raise bad("must be a mapping of fields")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FIELDS))}")
    driver = spec.get("driver")
    if driver not in DRIVERS:
        raise bad(f"driver {driver!r} is not one of {', '.join(DRIVERS)}")
    paths = spec.get("paths", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(
        isinstance(p, str) or (isinstance(p, list) and p and all(isinstance(a, str) for a in p)) for p in paths
    ):
        raise bad("'paths' must be a path or a list of paths/globs (an item may be a list of alternatives)")
    paths = [p if isinstance(p, str) else tuple(p) for p in paths]
    if driver != "synthetic" and not paths:
        raise bad(f"driver {driver} needs 'paths'")
    mappings = {}
    for key in ("variables", "units", "args"):
        value = spec.get(key) or {}
        if not isinstance(value, dict):
            raise bad(f"'{key}' must be a mapping")
        mappings[key] = value
    splits = {}
    for split, bounds in (spec.get("splits") or {}).items():
        if (
            not isinstance(bounds, (list, tuple))
            or len(bounds) != 2
            or not all(isinstance(b, int) for b in bounds)
            or bounds[0] > bounds[1]
        ):
            raise bad(f"split {split!r} must be [first_seed, last_seed], got {bounds!r}")
        splits[str(split)] = (int(bounds[0]), int(bounds[1]))
    ranges = sorted(splits.items(), key=lambda kv: kv[1])
    for (a, (_, a_hi)), (b, (b_lo, _)) in zip(ranges, ranges[1:]):
        if b_lo <= a_hi:
            raise bad(f"seed ranges of splits {a!r} and {b!r} overlap")
    evaluation_only = spec.get("evaluation_only", False)
    if not isinstance(evaluation_only, bool):
        raise bad(f"'evaluation_only' must be true or false, got {evaluation_only!r}")
    if driver == "synthetic" and not spec.get("generator"):
        raise bad("driver synthetic needs 'generator: module.path:function'")
    return CatalogEntry(
        name=name,
        driver=driver,
        description=str(spec.get("description", "")),
        paths=tuple(paths),
        variables={str(k): str(v) for k, v in mappings["variables"].items()},
        units={str(k): str(v) for k, v in mappings["units"].items()},
        licence=str(spec.get("licence", spec.get("license", ""))),
        obtain=str(spec.get("obtain", "")),
        calendar=spec.get("calendar"),
        generator=spec.get("generator"),
        args=dict(mappings["args"]),
        splits=splits,
        evaluation_only=evaluation_only,
        environment=environment,
    )
