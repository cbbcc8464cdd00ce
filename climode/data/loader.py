"""The torch loader of window batches: one sampler and one :func:`make_loader` for training, evaluation and benchmarks.

Windows come from :class:`~climode.data.windows.WindowDataset` (what each item
is); this module only decides which items a process draws and how they are
batched.  :func:`collate_windows` pads samples with different numbers of inputs
or targets into one batch with masks; :class:`EpochSampler` yields the keys
``(epoch, index)`` of one epoch, shuffled by ``(seed, epoch)``, split between
``world`` ranks and started ``skip`` windows in, so a resumed run draws the same
batches as an uninterrupted one; :func:`make_loader` wires them into a DataLoader
whose workers open their own files (:mod:`climode.data.readers`).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from climode.data.readers import SequenceSource, forget_inherited_file_cache, from_array, hours_since
from climode.data.sampling import SHUFFLE_DOMAIN
from climode.data.windows import StaticChannels, WindowDataset, check_regular, observed_steps
from climode.errors import ConfigError, DataError

__all__ = [
    "EpochSampler",
    "SequenceSource",
    "StaticChannels",
    "WindowDataset",
    "collate_windows",
    "make_loader",
    "worker_init",
    "from_array",
    "hours_since",
    "check_regular",
    "observed_steps",
]


# --------------------------------------------------------------------------- batching
def _last_step(times: torch.Tensor) -> float:
    steps = torch.diff(times.to(torch.float64))
    steps = steps[steps > 0]
    return float(steps[-1]) if steps.numel() else 1.0


def _padded_times(times: torch.Tensor, size: int, step: float) -> torch.Tensor:
    """``times`` extended to ``size`` entries, ``step`` apart after the last real one."""
    n = times.numel()
    if n >= size:
        return times
    last = float(times[-1]) if n else 0.0
    pad = last + step * torch.arange(1, size - n + 1, dtype=torch.float64)
    return torch.cat([times.to(torch.float64), pad])


def collate_windows(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack window items into a batch, padding inputs and targets to the batch maximum.

    Padded entries have mask 0, inputs 0, targets NaN, and times that continue
    after the last real time so every row stays sorted.
    """
    if not items:
        raise ConfigError("cannot collate an empty list of windows")
    shape = tuple(items[0]["valid"].shape)
    for it in items[1:]:
        if tuple(it["valid"].shape) != shape:
            raise DataError(f"windows of one batch have different channel/grid shapes {shape} and "
                            f"{tuple(it['valid'].shape)}; batch sequences of one grid together")
    b = len(items)
    t = max(int(it["inputs"].shape[0]) for it in items)
    k = max(int(it["targets"].shape[0]) for it in items)
    out = {
        "inputs": torch.zeros((b, t, *shape), dtype=torch.float32),
        "input_times": torch.zeros((b, t), dtype=torch.float64),
        "input_mask": torch.zeros((b, t), dtype=torch.float32),
        "targets": torch.full((b, k, *shape), float("nan"), dtype=torch.float32),
        "target_times": torch.zeros((b, k), dtype=torch.float64),
        "target_mask": torch.zeros((b, k), dtype=torch.float32),
    }
    for i, it in enumerate(items):
        n, m = it["inputs"].shape[0], it["targets"].shape[0]
        out["inputs"][i, :n] = it["inputs"]
        out["input_mask"][i, :n] = it["input_mask"]
        step = _last_step(torch.cat([it["input_times"], it["target_times"]]).sort().values)
        out["input_times"][i] = _padded_times(it["input_times"], t, step)
        out["targets"][i, :m] = it["targets"]
        out["target_mask"][i, :m] = it["target_mask"]
        last_input = out["input_times"][i, n - 1 : n]
        out["target_times"][i] = _padded_times(it["target_times"], k, step) if m else (
            _padded_times(last_input, k + 1, step)[1:])
    for key in ("valid", "start", "sequence", "sample_index"):
        out[key] = torch.stack([it[key] for it in items])
    has_static = ["static" in it for it in items]
    if any(has_static):
        if not all(has_static):
            raise DataError("some windows of the batch have static channels and some do not")
        out["static"] = torch.stack([it["static"] for it in items])
    return out



