"""The typed config layer: YAML numbers, overrides, load_config and its one-line errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from climode.config import apply_overrides, from_dict, load_config, parse_override, read_yaml
from climode.errors import ConfigError


@dataclass
class Inner:
    rate: float = 0.1
    name: str = "a"


@dataclass
class Outer:
    steps: int = 1
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)


@pytest.mark.parametrize("text,value", [
    ("1e-3", 1e-3), ("5E-4", 5e-4), ("+2e3", 2000.0), ("1.5e+2", 150.0), ("1_000e-3", 1.0),
    ("1.0e-3", 1e-3), ("3", 3), ("0.5", 0.5), ("null", None), ("true", True),
])
def test_numbers_are_numbers(text, value):
    got = read_yaml(f"x: {text}")["x"]
    assert got == value and type(got) is type(value)


def test_strings_and_dates_stay_what_yaml_says():
    data = read_yaml("a: 1e\nb: e5\nc: '1e-3'\nd: 6h\ne: 2000-08-01\n")
    assert data["a"] == "1e" and data["b"] == "e5" and data["c"] == "1e-3" and data["d"] == "6h"
    assert str(data["e"]) == "2000-08-01"


def test_overrides_set_nested_keys_read_as_yaml():
    data = {"inner": {"rate": 0.1}, "empty": None}
    apply_overrides(data, ["inner.rate=1e-2", "inner.name=b", "new.deep.key=[1, 2]", "empty.x=null",
                           ("steps", "7"), (["inner", "extra"], 1)])
    assert data == {"inner": {"rate": 0.01, "name": "b", "extra": 1}, "new": {"deep": {"key": [1, 2]}},
                    "empty": {"x": None}, "steps": "7"}  # a (path, value) pair is taken as it is


@pytest.mark.parametrize("override,message", [
    ("inner.rate", "must look like key=value"),
    ("=3", "has an empty key"),
    ("inner.rate.sub=1", "'rate' is not a section"),
    ("x=[unclosed", "not valid YAML"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides({"inner": {"rate": 0.1}}, [override])
    assert "\n" not in str(info.value)


def test_parse_override_returns_the_key_path():
    assert parse_override("optim.lr=1e-3") == (["optim", "lr"], 1e-3)


def test_from_dict_checks_keys_and_types():
    assert from_dict(Outer, {"steps": 2, "inner": {"rate": 1}}, check_types=True) == Outer(2, Inner(1.0))
    with pytest.raises(ConfigError, match="unknown key inner.rat; allowed keys: name, rate"):
        from_dict(Outer, {"inner": {"rat": 1}}, check_types=True)
    with pytest.raises(ConfigError, match=r"tags\[1\] must be a string, got 2"):
        from_dict(Outer, {"tags": ["a", 2]}, check_types=True)


def test_load_config_reads_validates_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 3\ninner:\n  rate: 1e-3\n")
    config = load_config(Outer, path, ["inner.name=z"])
    assert config == Outer(steps=3, inner=Inner(rate=1e-3, name="z"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(Outer, empty) == Outer()


def test_load_config_uses_the_class_from_dict(tmp_path):
    @dataclass
    class Strict:
        n: int = 0

        @classmethod
        def from_dict(cls, data):
            if "n" not in data:
                raise ConfigError("a strict config needs n")
            return cls(**data)

    path = tmp_path / "s.yaml"
    path.write_text("{}\n")
    with pytest.raises(ConfigError, match="^s.yaml: a strict config needs n$"):
        load_config(Strict, path)
    assert load_config(Strict, path, ["n=4"]).n == 4


@pytest.mark.parametrize("text,message", [
    (None, "widget .*missing.yaml does not exist"),
    ("steps: [unclosed\n", "widget .* is not valid YAML"),
    ("- 1\n- 2\n", "widget .* must be a mapping of keys, got list"),
    ("steps: 1e-3\n", "^c.yaml: steps must be an integer, got 0.001$"),
    ("inner: {rate: fast}\n", "^c.yaml: inner.rate must be a number, got 'fast'$"),
    ("stepz: 1\n", "^c.yaml: unknown key stepz; allowed keys: inner, steps, tags$"),
])
def test_load_config_errors_are_one_line(tmp_path, text, message):
    path = tmp_path / ("missing.yaml" if text is None else "c.yaml")
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(Outer, path, label="widget")
    assert "\n" not in str(info.value)


def test_from_dict_is_still_importable_from_its_old_home():
    from climode.models.config import from_dict as old_from_dict

    assert old_from_dict is from_dict


def test_recipes_and_batch_specs_read_numbers_alike(tmp_path):
    from climode.batch.spec import load_spec
    from climode.training.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\noptim: {lr: 2e-3}\ntrain: {max_steps: 1}\n")
    assert load_recipe(recipe).optim.lr == 2e-3

    spec = tmp_path / "spec.yaml"
    spec.write_text("output: o.zarr\ninit: ['2000-08-01']\ncluster: {jobqueue: {memory_fraction: 1e-1}}\n")
    assert load_spec(spec).cluster.jobqueue["memory_fraction"] == 0.1  # a string before climode.config
