"""EvaluationConfig: default baselines by data kind, and reading it through the config layer."""

import pytest

from climode.config import load_config
from climode.errors import ConfigError
from climode.evaluation import EvaluationConfig


@pytest.mark.parametrize("kwargs,baselines", [
    ({}, ["persistence", "advection"]),
    ({"data": "bouncing_balls"}, ["persistence", "pysteps"]),
    ({"data": "bouncing_balls", "interpolate": 4}, ["blend", "flow"]),
    ({"data": "bouncing_balls", "baselines": ["persistence"]}, ["persistence"]),
    ({"baselines": []}, []),
])
def test_default_baselines_follow_the_data(kwargs, baselines):
    assert EvaluationConfig(**kwargs).baselines == baselines


def test_evaluation_config_loads_from_yaml(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("data: moving_mnist\nwindows: 16\n")
    config = load_config(EvaluationConfig, path, ["seed=3"])
    assert (config.data, config.windows, config.seed, config.baselines) == ("moving_mnist", 16, 3,
                                                                            ["persistence", "pysteps"])
    with pytest.raises(ConfigError, match="^eval.yaml: windows must be an integer, got 'many'$"):
        load_config(EvaluationConfig, path, ["windows=many"])
