"""The evaluation modules import each other one way only, and cyclone metrics depend on nothing above them."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "climode"

#: evaluation modules each evaluation module may import (anywhere in it, functions included)
ALLOWED = {
    "report": set(),
    "loop": set(),
    "scorers": set(),
    "heldout": set(),
    "model_grid": set(),
    "summary": {"scorers"},
    "video": {"loop", "report", "scorers"},
    "runner": {"heldout", "loop", "model_grid", "report", "scorers", "video"},
    "record": {"loop", "runner", "scorers"},
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_evaluation_modules_import_each_other_one_way():
    modules = {p.stem for p in (PACKAGE / "evaluation").glob("*.py")} - {"__init__"}
    assert modules == set(ALLOWED)
    for name in modules:
        used = {m.split(".")[2] for m in _imports(PACKAGE / "evaluation" / f"{name}.py")
                if m.startswith("climode.evaluation.") and m.split(".")[2] in modules}
        assert used <= ALLOWED[name], (name, used - ALLOWED[name])


def test_cyclone_metrics_import_only_the_shared_bottom_floor():
    climode = {m for m in _imports(PACKAGE / "metrics" / "cyclones.py") if m.split(".")[0] == "climode"}
    assert {m.split(".")[1] for m in climode} <= {"errors", "time", "grid"}
