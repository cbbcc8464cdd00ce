"""What multi-process (torchrun) and multi-GPU training must get right, checked on the CPU with gloo."""

import multiprocessing as mp
import os

import pytest
import torch

from climode.errors import ConfigError
from climode.training.checkpoint import cuda_rng_to_restore, load_checkpoint
from climode.training.recipe import load_recipe
from climode.training.trainer import resolve_device


class TickClock:
    """A clock that advances ``tick`` seconds per reading: ranks with different ticks run skewed clocks."""

    def __init__(self, tick: float):
        self.tick, self.now = tick, 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def _skewed_rank(rank, world, store, recipe_path, run_dir, out):
    os.environ.update(OMP_NUM_THREADS="1", RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    from climode.training.trainer import Trainer

    try:
        recipe = load_recipe(recipe_path, ["train.max_steps=12", "train.max_minutes=0.1", "train.discriminators=false",
                                           "data.validation_split=null", "train.checkpoint_every=100"])
        # 6 s of budget: rank 1's clock (2 s a reading) spends it after 3 steps, rank 0's (1 s) after 6
        result = Trainer(recipe, run_dir, progress=False, clock=TickClock(1.0 + rank)).fit()
        out.put((rank, result.steps))
    except Exception as exc:  # reported, so the test fails with the reason instead of a timeout
        out.put((rank, repr(exc)))
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_with_skewed_clocks_stop_after_the_same_step(tiny_recipe, tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_skewed_rank, args=(r, 2, tmp_path / "store", tiny_recipe, tmp_path / "run", out))
             for r in range(2)]
    for p in procs:
        p.start()
    try:
        steps = dict(out.get(timeout=90) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # a rank left waiting on the other: the bug this test guards against
                p.kill()
    assert steps == {0: 3, 1: 3}, steps
    assert load_checkpoint(tmp_path / "run").step == 3


def test_cuda_n_is_refused_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"device cuda:1 would put all 2 torchrun processes on one GPU; use device cuda"):
        resolve_device("cuda:1")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_random_state_restores_onto_fewer_gpus():
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # an old checkpoint from a 4-GPU machine
    assert torch.equal(cuda_rng_to_restore(states, 1), states[1])
    assert cuda_rng_to_restore(states[:1], 1) is None  # saved on one GPU, restored on GPU 1: keep the seed
    assert torch.equal(cuda_rng_to_restore(states[3], 0), states[3])  # new checkpoints: this rank's own state
