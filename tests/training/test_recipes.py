"""Every recipe in recipes/ validates, and runs one real training step.

GPU-scale recipes whose data is not on this machine run their step on a
synthetic stand-in of the same kind (bouncing balls for video, the synthetic
hurricane world for CAM5), at 64x64 (bouncing balls keep their 32x32), with a batch of 2.
"""

import json
from pathlib import Path

import pytest

from climode.training.recipe import load_recipe
from climode.training.trainer import Trainer

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_recipes_exist():
    names = {p.stem for p in RECIPES}
    assert {"hurricanes_cpu", "kth_extrapolation", "bouncing_balls_extrapolation", "cam5_extrapolation"} <= names


def _small_world(path):
    """A global hourly store shaped like the physical world (10 days, 8 x 16 cells, noleap from 2000-01-01)."""
    import numpy as np
    import xarray as xr

    hours = np.arange(240.0)
    lat = np.linspace(-78.75, 78.75, 8)
    lon = np.arange(16) * 22.5
    rng = np.random.default_rng(0)
    shape = (len(hours), len(lat), len(lon))
    time = xr.Variable(("time",), hours, {"units": "hours since 2000-01-01 00:00:00", "calendar": "noleap"})
    ds = xr.Dataset({"U850": (("time", "lat", "lon"), rng.normal(5, 3, shape), {"units": "m/s"}),
                     "V850": (("time", "lat", "lon"), rng.normal(0, 3, shape), {"units": "m/s"}),
                     "PSL": (("time", "lat", "lon"), rng.normal(1e5, 500, shape), {"units": "Pa"})},
                    coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    ds.to_zarr(path)
    return path


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_runs_one_step(path, tmp_path, monkeypatch):
    recipe = load_recipe(path)
    if recipe.data.dataset == "held_suarez_world":
        monkeypatch.setenv("CLIMODE_HELD_SUAREZ", str(_small_world(tmp_path / "world.zarr")))
        monkeypatch.setenv("CLIMODE_CACHE", str(tmp_path / "cache"))
    assert recipe.description
    overrides = ["train.max_steps=1", "train.epochs=null", "train.max_minutes=null", "data.batch_size=2",
                 "data.samples_per_epoch=2", "data.validation_split=null"]
    if recipe.data.dataset in ("kth", "moving_gif", "penn_action"):
        overrides += ["data.dataset=bouncing_balls", "data.split=train", "data.n_clips=4", "data.frame_size=64"]
    if recipe.data.dataset == "bouncing_balls":
        overrides += ["data.n_clips=4"]
    if recipe.data.dataset in ("cam5_hurricane", "synthetic_hurricanes"):
        small = {"days": 10, "resolution": 4.0, **{k: v for k, v in recipe.data.generator_args.items() if k == "dt_hours"}}
        overrides += ["data.dataset=synthetic_hurricanes", "data.split=train", "data.n_sequences=1",
                      f"data.generator_args={json.dumps(small)}"]  # the recipe's time step kept: protocols need it
    if recipe.trained_here:
        overrides += ["data.region=null"]
    recipe = load_recipe(path, overrides)
    result = Trainer(recipe, tmp_path / "run", device="cpu", progress=False).fit()
    assert result.steps == 1
    if recipe.data.protocol == "cam5":  # the sidecar records the longest lead trained on
        from climode.data.sampling import get_protocol
        from climode.training.checkpoint import load_checkpoint

        lead = get_protocol(recipe.data.protocol, **recipe.data.protocol_args).trained_lead_hours()
        assert load_checkpoint(tmp_path / "run").meta.max_lead == lead > 0
    assert all(v == v for v in result.losses[0].values())  # finite, not NaN


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_holds_out_its_test_data(path):
    """No recipe validates on the test split; file datasets give the test split its own period."""
    recipe = load_recipe(path)
    assert recipe.data.split != "test" and recipe.data.validation_split != "test"
    if recipe.data.dataset == "cam5_hurricane":
        periods = recipe.data.periods or {}
        assert {"train", "test"} <= set(periods) and recipe.data.split == "train"
        assert recipe.data.validation_split in (None, *periods)
