"""Time bookkeeping of Vid-ODE: which latent states are needed when, per sample.

Conventions (documented in docs/model.md):

- Each sample has its own times.  Its origin t_1 is its first observation; the
  reversed encoder runs from its last observation back to t_1 and ends with z0
  at t_1.  ODE functions are autonomous, so per-sample times are handled by
  shifting each sample to its own origin and solving once over the union of
  the shifted times (the latent-ODE convention with a change of variables).
- The decoder ODE is solved once, from t_1, over the union of every time the
  recursion needs: the anchors and the internal grid a + k*step.
- The flow/difference/mask recursion for a query time s starts from the anchor
  a = the last observation at or before s and steps on the fixed grid a + k*step.
  A query at the anchor is the observation itself; a query on the grid is the
  chain's frame there; a query off the grid, a fraction f of the way from grid
  point n to n+1, is the fraction f of step n+1 applied to frame n (flow and
  difference scaled by f, see :func:`climode.models.decoder.partial_step`).
  So the frame at s depends on s and the observations only, never on the other
  requested times, and it is continuous in s.
- Reconstruction training (``reconstruct_observed``, set by the trainer when the
  targets are the observed frames) anchors a query at a later observed time on
  the observation before it, so the objective cannot be met by copying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from climode.errors import ModelInputError

#: time resolution (in model time units) under which two times count as equal
TIME_EPS = 1e-6


@dataclass
class EncoderPlan:
    """Order of the encoder's ODE solves and ConvGRU updates for a batch."""

    sigma: np.ndarray  # [J] ascending encoder-time points (model units), sigma[0] = 0
    updates: list[tuple[np.ndarray, np.ndarray]]  # per point: (sample, input index) observed there
    finish: list[np.ndarray]  # per point: samples whose encoding ends there
    origin: np.ndarray  # [B] physical time of each sample's z0


@dataclass
class DecoderPlan:
    """Latent times and the flow/difference/mask recursion for a batch of queries."""

    tau: np.ndarray  # [U] union of decoder times (model units, relative to each origin), contains 0
    row_sample: np.ndarray  # [R] sample of each recursion chain (rows sorted by length, longest first)
    row_anchor: np.ndarray  # [R] input index of the chain's anchor frame
    row_length: np.ndarray  # [R] number of grid steps of the chain
    row_latent: np.ndarray  # [R, N+1] tau index of the chain's grid point k (-1 past its end)
    active: np.ndarray  # [N+1] rows still stepping at step k (a prefix of the rows)
    query_row: np.ndarray  # [B, K] chain of each query
    query_start: np.ndarray  # [B, K] grid step the query's last step starts from
    query_on_grid: np.ndarray  # [B, K] True: the query is chain step query_start itself
    query_prev_time: np.ndarray  # [B, K] physical time of that point
    query_fraction: np.ndarray  # [B, K] 1 on the grid, 0 at the anchor, else the fraction of step query_start + 1

    @property
    def n_steps(self) -> int:
        return len(self.active) - 1


