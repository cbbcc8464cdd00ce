import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from climode.errors import CheckpointError
from climode.models.checkpoint_meta import CheckpointMeta
from climode.models.config import ModelConfig
from climode.models.vidode import VidODE
from climode.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_training_state,
    prune,
    rng_state,
    save_checkpoint,
    save_training_state,
    set_rng_state,
)


def make_model(seed=0):
    torch.manual_seed(seed)
    return VidODE(ModelConfig.tiny())


def test_round_trip_restores_identical_predictions(tmp_path):
    model = make_model().eval()
    meta = {"model": "vidode", "config": model.config, "variables": ["U850", "V850", "PSL"], "seed": 3}
    sidecar = save_checkpoint(tmp_path, model, step=12, meta=meta)
    ckpt = load_checkpoint(sidecar)
    assert ckpt.step == 12 and ckpt.meta.variables == ["U850", "V850", "PSL"]
    assert ckpt.meta.config["decoder_solver"]["method"] == "rk4"
    restored = VidODE(ModelConfig.from_dict(ckpt.meta.config)).eval()
    restored.load_state_dict(ckpt.state_dict)
    x = torch.rand(1, 3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x, [0, 1, 2], [3.0]).frames, restored(x, [0, 1, 2], [3.0]).frames)


def test_newest_checkpoint_found_by_step_number_and_incomplete_ones_ignored(tmp_path):
    model = make_model()
    for step in (9, 100, 20):
        save_checkpoint(tmp_path, model, step=step, meta={})
    # a crash after writing weights but before the sidecar: not a checkpoint
    (tmp_path / "model-00000500.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "model-00000100.json"
    assert load_checkpoint(tmp_path).step == 100
    prune(tmp_path, keep=1)
    assert sorted(p.name for p in tmp_path.glob("model-*.json")) == ["model-00000100.json"]


def test_corrupt_weights_are_refused(tmp_path):
    sidecar = save_checkpoint(tmp_path, make_model(), step=1, meta={})
    weights = sidecar.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(sidecar)


def test_pickle_files_are_never_loaded(tmp_path):
    torch.save(make_model().state_dict(), tmp_path / "model-00000001.safetensors")  # a pickle in disguise
    (tmp_path / "model-00000001.json").write_text(json.dumps({"step": 1}))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path)


def test_training_state_round_trip_continues_identically(tmp_path):
    model = make_model()
    opt = torch.optim.Adamax(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.99)
    x = torch.rand(2, 3, 3, 8, 8)

    def train_step():
        opt.zero_grad()
        model(x, [0, 1, 2], [3.0]).frames.mean().backward()
        opt.step()
        sched.step()
        return float(torch.rand(()))  # consumes the RNG too

    train_step()
    save_checkpoint(tmp_path, model, step=1, meta={})
    save_training_state(tmp_path, 1, {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                      "rng": rng_state(), "data": {"epoch": 0, "batch": 1}})
    expected = [train_step(), *[p.detach().clone() for p in model.parameters()]]

    model2 = make_model(seed=5)
    model2.load_state_dict(load_checkpoint(tmp_path).state_dict)
    opt2 = torch.optim.Adamax(model2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.ExponentialLR(opt2, 0.99)
    state = load_training_state(tmp_path, 1)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    assert state["data"] == {"epoch": 0, "batch": 1}
    model, opt, sched = model2, opt2, sched2
    got = [train_step(), *[p.detach().clone() for p in model.parameters()]]
    assert got[0] == expected[0]
    for a, b in zip(got[1:], expected[1:]):
        assert torch.equal(a, b)
    assert np.isclose(opt.param_groups[0]["lr"], 1e-3 * 0.99**2)


def test_keys_of_a_replaced_compiled_module_are_read_as_plain_keys(tmp_path):
    from climode.training.checkpoint import save_weights

    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny())
    wrapped = {k.replace("encoder.", "encoder._orig_mod.", 1): v for k, v in model.state_dict().items()}
    assert any("_orig_mod" in k for k in wrapped)
    sidecar = save_weights(tmp_path / "model-00000001.safetensors", wrapped, {"step": 1})
    restored = VidODE(ModelConfig.tiny())
    restored.load_state_dict(load_checkpoint(sidecar).state_dict, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), restored.state_dict().values()))


# ---------------------------------------------------------------- the sidecar record
ZOO_SIDECARS = sorted((Path(__file__).resolve().parents[2] / "climode" / "zoo").glob("*.json"))


def test_checkpoint_meta_round_trips_through_a_sidecar(tmp_path):
    meta = CheckpointMeta(model="vidode", config=ModelConfig.tiny().to_dict(), variables=["U850", "V850", "PSL"],
                          units={"PSL": "Pa"}, time_unit="hour", grid={"shape": [4, 8], "lat": np.arange(4.0)},
                          protocol={"name": "cam5", "n_inputs": 5}, max_lead=15, seed=3,
                          training={"discriminators": False, "precision": "bfloat16"},
                          extra={"written_by_a_newer_climode": {"keep": [1, 2]}})
    sidecar = save_checkpoint(tmp_path, make_model(), step=7, meta=meta)
    loaded = load_checkpoint(sidecar).meta
    assert isinstance(loaded, CheckpointMeta) and loaded.step == 7 and loaded.precision == "bfloat16"
    assert loaded.grid["lat"] == [0.0, 1.0, 2.0, 3.0] and loaded.max_lead == 15.0  # JSON values
    assert loaded.extra == {"written_by_a_newer_climode": {"keep": [1, 2]}}  # unknown keys kept, not dropped
    assert loaded.sha256 and loaded.weights == "model-00000007.safetensors" and loaded.schema_version == 1
    written = dataclasses.replace(loaded, sha256=None, weights=None, saved_at=None, schema_version=None,
                                  climode_version=None, uuid=None)
    assert written == dataclasses.replace(meta, step=7, grid={"shape": [4, 8], "lat": [0.0, 1.0, 2.0, 3.0]},
                                          max_lead=15.0)
    again = load_checkpoint(save_checkpoint(tmp_path / "again", make_model(), step=7, meta=loaded)).meta
    assert again.uuid == loaded.uuid and again.extra == loaded.extra


def test_a_sidecar_without_most_keys_loads_with_defaults(tmp_path):
    sidecar = save_checkpoint(tmp_path, make_model(), step=1, meta={"model": "vidode", "future": 1})
    meta = load_checkpoint(sidecar).meta
    assert meta.missing("model", "config", "variables") == ["config", "variables"]
    assert meta.static == [] and meta.recipe_data == {} and meta.precision is None and not meta.is_video
    assert meta.extra == {"future": 1} and "config" not in json.loads(sidecar.read_text())


@pytest.mark.parametrize("sidecar", ZOO_SIDECARS, ids=[p.stem for p in ZOO_SIDECARS])
def test_bundled_sidecars_written_by_older_versions_still_load(sidecar):
    data = json.loads(sidecar.read_text())
    meta = CheckpointMeta.from_dict(data)
    assert meta.to_dict() == data  # nothing lost or added
    loaded = load_checkpoint(sidecar).meta
    assert loaded == meta and loaded.extra == {}
    assert loaded.model == data["model"] and loaded.variables == data["variables"] and loaded.step == data["step"]
    assert loaded.is_video == (data["time_unit"] == "frame") and loaded.protocol["n_inputs"] == data["protocol"]["n_inputs"]
    assert loaded.recipe_data == data["recipe"]["data"]
