"""Help texts and the README say what a new user needs to know."""

from pathlib import Path

import pytest
import yaml

from climode.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _help(*command):
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if a.dest == "command" or a.dest == "data_command").choices[name]
    return {a.dest: a.help for a in parser._actions}


@pytest.mark.parametrize("dest", ["split", "batch_size", "device", "windows", "overwrite"])
def test_every_evaluate_option_has_help(dest):
    assert _help("evaluate")[dest], dest


def test_forecast_help_names_the_new_options():
    helps = _help("forecast")
    assert "U850=u,V850=v,PSL=slp" in helps["var"] and "PSL=hPa" in helps["units"]
    assert "quoted glob" in helps["data"] and "refused otherwise" in helps["overwrite"]


def test_readme_says_how_long_the_cpu_recipe_trains():
    minutes = yaml.safe_load((ROOT / "recipes" / "hurricanes_cpu.yaml").read_text())["train"]["max_minutes"]
    readme = (ROOT / "README.md").read_text()
    assert f"climode train recipes/hurricanes_cpu.yaml   # {minutes} minutes" in readme
    assert "--data 'obs/*.nc'" in readme and "--data obs/*.nc" not in readme
