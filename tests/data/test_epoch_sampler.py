"""EpochSampler and make_loader: the one sampler of training, evaluation and benchmarks."""

import numpy as np
import pytest
import torch

from climode.data.loader import EpochSampler, make_loader
from climode.data.sampling import RegularExtrapolation
from climode.data.windows import WindowDataset
from climode.errors import ConfigError


def videos(n_windows=None):
    frames = np.arange(2 * 12 * 4 * 4, dtype="float32").reshape(2, 12, 1, 4, 4)
    return WindowDataset(frames, None, RegularExtrapolation(n_inputs=2, n_targets=1), seed=5,
                         samples_per_epoch=n_windows)


def keys(loader):
    return [(int(s), int(i)) for b in loader for s, i in zip(b["sequence"], b["sample_index"])]


def test_epoch_sampler_gives_every_rank_the_same_number_of_batches():
    n, world, batch = 257, 2, 8
    ranks = [EpochSampler(n, epoch=3, seed=0, shuffle=True, rank=r, world=world) for r in range(world)]
    assert [len(s) for s in ranks] == [129, 129]
    assert [len(torch.utils.data.BatchSampler(s, batch, drop_last=False)) for s in ranks] == [17, 17]
    keys = [k for s in ranks for k in s]
    assert {i for _, i in keys} == set(range(n))  # every window is drawn, one padded twice
    assert len(keys) - len(set(keys)) == 1
    assert all(e == 3 for e, _ in keys)
    # resuming mid-epoch skips on every rank alike
    assert [len(EpochSampler(n, 3, 0, True, rank=r, world=world, skip=16 * batch)) for r in range(world)] == [1, 1]
    assert len(EpochSampler(n, 0, 0, True)) == n  # one process: no padding




def test_one_sampler_serves_every_epoch():
    sampler = EpochSampler(10, epoch=0, seed=3, shuffle=True, rank=1, world=2)
    sampler.set_epoch(2, skip=1)
    fresh = EpochSampler(10, epoch=2, seed=3, shuffle=True, rank=1, world=2, skip=1)
    assert list(sampler) == list(fresh) and len(sampler) == 4


def test_shuffled_order_is_a_pure_function_of_seed_and_epoch():
    order = [i for _, i in EpochSampler(20, epoch=4, seed=9, shuffle=True)]
    assert order == [i for _, i in EpochSampler(20, epoch=4, seed=9, shuffle=True)]
    assert order != [i for _, i in EpochSampler(20, epoch=5, seed=9, shuffle=True)]
    assert sorted(order) == list(range(20))
    # the trainer's seed domain: checkpoints of earlier runs resume onto the same order
    seq = np.random.SeedSequence(9, spawn_key=(7, 4))
    assert order == np.random.Generator(np.random.PCG64(seq)).permutation(20).tolist()
    assert [i for _, i in EpochSampler(20, 4, 9, shuffle=False)] == list(range(20))


def test_a_loader_resumed_with_skip_continues_the_uninterrupted_batches():
    data = videos(n_windows=14)
    whole = [b["sample_index"].tolist() for b in make_loader(data, 3, shuffle=True, seed=2, epoch=1)]
    resumed = [b["sample_index"].tolist() for b in make_loader(data, 3, shuffle=True, seed=2, epoch=1, skip=2 * 3)]
    assert resumed == whole[2:]
    loader = make_loader(data, 3, shuffle=True, seed=2, epoch=0, skip=3)
    loader.sampler.set_epoch(1, skip=2 * 3)  # one loader serves every epoch
    assert [b["sample_index"].tolist() for b in loader] == whole[2:]


def test_ranks_draw_disjoint_shares_of_equal_length():
    data = videos()
    n = len(data)
    shares = [keys(make_loader(data, 4, shuffle=True, seed=1, epoch=0, rank=r, world=3)) for r in range(3)]
    assert [len(s) for s in shares] == [EpochSampler.per_rank(n, 3)] * 3
    drawn = [i for s in shares for _, i in s]
    assert set(drawn) == set(range(n)) and len(drawn) - n == 3 * EpochSampler.per_rank(n, 3) - n
    with pytest.raises(ConfigError, match="outside a world"):
        make_loader(data, 4, rank=3, world=3)


def test_without_an_epoch_the_loader_follows_the_dataset():
    data = videos(n_windows=6)
    loader = make_loader(data, 6)
    first = next(iter(loader))["start"].tolist()
    data.set_epoch(3)
    assert next(iter(loader))["start"].tolist() == [data.window(i)[1] for i in range(6)] != first
    assert next(iter(make_loader(data, 6, epoch=0)))["start"].tolist() == first