class EpochSampler(Sampler):
    """Keys ``(epoch, index)`` of one epoch, optionally shuffled, for one rank, from a start position.

    ``shuffle`` permutes the ``n`` indices with a generator seeded by ``(seed, epoch)``.
    With ``world`` ranks the epoch's order is padded with its first windows to a
    multiple of ``world`` (as torch's ``DistributedSampler``), so every rank gets
    ``per_rank(n, world)`` windows and the same number of batches; rank ``rank``
    takes every ``world``-th of them, from its ``skip``-th on.  Passing the epoch
    with each key keeps the epoch effective even in persistent workers.

    With ``dataset``, each iteration first moves to ``dataset.epoch`` when it
    changed (``dataset.set_epoch``); otherwise :meth:`set_epoch` moves it.
    """

    def __init__(self, n: int, epoch: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1, skip: int = 0,
                 *, dataset: WindowDataset | None = None):
        if not 0 <= rank < world:
            raise ConfigError(f"rank {rank} is outside a world of {world} processes")
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.dataset = dataset
        self.set_epoch(epoch, skip)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Draw ``epoch``'s keys from position ``skip`` on (one DataLoader and its workers serve every epoch)."""
        order = np.arange(self.n)
        if self.shuffle:
            seq = np.random.SeedSequence(self.seed, spawn_key=(SHUFFLE_DOMAIN, epoch))
            rng = np.random.Generator(np.random.PCG64(seq))
            order = rng.permutation(self.n)
        total = self.per_rank(self.n, self.world) * self.world
        if total > self.n:
            order = np.concatenate([order, np.resize(order, total - self.n)])
        self.epoch = epoch
        self.keys = [(epoch, int(i)) for i in order[self.rank :: self.world]][skip:]

    @staticmethod
    def per_rank(n: int, world: int = 1) -> int:
        """Windows each of ``world`` ranks draws from an epoch of ``n``."""
        return math.ceil(n / world)

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.dataset is not None and self.dataset.epoch != self.epoch:
            self.set_epoch(self.dataset.epoch)
        return iter(self.keys)


def worker_init(worker_id: int) -> None:
    """DataLoader worker start-up: one torch thread, and file handles of this process only."""
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    dataset = getattr(info, "dataset", None)
    if isinstance(dataset, WindowDataset):
        dataset.reopen()
    else:
        forget_inherited_file_cache()


def make_loader(
    dataset: WindowDataset,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    *,
    epoch: int | None = None,
    rank: int = 0,
    world: int = 1,
    skip: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """A DataLoader of padded window batches (see :func:`collate_windows`) drawn by an :class:`EpochSampler`.

    ``epoch``: the epoch to draw, moved on with ``loader.sampler.set_epoch(epoch, skip)``;
    ``None`` follows the dataset's (``dataset.set_epoch(e)`` before iterating gives
    epoch ``e``'s windows).  ``rank`` of ``world`` processes draws its share of the
    epoch from its ``skip``-th window on (see :class:`EpochSampler`).  Keeps
    partial batches unless ``drop_last``.  Works with ``num_workers > 0`` (fork,
    forkserver or spawn): each worker uses one torch thread and opens its own files.
    """
    if not isinstance(dataset, WindowDataset):
        raise ConfigError(f"make_loader needs a WindowDataset, got {type(dataset).__name__}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if int(num_workers) != num_workers or num_workers < 0:
        raise ConfigError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if int(skip) != skip or skip < 0:
        raise ConfigError(f"skip must be a non-negative integer, got {skip!r}")
    follow = dataset if epoch is None else None
    sampler = EpochSampler(len(dataset), dataset.epoch if epoch is None else int(epoch), int(seed), bool(shuffle),
                           rank=int(rank), world=int(world), skip=int(skip), dataset=follow)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["worker_init_fn"] = worker_init
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
        if multiprocessing_context is not None:
            kwargs["multiprocessing_context"] = multiprocessing_context
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        sampler=sampler,
        num_workers=int(num_workers),
        collate_fn=collate_windows,
        drop_last=drop_last,
        pin_memory=pin_memory,
        **kwargs,
    )