def observed_times(times: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Validate per-sample observation times and return each sample's observed indices."""
    out = []
    for b in range(times.shape[0]):
        idx = np.flatnonzero(mask[b] > 0)
        if idx.size == 0:
            raise ModelInputError(f"sample {b} has no observed input frame (its mask is all 0)")
        t = times[b, idx]
        if not np.all(np.isfinite(t)):
            raise ModelInputError(f"sample {b} has non-finite observation times")
        if np.any(np.diff(t) <= 0):
            raise ModelInputError(
                f"observation times of sample {b} are not strictly increasing: {t.tolist()}; "
                "sort the frames by time and drop duplicates"
            )
        out.append(idx)
    return out


def union_times(values: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted union of float arrays (equal within TIME_EPS) and each array's indices into it."""
    flat = np.concatenate(values) if values else np.zeros(0)
    keys = np.round(flat / TIME_EPS).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    union = uniq.astype(np.float64) * TIME_EPS
    out, start = [], 0
    for v in values:
        out.append(inverse[start : start + len(v)])
        start += len(v)
    return union, out


def plan_encoder(times: np.ndarray, mask: np.ndarray, time_scale: float, reverse: bool) -> EncoderPlan:
    """Plan the ODE-ConvGRU encoder over per-sample times [B, T] with masks [B, T]."""
    obs = observed_times(times, mask)
    start = np.array([times[b, idx[-1] if reverse else idx[0]] for b, idx in enumerate(obs)])
    origin = np.array([times[b, idx[0] if reverse else idx[-1]] for b, idx in enumerate(obs)])
    sign = -1.0 if reverse else 1.0
    rel = [sign * (times[b, idx] - start[b]) / time_scale for b, idx in enumerate(obs)]
    sigma, where = union_times(rel)
    updates: list[tuple[list[int], list[int]]] = [([], []) for _ in sigma]
    finish: list[list[int]] = [[] for _ in sigma]
    for b, (idx, pos) in enumerate(zip(obs, where)):
        for i, p in zip(idx, pos):
            updates[p][0].append(b)
            updates[p][1].append(int(i))
        finish[pos.max()].append(b)
    return EncoderPlan(
        sigma=sigma,
        updates=[(np.array(s, dtype=np.int64), np.array(i, dtype=np.int64)) for s, i in updates],
        finish=[np.array(f, dtype=np.int64) for f in finish],
        origin=origin,
    )


def plan_decoder(
    times: np.ndarray,
    mask: np.ndarray,
    query_times: np.ndarray,
    origin: np.ndarray,
    step: float,
    time_scale: float,
    *,
    partial_steps: bool = False,
    reconstruct_observed: bool = False,
) -> DecoderPlan:
    """Plan the decoder solve and the recursion for queries [B, K] (physical times).

    With ``partial_steps`` a query off the grid extends its chain by the step it
    lies in (Vid-ODE takes a fraction of that step); without, chains end at the
    grid point before each query (models that step onto the query themselves).
    With ``reconstruct_observed`` a query at an observed time after the first is
    planned from the previous observation (reconstruction training); without, it
    is that observation.
    """
    obs = observed_times(times, mask)
    b_count, k_count = query_times.shape
    if not np.all(np.isfinite(query_times)):
        raise ModelInputError("query times must be finite")
    eps = TIME_EPS * time_scale
    rows: dict[tuple[int, int], int] = {}  # (sample, anchor input index) -> chain length
    q_key = np.zeros((b_count, k_count, 2), dtype=np.int64)
    q_start = np.zeros((b_count, k_count), dtype=np.int64)
    q_on_grid = np.zeros((b_count, k_count), dtype=bool)
    q_fraction = np.ones((b_count, k_count))
    for b in range(b_count):
        t_obs = times[b, obs[b]]
        for k in range(k_count):
            s = query_times[b, k]
            j = np.searchsorted(t_obs, s + eps, side="right") - 1
            if reconstruct_observed and j > 0 and abs(s - t_obs[j]) <= eps:
                j -= 1  # an observed time is reconstructed from the observation before it, never from itself
            if j < 0:
                raise ModelInputError(
                    f"query time {s:g} of sample {b} is before its first observation {t_obs[0]:g}; "
                    "climode predicts at or after the first observed time"
                )
            a = t_obs[j]
            n = int(np.floor((s - a) / step + 1e-6))
            on_grid = n >= 1 and abs(s - (a + n * step)) <= eps
            at_anchor = abs(s - a) <= eps
            if not on_grid:
                q_fraction[b, k] = 0.0 if at_anchor else min(max((s - a - n * step) / step, 0.0), 1.0)
            anchor = int(obs[b][j])
            length = n + 1 if partial_steps and not (on_grid or at_anchor) else n
            rows[(b, anchor)] = max(rows.get((b, anchor), 0), length)
            q_key[b, k] = (b, anchor)
            q_start[b, k] = n
            q_on_grid[b, k] = on_grid
    # rows sorted by chain length, longest first, so active rows form a prefix
    row_list = sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))
    row_index = {key: r for r, (key, _) in enumerate(row_list)}
    n_max = max((length for _, length in row_list), default=0)
    # collect every physical time whose latent is needed, relative to the sample's origin
    needed: list[np.ndarray] = []
    row_times = []
    for (b, anchor), length in row_list:
        grid = times[b, anchor] + step * np.arange(length + 1)
        row_times.append(grid)
        needed.append((grid - origin[b]) / time_scale)
    prev_time = np.zeros((b_count, k_count))
    for b in range(b_count):
        for k in range(k_count):
            b_, anchor = q_key[b, k]
            n = q_start[b, k]
            grid_prev = n - 1 if q_on_grid[b, k] else n
            prev_time[b, k] = times[b, anchor] + step * grid_prev
    needed.append(np.zeros(1))
    tau, where = union_times(needed)
    row_latent = np.full((len(row_list), n_max + 1), -1, dtype=np.int64)
    for r, pos in enumerate(where[: len(row_list)]):
        row_latent[r, : len(pos)] = pos
    query_row = np.zeros((b_count, k_count), dtype=np.int64)
    for b in range(b_count):
        for k in range(k_count):
            query_row[b, k] = row_index[(int(q_key[b, k, 0]), int(q_key[b, k, 1]))]
    lengths = np.array([length for _, length in row_list], dtype=np.int64)
    active = np.array([(lengths >= k).sum() for k in range(n_max + 1)], dtype=np.int64)
    return DecoderPlan(
        tau=tau,
        row_sample=np.array([b for (b, _), _ in row_list], dtype=np.int64),
        row_anchor=np.array([a for (_, a), _ in row_list], dtype=np.int64),
        row_length=lengths,
        row_latent=row_latent,
        active=active,
        query_row=query_row,
        query_start=q_start,
        query_on_grid=q_on_grid,
        query_prev_time=prev_time,
        query_fraction=q_fraction,
    )
