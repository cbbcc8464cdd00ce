"""The model's time settings must agree with the data and the protocol's step."""

import pytest

from climode.errors import ConfigError
from climode.training.recipe import load_recipe
from climode.training.trainer import Trainer


def test_a_decoder_grid_finer_than_the_protocol_step_trains_with_exact_targets(tiny_recipe, tmp_path):
    """decoder_step 1 h on 3-hourly targets: each target is three grid steps, reached exactly."""
    from climode.training.checkpoint import load_checkpoint

    recipe = load_recipe(tiny_recipe, ["model.config.decoder_step=1.0", "data.validation_split=null",
                                       "train.max_steps=1", "train.discriminators=false"])
    Trainer(recipe, tmp_path / "run", device="cpu", progress=False).fit()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 1 and ckpt.meta.recipe["model"]["config"]["decoder_step"] == 1.0


def test_default_time_scale_for_hours_and_a_foreign_time_unit_are_errors(tiny_recipe, tmp_path):
    from climode.config import read_yaml

    data = read_yaml(tiny_recipe.read_text())
    del data["model"]["config"]["time_scale"]
    path = tmp_path / "no_scale.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(path, ["data.validation_split=null"])
    with pytest.raises(ConfigError, match=r"time_scale is the default 10, meant for frames, but the data are in hours"):
        Trainer(recipe, tmp_path / "a", device="cpu", progress=False).fit()
    recipe = load_recipe(tiny_recipe, ["model.config.time_unit=frame", "data.validation_split=null"])
    with pytest.raises(ConfigError, match=r"time_unit is 'frame' but the data are in hours"):
        Trainer(recipe, tmp_path / "b", device="cpu", progress=False).fit()
