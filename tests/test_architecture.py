"""The floors of docs/architecture.md: no climode module imports a package on its own floor or above.

Every import counts, those inside functions too: a function-level import is not a
way around a floor.
"""

import ast
from pathlib import Path

import climode

#: package (or top-level module) -> floor; docs/architecture.md explains each
FLOORS = {
    "errors": 0, "_version": 0,
    "time": 1, "grid": 1, "config": 1, "io": 1,
    "basins": 2, "metrics": 2,
    "data": 3,
    "models": 4,
    "training": 5,
    "zoo": 6,
    "forecast": 7,
    "evaluation": 8, "plotting": 8,
    "batch": 9,
    "accessor": 10, "cli": 10,
    "__init__": 11, "__main__": 11,
}
ROOT = Path(climode.__file__).parent


def _climode_imports(path: Path):
    """(line, imported climode package) for every absolute climode import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "climode" and len(parts) > 1:
                yield node.lineno, parts[1]


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_package_has_a_floor():
    packages = {_package_of(p) for p in ROOT.rglob("*.py")}
    assert packages <= set(FLOORS), f"give these a floor in FLOORS and docs/architecture.md: {packages - set(FLOORS)}"


def test_no_import_runs_up_a_floor():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _package_of(path)
        for line, target in _climode_imports(path):
            if target != here and target in FLOORS and FLOORS[target] >= FLOORS[here]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line} ({here}, floor {FLOORS[here]}) imports "
                              f"climode.{target} (floor {FLOORS[target]})")
    assert not upward, "imports on or above their own floor:\n" + "\n".join(upward)


def test_the_test_sees_an_upward_import(tmp_path):
    """The check itself: a module of models importing the forecast package is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from climode.forecast.forecaster import Forecaster\n")
    assert list(_climode_imports(bad)) == [(2, "forecast")]
