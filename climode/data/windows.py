"""A torch Dataset of observation windows over sequences of frames (climate fields or video).

:class:`WindowDataset` cuts windows drawn by a protocol (:mod:`climode.data.sampling`)
out of one or more sequences (seasons, videos; windows never cross from one
sequence into another, see :mod:`climode.data.readers`) and reads only the
frames each window needs.  Batching and the DataLoader are in :mod:`climode.data.loader`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from climode.data.normalize import Normalizer
from climode.data.readers import (
    FileSequence,
    FrameSequence,
    forget_inherited_file_cache,
    from_array,
    open_sequence,
)
from climode.data.sampling import WindowProtocol, WindowSpec, window_rng
from climode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["StaticChannels", "WindowDataset", "check_regular", "observed_steps"]


# --------------------------------------------------------------------------- time axes
def check_regular(hours: np.ndarray, step_hours: float | None, name: str, times: Any = None) -> float:
    """Check ``hours`` is strictly increasing with a constant step; return the step.

    ``step_hours`` is the step the protocol needs (``None``: any constant step).
    """
    if hours.size < 2:
        return float(step_hours or 1.0)
    diffs = np.diff(hours)
    label = (lambda i: str(times[i])) if times is not None else (lambda i: f"index {i}")
    bad = np.flatnonzero(~(diffs > 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{name}: time is not strictly increasing at {label(i + 1)}; sort it and drop duplicates")
    expected = float(step_hours) if step_hours is not None else float(diffs[0])
    off = np.flatnonzero(np.abs(diffs - expected) > 1e-6 * max(1.0, expected))
    if off.size:
        i = int(off[0])
        raise DataError(
            f"{name}: time axis is not a regular {expected:g} h grid (step of {diffs[i]:g} h after "
            f"{label(i)}); the protocol needs {expected:g} h steps: fill missing steps with NaN frames "
            "(e.g. ds.reindex(time=...)) or resample"
        )
    return expected


def observed_steps(finite: np.ndarray) -> np.ndarray:
    """Which steps of a window are observed: ``finite`` [T, C, H, W] -> bool [T].

    A step is observed (mask 1) only when every channel has at least one finite
    cell; a step where any one variable is entirely missing is unobserved for
    that sample (mask 0), as in the forecaster.  Cells missing inside an observed
    step stay missing cell by cell (``valid``, and NaN targets kept out of the loss).
    """
    if finite.ndim < 2:
        raise DataError(f"observed_steps needs [time, channel, ...] flags, got shape {finite.shape}")
    return finite.reshape(finite.shape[0], finite.shape[1], -1).any(axis=2).all(axis=1)



# --------------------------------------------------------------------------- static channels
@dataclass(frozen=True)
class StaticChannels:
    """Time-invariant input channels: cos(latitude) and optionally a land-sea mask on the same grid."""

    cos_lat: bool = True
    land_sea_mask: xr.DataArray | None = None

    def build(self, seq: FrameSequence, name: str) -> np.ndarray:
        layers = []
        h, w = seq.grid
        if self.cos_lat:
            if seq.lat is None:
                raise DataError(f"{name} has no 'lat' coordinate for the cos-latitude static channel; "
                                "pass static=StaticChannels(cos_lat=False, ...) or add one")
            layers.append(np.broadcast_to(np.cos(np.deg2rad(seq.lat))[:, None], (h, w)))
        if self.land_sea_mask is not None:
            lsm = self.land_sea_mask
            if lsm.ndim != 2 or lsm.shape != (h, w):
                raise DataError(f"land_sea_mask has shape {lsm.shape} but {name} is on a {h} x {w} grid")
            for d in lsm.dims:
                if d in lsm.coords and str(d) in seq.coords:
                    if not np.allclose(np.asarray(lsm[d].values, dtype=float), np.asarray(seq.coords[str(d)], dtype=float)):
                        raise DataError(f"land_sea_mask {d!r} coordinates differ from those of {name}; regrid it")
            layers.append(np.nan_to_num(np.asarray(lsm.values, dtype=np.float64)))
        if not layers:
            raise ConfigError("StaticChannels has no channel enabled")
        return np.stack(layers).astype(np.float32)


# --------------------------------------------------------------------------- dataset
class WindowDataset(Dataset):
    """Windows drawn by ``protocol`` from one or more sequences, as normalised tensors.

    ``datasets``: an xarray Dataset (time, lat, lon), a DataArray (time, channel,
    y, x), a path / glob / :class:`~climode.data.readers.SequenceSource`, a numpy array ``[N, T, C, H, W]``,
    or a list of these (each one a separate sequence).  ``variables``: channels
    to use, in order (default: all).  ``normalizer``: statistics (default: identity).

    With ``samples_per_epoch=None`` item ``i`` is the ``i``-th window start (every
    ``stride`` frames of every sequence); otherwise each item draws a sequence and
    start at random.  Either way item ``i`` of epoch ``e`` depends only on
    ``(seed, e, i)``.  Items may also be indexed by ``(epoch, i)``.
    """

    def __init__(
        self,
        datasets: Any,
        variables: Sequence[str] | None = None,
        protocol: WindowProtocol | None = None,
        normalizer: Normalizer | None = None,
        seed: int = 0,
        samples_per_epoch: int | None = None,
        static: StaticChannels | bool | xr.DataArray | None = None,
        *,
        stride: int = 1,
        channel_dim: str = "channel",
        mirror_equator: bool = False,
    ):
        if protocol is None or not isinstance(protocol, WindowProtocol):
            raise ConfigError(f"protocol must be a climode.data.sampling protocol, got {protocol!r}")
        if int(stride) != stride or stride < 1:
            raise ConfigError(f"stride must be a positive integer, got {stride!r}")
        if samples_per_epoch is not None and (int(samples_per_epoch) != samples_per_epoch or samples_per_epoch < 1):
            raise ConfigError(f"samples_per_epoch must be a positive integer or None, got {samples_per_epoch!r}")
        window_rng(seed, 0, 0)  # validates the seed
        self.protocol = protocol
        self.seed = int(seed)
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self.stride = int(stride)
        self.epoch = 0
        self._sequences = [open_sequence(item, variables, channel_dim, f"sequence {i}")
                           for i, item in enumerate(self._items(datasets))]
        self.channels = self._sequences[0].channels
        for i, seq in enumerate(self._sequences[1:], 1):
            if seq.channels != self.channels:
                raise DataError(f"sequence {i} has channels {list(seq.channels)}, sequence 0 has {list(self.channels)}")
        self.normalizer = Normalizer.identity(self.channels) if normalizer is None else normalizer.select(self.channels)
        self.step_hours: list[float] = []
        for i, seq in enumerate(self._sequences):
            self.step_hours.append(check_regular(seq.hours, protocol.step_hours, f"sequence {i}", seq.times))
        need = protocol.max_length
        self._starts = np.array(
            [max(0, (seq.n_time - need) // self.stride + 1) if seq.n_time >= need else 0 for seq in self._sequences],
            dtype=np.int64,
        )
        if self._starts.sum() == 0:
            longest = max(seq.n_time for seq in self._sequences)
            raise DataError(f"the protocol needs windows of {need} frames but the longest sequence has {longest}; "
                            "use longer sequences or a shorter protocol")
        short = [i for i, n in enumerate(self._starts) if n == 0]
        if short:
            log.warning("sequences %s are shorter than the %d frames a window needs: they give no windows",
                        short, need)
        self._cum = np.concatenate([[0], np.cumsum(self._starts)])
        if static is True:
            static = StaticChannels()
        elif isinstance(static, xr.DataArray):
            static = StaticChannels(land_sea_mask=static)
        elif static is False:
            static = None
        self.static = static
        self._static = [None if static is None else static.build(seq, f"sequence {i}")
                        for i, seq in enumerate(self._sequences)]
        self.mirror_equator = bool(mirror_equator)
        self._negate = np.array([is_meridional_wind(c) for c in self.channels], dtype=bool)
        if self.mirror_equator:
            for i, seq in enumerate(self._sequences):
                check_mirror_symmetric(seq, f"sequence {i}")
        self._pid = os.getpid()
        log.info("WindowDataset: %d sequences, %d windows, channels %s, %s",
                 len(self._sequences), self.n_windows, list(self.channels), protocol)

    @staticmethod
    def _items(datasets: Any) -> list[Any]:
        if isinstance(datasets, np.ndarray):
            return list(from_array(datasets))
        items = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
        if not items:
            raise DataError("no datasets given")
        return items

    # -- indexing ------------------------------------------------------------
    @property
    def n_windows(self) -> int:
        """Number of distinct window starts over all sequences."""
        return int(self._cum[-1])

    def __len__(self) -> int:
        return self.samples_per_epoch if self.samples_per_epoch is not None else self.n_windows

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s random windows (deterministic in ``seed`` and ``epoch``)."""
        if int(epoch) != epoch or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def window(self, index: int, epoch: int | None = None) -> tuple[int, int, WindowSpec]:
        """``(sequence, start frame, spec)`` of item ``index`` in ``epoch`` (default: the current one)."""
        rng = window_rng(self.seed, self.epoch if epoch is None else epoch, index)
        flat = index if self.samples_per_epoch is None else int(rng.integers(self.n_windows))
        seq = int(np.searchsorted(self._cum, flat, side="right") - 1)
        start = int(flat - self._cum[seq]) * self.stride
        return seq, start, self.protocol.sample(rng)

    def reopen(self) -> None:
        """Drop file handles inherited from another process (called in each worker)."""
        forget_inherited_file_cache()
        for seq in self._sequences:
            seq.reopen()
        self._pid = os.getpid()

    def close(self) -> None:
        """Close the files this process opened."""
        for seq in self._sequences:
            if isinstance(seq, FileSequence):
                seq.close()

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"window {index} out of range for {n} windows")
        if self._pid != os.getpid():
            self.reopen()
        seq_id, start, spec = self.window(index, epoch)
        return self._load(seq_id, start, spec, index)

    def _load(self, seq_id: int, start: int, spec: WindowSpec, index: int) -> dict[str, torch.Tensor]:
        seq = self._sequences[seq_id]
        in_off = np.asarray(spec.input_offsets, dtype=np.int64)
        tg_off = np.asarray(spec.target_offsets, dtype=np.int64)
        offsets = np.union1d(in_off, tg_off)
        raw = seq.read(start + offsets)
        frames = self.normalizer.normalize(raw, channel_axis=1).astype(np.float32, copy=False)
        inputs = frames[np.searchsorted(offsets, in_off)]
        targets = frames[np.searchsorted(offsets, tg_off)]
        finite = np.isfinite(inputs)
        input_mask = observed_steps(finite)
        if not input_mask.any():
            raise DataError(
                f"window at frame {start} of sequence {seq_id} ({seq.times[start]}) has no input step with "
                f"every variable of {list(self.channels)} present; drop all-missing periods from the data"
            )
        valid = finite[input_mask].any(axis=0)
        inputs = np.where(finite, inputs, np.float32(0.0))
        target_mask = observed_steps(np.isfinite(targets))
        hours = seq.hours[start + offsets]
        origin = hours[np.searchsorted(offsets, in_off[input_mask][0])]
        item = {
            "inputs": torch.from_numpy(np.ascontiguousarray(inputs)),
            "input_times": torch.from_numpy(hours[np.searchsorted(offsets, in_off)] - origin),
            "input_mask": torch.from_numpy(input_mask.astype(np.float32)),
            "targets": torch.from_numpy(np.ascontiguousarray(targets)),
            "target_times": torch.from_numpy(hours[np.searchsorted(offsets, tg_off)] - origin),
            "target_mask": torch.from_numpy(target_mask.astype(np.float32)),
            "valid": torch.from_numpy(valid.astype(np.float32)),
            "start": torch.tensor(start, dtype=torch.int64),
            "sequence": torch.tensor(seq_id, dtype=torch.int64),
            "sample_index": torch.tensor(index, dtype=torch.int64),
        }
        if self._static[seq_id] is not None:
            item["static"] = torch.from_numpy(self._static[seq_id])
        if self.mirror_equator and mirror_draw(self.seed, self.epoch, index):
            item = mirror_item(item, self._negate)
        return item


