"""`import climode` stays light, and the console script answers --version and --help."""

import json
import subprocess
import sys
from pathlib import Path

import climode

HEAVY = ("torch", "cartopy", "distributed")


def _console_script() -> str:
    """The installed `climode` script beside this interpreter (the venv's), never one from PATH."""
    beside = Path(sys.executable).with_name("climode")
    assert beside.exists(), f"the climode console script is not installed beside {sys.executable}; run `pip install -e .`"
    return str(beside)


def test_import_climode_loads_no_heavy_dependency():
    code = (
        "import json, sys; import climode; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_heavy_check_sees_an_eager_import():
    # the same inspection reports a heavy module once something imports it
    code = (
        "import json, sys; import climode.models.vidode; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["torch"]


def test_console_script_version_and_help_exit_zero():
    script = _console_script()
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert climode.__version__ in version.stdout + version.stderr
    usage = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr
    assert "usage" in usage.stdout.lower()


def test_import_climode_leaves_xarray_alone_and_the_accessor_still_registers():
    # climode's import is light so the command can catch Ctrl-C at once; ds.climode appears with xarray
    code = ("import sys; import climode; print('xarray' in sys.modules); import xarray as xr; "
            "print(type(xr.Dataset().climode).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["False", "ClimodeDatasetAccessor"]
    code = "import xarray as xr; import climode; print(type(xr.DataArray(0).climode).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["ClimodeDataArrayAccessor"]
