import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from climode.errors import ConfigError
from climode.training.checkpoint import load_checkpoint
from climode.training.recipe import load_recipe
from climode.training.trainer import Trainer, TrainingError


def read_losses(run_dir):
    with open(run_dir / "metrics.csv") as fh:
        return {int(r["step"]): float(r["total"]) for r in csv.DictReader(fh)}


def test_same_recipe_and_seed_give_same_losses(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe, ["train.max_steps=3"])
    a = Trainer(recipe, tmp_path / "a", progress=False).fit()
    b = Trainer(recipe, tmp_path / "b", progress=False).fit()
    assert [r["total"] for r in a.losses] == [r["total"] for r in b.losses]
    other = Trainer(load_recipe(tiny_recipe, ["train.max_steps=3", "train.seed=1"]), tmp_path / "c", progress=False).fit()
    assert [r["total"] for r in other.losses] != [r["total"] for r in a.losses]


def test_training_writes_checkpoint_logs_and_validation(tiny_recipe, tmp_path):
    result = Trainer(load_recipe(tiny_recipe), tmp_path / "run", progress=False).fit()
    assert result.steps == 6
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 6
    meta = ckpt.meta
    assert meta.variables == ["U850", "V850", "PSL"] and meta.units["PSL"] == "Pa"
    assert meta.normalization["variables"] == ["U850", "V850", "PSL"]
    assert meta.config["static_channels"] == 1 and meta.grid["dlat"] == pytest.approx(4.0)
    assert meta.recipe["name"] == "tiny" and meta.seed == 0
    assert len(result.validation) == 2 and result.validation[0]["val_rmse_PSL"] > 0
    assert (tmp_path / "run" / "samples" / "step-00000003.png").exists()
    # a finished run refuses to be overwritten by accident
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(load_recipe(tiny_recipe), tmp_path / "run", progress=False).fit()


def test_killed_run_resumes_exactly(tiny_recipe, tmp_path):
    # Both runs go through the same command with the same thread count: float sums depend on the
    # number of threads, so a reference run in this process would compare two different machines.
    env = dict(os.environ, OMP_NUM_THREADS="2")
    base = [sys.executable, "-m", "climode", "train", str(tiny_recipe), "--quiet", "--set", "train.max_steps=8"]
    full = tmp_path / "full"
    subprocess.run(base + ["--run-dir", str(full)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    expected = read_losses(full)

    run = tmp_path / "killed"
    cmd = base + ["--run-dir", str(run)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "model-00000004.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model-00000008.json").exists(), "the run finished before it could be killed"
    subprocess.run(cmd + ["--resume"], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = read_losses(run)
    assert sorted(got) == list(range(1, 9))
    assert got == expected


def test_non_finite_loss_stops_with_a_clear_message(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe, ["optim.lr=1.0e+30", "optim.grad_clip=null"])
    with pytest.raises(TrainingError, match="non-finite"):
        Trainer(recipe, tmp_path / "nan", progress=False).fit()


def test_recipe_errors_name_the_key(tiny_recipe, tmp_path):
    with pytest.raises(ConfigError, match="unknown key train.max_step"):
        load_recipe(tiny_recipe, ["train.max_step=3"])
    with pytest.raises(ConfigError, match="optim.name"):
        load_recipe(tiny_recipe, ["optim.name=sgd"])
    data = yaml.safe_load(tiny_recipe.read_text())
    data["trainer"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown recipe key 'trainer'"):
        load_recipe(bad)


def test_two_gloo_processes_under_torchrun(tiny_recipe, tmp_path):
    # 5 windows per epoch, batches of 2 on 2 ranks: unpadded, rank 0 would get 2 batches and rank 1 one,
    # and rank 1 would wait forever at step 2; the run crosses an epoch boundary, with the discriminators on
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        # torchrun as `python -m torch.distributed.run`, and `-m climode`: both this interpreter (the venv's), so
        # the test needs neither an activated venv nor anything on PATH
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "climode", "-v",
         "train", str(tiny_recipe),
         "--run-dir", str(run), "--set", "train.max_steps=3", "--set", "data.samples_per_epoch=5"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "all 2 ranks hold identical weights (generator checksum" in proc.stderr
    assert "discriminators checksum" in proc.stderr
    ckpt = load_checkpoint(run)
    assert ckpt.step == 3 and ckpt.meta.training == {"discriminators": True, "precision": "float32"}


def test_training_on_a_global_grid_wraps_in_longitude(tiny_recipe, tmp_path):
    from climode.models.warp import _PERIODIC_X

    recipe = load_recipe(tiny_recipe, ["train.max_steps=1", "train.discriminators=false", "data.validation_split=null",
                                       "data.generator_args.lon_range=[0, 337.5]",
                                       "data.generator_args.lat_range=[-45, 45]",
                                       "data.generator_args.resolution=22.5"])
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    seen = []
    trainer._setup_hooked = trainer._setup

    def setup_and_watch():
        trainer._setup_hooked()
        conv = trainer.model.encoder.net[0]
        conv.register_forward_hook(lambda m, args, out: seen.append((m.padding, _PERIODIC_X.get(), out.shape[-1])))

    trainer._setup = setup_and_watch
    trainer.fit()
    # no zero padding in x, yet 16 columns out of 16 in: the input was wrapped by a column on each side
    assert seen and all(p == (1, 0) and periodic and width == 16 for p, periodic, width in seen)
    assert trainer.model.encoder.net[0].padding == (1, 1) and not _PERIODIC_X.get()  # restored after fit