# --------------------------------------------------------------------------- mirror augmentation
#: meridional wind components by name (V850, VBOT, v, v850, vas): the sign flips under the mirror
_MERIDIONAL = ("V", "VBOT", "v", "vas")


def is_meridional_wind(name: str) -> bool:
    """True for a northward wind component (``V850``, ``VBOT``, ``v``, ``v850``, ``vas``)."""
    stripped = name.rstrip("0123456789")
    return stripped in _MERIDIONAL


def check_mirror_symmetric(seq: FrameSequence, name: str) -> None:
    """The equator mirror maps rows onto rows: latitudes symmetric about 0, ascending or descending."""
    lat = getattr(seq, "lat", None)
    if lat is None:
        raise ConfigError(f"{name} has no latitude coordinate: the equator mirror needs one; "
                          "set data.mirror_equator: false")
    lat = np.asarray(lat, dtype=np.float64)
    if lat.size < 2 or not np.allclose(lat, -lat[::-1], atol=1e-6 * max(1.0, float(np.abs(lat).max()))):
        raise ConfigError(f"{name} has latitudes {lat.min():g} to {lat.max():g} that are not symmetric about the "
                          "equator, so the mirror would not map the grid onto itself; train on a global or "
                          "equator-symmetric region, or set data.mirror_equator: false")


def mirror_draw(seed: int, epoch: int, index: int) -> bool:
    """Whether window ``index`` of ``epoch`` is mirrored: a fair coin, a pure function of the three."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(0x4D1, int(epoch),
                                                                                            int(index)))))
    return bool(rng.random() < 0.5)


def mirror_item(item: dict[str, torch.Tensor], negate: np.ndarray) -> dict[str, torch.Tensor]:
    """A window reflected about the equator: rows reversed, the meridional wind's sign flipped.

    A Northern Hemisphere state becomes a valid Southern Hemisphere one (the
    Coriolis parameter changes sign with latitude, so a counter-clockwise low
    becomes a clockwise one and a poleward drift stays poleward).
    """
    out = dict(item)
    sign = torch.from_numpy(np.where(negate, -1.0, 1.0).astype(np.float32))[:, None, None]
    for key in ("inputs", "targets"):
        out[key] = torch.flip(item[key], dims=(-2,)) * sign
    for key in ("valid", "static"):
        if key in item:
            out[key] = torch.flip(item[key], dims=(-2,))
    return out

