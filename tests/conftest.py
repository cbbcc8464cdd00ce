import pytest
import torch

from climode.data.normalize import Normalizer
from climode.models.config import ModelConfig, SolverConfig
from climode.models.vidode import VidODE
from climode.training.checkpoint import save_checkpoint

VARIABLES = ["U850", "V850", "PSL"]


def tiny_checkpoint(directory, **config):
    torch.manual_seed(0)
    cfg = ModelConfig.tiny(time_unit="hour", time_scale=24.0, decoder_step=3.0, static_channels=1,
                           difference_mode="residual", encoder_solver=SolverConfig(method="euler", step_size=0.25),
                           decoder_solver=SolverConfig(method="euler", step_size=0.125), **config)
    model = VidODE(cfg)
    meta = {
        "model": "vidode",
        "config": cfg.to_dict(),
        "variables": VARIABLES,
        "units": {"U850": "m/s", "V850": "m/s", "PSL": "Pa"},
        "normalization": Normalizer(tuple(VARIABLES), (0.0, 0.0, 101000.0), (6.0, 4.0, 500.0)).to_dict(),
        "grid": {"dlat": 1.5, "dlon": 1.5},
        "static": ["cos_lat"],
        "protocol": {"name": "cam5", "n_inputs": 5},
        "trained_on": "nothing (a test model)",
        "disclaimer": "test model",
    }
    return save_checkpoint(directory, model, step=1, meta=meta)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def forecaster(checkpoint):
    from climode.forecast import load_model

    return load_model(checkpoint, device="cpu")


@pytest.fixture(scope="session")
def sample():
    from climode.forecast.sample import default_sample

    return default_sample()
