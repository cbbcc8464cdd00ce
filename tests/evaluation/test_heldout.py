"""climode evaluate refuses to score a checkpoint on the data it was trained on."""

import copy
import dataclasses

import pytest

from climode.errors import ConfigError
from climode.evaluation import EvaluationConfig, evaluate
from climode.evaluation.heldout import check_held_out
from climode.models.checkpoint_meta import CheckpointMeta


@pytest.fixture(scope="module")
def season_file(tmp_path_factory):
    from climode.data.synthetic.hurricanes import generate

    path = tmp_path_factory.mktemp("files") / "season.nc"
    generate(seed=3, days=2, resolution=6.0).drop_vars(["track_lat", "track_lon", "track_psl"], errors="ignore") \
        .to_netcdf(path)
    return str(path)


def _meta(**data):
    return CheckpointMeta(recipe={"data": {"dataset": "synthetic_hurricanes", "split": "train", "n_sequences": 8, **data}})


def test_file_without_a_held_out_period_cannot_be_evaluated(forecaster, season_file):
    trained = copy.copy(forecaster)
    trained.meta = dataclasses.replace(forecaster.meta,
                                       recipe=_meta(dataset=season_file, split=None, validation_split=None).recipe)
    with pytest.raises(ConfigError, match=r"has no held-out test period .* trained on the whole of it; "
                                          r"train with data.periods"):
        evaluate(trained, EvaluationConfig(data=season_file, n_sequences=1, windows=2, bootstrap=10), progress=False)


def test_file_needs_a_test_period_apart_from_the_training_period(season_file):
    with pytest.raises(ConfigError, match="no held-out test period"):
        check_held_out(_meta(dataset=season_file, periods={"train": "1990-01-01/1990-01-01"}), season_file, "test", 1)
    with pytest.raises(ConfigError, match="trained on its test split"):
        check_held_out(_meta(dataset=season_file, split="test", periods={"test": "1990-01-01/1990-01-01"}),
                       season_file, "test", 1)
    glob = season_file.rsplit("/", 1)[0] + "/*.nc"  # the same file by another name
    with pytest.raises(ConfigError, match="no held-out test period"):
        check_held_out(_meta(dataset=glob, split=None), season_file, "test", 1)
    periods = {"train": "1990-01-01/1990-01-01", "test": "1990-01-02/1990-01-02"}
    check_held_out(_meta(dataset=season_file, periods=periods), season_file, "test", 1)  # held-out period


def test_other_files_are_held_out(season_file, tmp_path):
    other = tmp_path / "other.nc"
    other.write_bytes(b"")  # only its name matters: no file is shared with the training data
    check_held_out(_meta(dataset=str(other), split=None), season_file, "test", 1)
    check_held_out(_meta(), season_file, "test", 1)  # trained on the synthetic world: the file is new to it


def test_synthetic_seeds_trained_on_cannot_be_scored():
    check_held_out(_meta(), "synthetic_hurricanes", "test", 4)
    with pytest.raises(ConfigError, match=r"trained on seeds \[0, 1, 2, 3\] of synthetic_hurricanes"):
        check_held_out(_meta(), "synthetic_hurricanes", "train", 4)
    with pytest.raises(ConfigError, match=r"seeds \[20000\]"):
        check_held_out(_meta(split="test", seeds=[20000], unsafe_train_on_test_split=True),
                       "synthetic_hurricanes", "test", 4)


def test_video_checkpoint_cannot_be_scored_on_its_training_split():
    check_held_out(_meta(dataset="kth", split="train_dev"), "kth", "test", 1)
    for split in ("train", "validation", "all"):
        with pytest.raises(ConfigError, match="trained on the train split of kth"):
            check_held_out(_meta(dataset="kth", split="train"), "kth", split, 1)


def test_generated_video_splits_are_apart_by_seed():
    """Bouncing balls draw each split from its own seed: a model trained on train may be scored on
    validation or test, not on train; with seeds of the recipe's own, the careful rule of file datasets holds."""
    for split in ("validation", "test"):
        check_held_out(_meta(dataset="bouncing_balls", split="train"), "bouncing_balls", split, 1)
    with pytest.raises(ConfigError, match="trained on the train split of bouncing_balls"):
        check_held_out(_meta(dataset="bouncing_balls", split="train"), "bouncing_balls", "train", 1)
    with pytest.raises(ConfigError, match="trained on the train split of bouncing_balls"):
        check_held_out(_meta(dataset="bouncing_balls", split="train", seeds=[5]), "bouncing_balls", "validation", 1)


def test_period_scores_part_of_a_file_the_checkpoint_did_not_train_on(forecaster, tmp_path):
    """--period: data the checkpoint never saw, scored on one period of it (the rest not opened)."""
    from climode.data.synthetic.hurricanes import generate
    from climode.evaluation.runner import _climatology_section, _data_section

    path = str(tmp_path / "twenty_days.nc")
    generate(seed=5, days=20, resolution=6.0).drop_vars(["track_lat", "track_lon", "track_psl"], errors="ignore") \
        .to_netcdf(path)
    config = EvaluationConfig(data=path, n_sequences=1, windows=3, bootstrap=10, period="2000-08-06/2000-08-20",
                              baselines=["persistence"], tracks=False)
    section = _data_section(forecaster, config)
    assert section.periods == {"test": "2000-08-06/2000-08-20"}
    assert _climatology_section(forecaster, section, config).periods is None  # whole file, and the meta says so
    results = evaluate(forecaster, config, progress=False)
    assert results["meta"]["period"] == "2000-08-06/2000-08-20" and results["meta"]["n_windows"] == 3
    assert "includes the scored period" in results["meta"]["climatology"]["source"]
    whole = evaluate(forecaster, dataclasses.replace(config, period=None), progress=False)
    assert "period" not in whole["meta"]
    assert whole["model"]["overall"]["PSL"]["rmse"] != results["model"]["overall"]["PSL"]["rmse"]
    trained = copy.copy(forecaster)
    trained.meta = dataclasses.replace(forecaster.meta, recipe=_meta(dataset=path, split=None).recipe)
    with pytest.raises(ConfigError, match="--period is for data the checkpoint did not train on"):
        _data_section(trained, config)
    with pytest.raises(ConfigError, match="period"):
        EvaluationConfig(period="December")
