"""Forecasts from other checkpoints: a stochastic model's ensemble, and a model for variables climode lacks."""

import numpy as np
import pytest
import torch

from climode.data.normalize import Normalizer
from climode.errors import CheckpointError
from climode.forecast import load_model
from climode.models.config import ModelConfig
from climode.models.registry import get_model
from climode.training.checkpoint import load_checkpoint, save_checkpoint


def resave(checkpoint, directory, variables=None, **config):
    """Save a real checkpoint: the test model's sidecar with ``config`` changes (fresh weights)."""
    meta = load_checkpoint(checkpoint).meta.to_dict()
    cfg = ModelConfig.from_dict(meta["config"])
    cfg = ModelConfig.from_dict({**cfg.to_dict(), **config})
    meta["config"] = cfg.to_dict()
    if variables is not None:
        meta["variables"] = variables
        meta["units"] = {v: "K" for v in variables}
        meta["normalization"] = Normalizer(tuple(variables), (280.0,) * len(variables),
                                           (10.0,) * len(variables)).to_dict()
    torch.manual_seed(1)
    return save_checkpoint(directory, get_model(meta["model"], cfg.to_dict()), step=2, meta=meta)


def test_checkpoint_for_variables_climode_does_not_read_is_refused(checkpoint, tmp_path):
    other = resave(checkpoint, tmp_path, variables=["T850"], in_channels=1)
    with pytest.raises(CheckpointError) as info:
        load_model(other, device="cpu")
    message = str(info.value)
    assert "\n" not in message and "forecasts T850" in message and "not supported" in message
    assert "use a checkpoint trained on those" in message and "unknown variable" not in message


def test_missing_checkpoint_is_not_found_not_incomplete():
    with pytest.raises(CheckpointError, match="not found"):
        load_model("/nonexistent/model.json")


@pytest.fixture(scope="module")
def stochastic(checkpoint, tmp_path_factory):
    return load_model(resave(checkpoint, tmp_path_factory.mktemp("stochastic"), sample_z0=True), device="cpu")


def test_members_of_a_stochastic_model_differ_on_a_realization_dim(stochastic, sample):
    torch.manual_seed(0)
    out = stochastic.predict(sample, "+3h,+6h", members=3)
    assert out["PSL"].dims == ("member", "time", "lat", "lon") and out.sizes["member"] == 3
    assert out["member"].attrs["standard_name"] == "realization"
    psl = out["PSL"].values
    assert np.isfinite(psl).all()
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(psl[a] - psl[b]).max() > 1e-3  # each member has its own z0 sample
    deterministic = stochastic.predict(sample, "+3h,+6h")  # without --members: the mean z0, no member dim
    assert "member" not in deterministic.dims
    again = stochastic.predict(sample, "+3h,+6h")
    np.testing.assert_array_equal(deterministic["PSL"].values, again["PSL"].values)


def test_a_bundled_model_is_found_by_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of that name here: the zoo's model is taken
    by_name = load_model("hurricanes_cpu", "cpu")
    default = load_model(None, "cpu")
    assert by_name.path == default.path
    with pytest.raises(CheckpointError, match="not found"):
        load_model("no_such_model", "cpu")
