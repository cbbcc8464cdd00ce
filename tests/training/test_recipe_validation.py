"""Recipe values are type- and range-checked at load, with errors that name the key and what is allowed."""

import pytest
import yaml

from climode.cli.main import main
from climode.config import from_dict, parse_override
from climode.errors import ConfigError
from climode.models.config import ModelConfig, SolverConfig
from climode.training.recipe import load_recipe

BAD = [
    ("train.max_steps=abc", r"train\.max_steps must be an integer.*got 'abc'"),
    ("train.max_minutes=fast", r"train\.max_minutes must be a number.*got 'fast'"),
    ("loss.diff=abc", r"loss\.diff must be a number, got 'abc'"),
    ("data.variables=U850", r"data\.variables must be a list of strings, got 'U850'"),
    ("train.seed=1.5", r"train\.seed must be an integer, got 1\.5"),
    ("optim.decay=2.0", r"optim\.decay .*must be in \(0, 1\], got 2\.0"),
    ("optim.min_lr_factor=-1", r"optim\.min_lr_factor .*must be in \[0, 1\], got -1"),
    ("optim.grad_clip=-1", r"optim\.grad_clip must be a positive number or null, got -1"),
    ("optim.disc_lr=-3", r"optim\.disc_lr must be a positive number or null, got -3"),
    ("train.compile=maybe", r"train\.compile must be true or false, got 'maybe'"),
    ("model.name=nonexistent", r"model\.name: unknown model 'nonexistent'; known models: vidode, vidode_a"),
    ("model.config.bogus=1", r"unknown key model\.config\.bogus; allowed keys: .*init_dim"),
    ("optim.lr=abc", r"optim\.lr must be a number, got 'abc'"),
    ("model.config.init_dim=2.5", r"model\.config\.init_dim must be an integer, got 2\.5"),
    ("model.config.difference_mode=blend", r"model\.config\.difference_mode must be one of 'image', 'residual'"),
    ("model.config.encoder_solver.step_size=small", r"model\.config\.encoder_solver\.step_size must be a number"),
    ("loss.img=-1", r"loss\.img must be a number >= 0, got -1"),
    ("data.batch_size=0", r"data\.batch_size must be >= 1, got 0"),
    ("train.max_steps=0", r"train\.max_steps must be >= 1, got 0"),
    ("train.discriminators=sometimes", r"train\.discriminators must be true or false \(or null\)"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_an_error_naming_the_key(tiny_recipe, override, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(tiny_recipe, [override])


def test_set_values_are_read_as_yaml_1_2_numbers_and_null(tiny_recipe):
    assert parse_override("optim.lr=1e-3") == (["optim", "lr"], 1e-3)
    assert parse_override("optim.grad_clip=null")[1] is None
    assert parse_override("data.variables=[U850, PSL]")[1] == ["U850", "PSL"]
    recipe = load_recipe(tiny_recipe, ["optim.lr=1e-3", "optim.grad_clip=null", "train.max_minutes=2",
                                       "optim.disc_lr=5E-4"])
    assert recipe.optim.lr == 1e-3 and isinstance(recipe.optim.lr, float)
    assert recipe.optim.grad_clip is None and recipe.optim.disc_lr == 5e-4
    assert recipe.train.max_minutes == 2.0 and isinstance(recipe.train.max_minutes, float)  # ints accepted


def test_recipe_files_read_exponent_floats(tiny_recipe, tmp_path):
    text = tiny_recipe.read_text() + "optim:\n  lr: 1e-3\n  decay: 0.99\n"
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    assert load_recipe(path).optim.lr == pytest.approx(1e-3)


def test_model_config_is_checked_against_the_models_config_class(tiny_recipe):
    # a key of ModelConfig that the ConvGRU baseline does not have
    with pytest.raises(ConfigError, match=r"unknown key model\.config\.use_warp"):
        load_recipe(tiny_recipe, ["model.name=convgru", "model.config={init_dim: 4, n_downs: 1, use_warp: true}"])
    # an ablation's fixed switch cannot be contradicted
    with pytest.raises(ConfigError, match=r"model\.config\.use_composition: model 'vidode_e' fixes use_composition=True"):
        load_recipe(tiny_recipe, ["model.name=vidode_e", "model.config.use_composition=false"])
    # also when the recipe's value is the config class's default (use_warp=True), which a
    # checkpoint's full config may hold and which is then replaced silently
    with pytest.raises(ConfigError, match=r"model\.config\.use_warp: model 'vidode_b' fixes use_warp=False"):
        load_recipe(tiny_recipe, ["model.name=vidode_b", "model.config.use_warp=true"])
    assert load_recipe(tiny_recipe, ["model.name=vidode_b"]).model.name == "vidode_b"


def test_train_check_catches_a_bad_model_config(tiny_recipe, capsys):
    assert main(["train", str(tiny_recipe), "--check"]) == 0
    assert main(["train", str(tiny_recipe), "--check", "--set", "model.config.bogus=1"]) == 2
    assert "model.config.bogus" in capsys.readouterr().err


def test_from_dict_checks_nested_dataclasses_only_when_asked():
    with pytest.raises(ConfigError, match=r"decoder_solver\.rtol must be a number, got 'tight'"):
        from_dict(ModelConfig, {"decoder_solver": {"rtol": "tight"}}, check_types=True)
    cfg = from_dict(ModelConfig, {"time_scale": 24, "encoder_solver": {"method": "euler", "step_size": 1}},
                    check_types=True)
    assert cfg.time_scale == 24.0 and isinstance(cfg.time_scale, float)
    assert cfg.encoder_solver == SolverConfig(method="euler", step_size=1.0)
    assert from_dict(ModelConfig, ModelConfig.tiny().to_dict(), check_types=True) == ModelConfig.tiny()


def test_written_recipe_round_trips(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe)
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(recipe.to_dict()))
    assert load_recipe(path) == recipe


def test_training_on_the_test_split_needs_the_loud_override(tiny_recipe):
    import subprocess
    import sys

    # `climode train --check` and `climode train` both read the recipe through load_recipe
    proc = subprocess.run([sys.executable, "-m", "climode", "train", str(tiny_recipe), "--set", "data.split=test",
                           "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "climode: error:" in proc.stderr and "data.unsafe_train_on_test_split: true" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="trains on the held-out test split"):
        load_recipe(tiny_recipe, ["data.split=test", "train.max_steps=1"])
    recipe = load_recipe(tiny_recipe, ["data.split=test", "data.unsafe_train_on_test_split=true"])
    assert recipe.data.split == "test"
