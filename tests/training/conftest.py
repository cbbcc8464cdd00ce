import pytest
import yaml

TINY_RECIPE = {
    "name": "tiny",
    "description": "a tiny recipe for tests",
    "model": {
        "name": "vidode",
        "config": {
            "init_dim": 4, "n_downs": 1, "ode_hidden": 8, "time_unit": "hour", "time_scale": 24.0,
            "decoder_step": 3.0, "difference_mode": "residual",
            "encoder_solver": {"method": "euler", "step_size": 0.25},
            "decoder_solver": {"method": "euler", "step_size": 0.125},
        },
    },
    "data": {
        "dataset": "synthetic_hurricanes",
        "split": "train",
        "n_sequences": 1,
        "generator_args": {"days": 4, "resolution": 4.0},
        "validation_split": "validation",
        "validation_sequences": 1,
        "validation_windows": 4,
        "protocol": "cam5",
        "protocol_args": {"n_inputs": 3, "n_targets": 2, "step_hours": 3.0, "max_gap_hours": 9.0},
        "static": ["cos_lat"],
        "batch_size": 2,
        "samples_per_epoch": 8,
    },
    "train": {"seed": 0, "max_steps": 6, "checkpoint_every": 2, "validate_every": 3, "log_every": 1,
              "device": "cpu"},
}


@pytest.fixture
def tiny_recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_RECIPE))
    return path
