"""Bouncing balls: the synthetic video benchmark of Sutskever et al. (2009), as used by Vid-ODE.

Equal balls (equal radius and mass) move in a square box with elastic
collisions between each other and with the walls; frames are anti-aliased
discs on a black background, values in [0, 1].  The paper's setting is 3
balls in 32 x 32 frames, 10 inputs and 10 predictions.

Physics (in pixel units, one time unit = one frame):

* each frame is integrated in ``substeps`` sub-steps of straight-line motion;
* a wall reflects the position into the box and flips the normal velocity;
* two balls closer than one diameter that approach each other exchange the
  velocity components along the line of their centres (equal masses), which
  conserves momentum and kinetic energy exactly.

Every sequence ``i`` draws from its own stream ``np.random.default_rng([seed, i])``,
so the first ``k`` sequences of ``generate_balls(n, seed=s)`` equal
``generate_balls(k, seed=s)`` and one sequence can be generated on its own
(``start=i``), which is how :mod:`climode.data.video` reads them lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from climode.errors import ConfigError

__all__ = ["BallsState", "generate_balls", "render_balls", "render_colored", "simulate_balls"]


@dataclass(frozen=True)
class BallsState:
    """Ground truth of generated sequences: centres and velocities at every frame (pixels, pixels/frame)."""

    positions: np.ndarray  # [N, T, B, 2] (y, x), pixel centres at i + 0.5
    velocities: np.ndarray  # [N, T, B, 2] (vy, vx)
    radius: float
    size: int


def _check(n_sequences: int, n_frames: int, size: int, n_balls: int, radius: float, channels: int, substeps: int) -> None:
    if n_sequences < 0 or n_frames < 1 or size < 4 or n_balls < 1 or substeps < 1:
        raise ConfigError(
            f"generate_balls: need n_sequences >= 0, n_frames >= 1, size >= 4, n_balls >= 1, substeps >= 1; "
            f"got {n_sequences}, {n_frames}, {size}, {n_balls}, {substeps}"
        )
    if not 0 < radius < size / 2:
        raise ConfigError(f"generate_balls: radius {radius} must be in (0, size/2 = {size / 2})")
    if channels not in (1, 3):
        raise ConfigError(f"generate_balls: channels must be 1 or 3, got {channels}")


def _initial(rng: np.random.Generator, n_balls: int, size: int, radius: float, speed: float):
    pos = np.empty((n_balls, 2))
    for b in range(n_balls):
        for _ in range(10_000):
            cand = rng.uniform(radius, size - radius, size=2)
            if b == 0 or np.min(np.linalg.norm(pos[:b] - cand, axis=1)) > 2 * radius + 1e-6:
                pos[b] = cand
                break
        else:
            raise ConfigError(
                f"generate_balls: cannot place {n_balls} balls of radius {radius} without overlap in a {size} x {size} box; "
                "use fewer or smaller balls"
            )
    theta = rng.uniform(0.0, 2 * np.pi, size=n_balls)
    vel = speed * np.stack([np.sin(theta), np.cos(theta)], axis=1)
    return pos, vel


def simulate_balls(pos: np.ndarray, vel: np.ndarray, n_frames: int, size: int, radius: float, substeps: int = 10):
    """Integrate equal balls from centres ``[B, 2]`` and velocities ``[B, 2]``; returns both at every frame ``[T, B, 2]``."""
    pos = np.asarray(pos, dtype=np.float64)
    vel = np.asarray(vel, dtype=np.float64)
    n_balls = pos.shape[0]
    positions = np.empty((n_frames, n_balls, 2))
    velocities = np.empty((n_frames, n_balls, 2))
    dt = 1.0 / substeps
    lo, hi = radius, size - radius
    for t in range(n_frames):
        positions[t], velocities[t] = pos, vel
        if t == n_frames - 1:
            break
        for _ in range(substeps):
            pos = pos + dt * vel
            # walls: reflect the position back into [lo, hi] and point the velocity inwards
            below, above = pos < lo, pos > hi
            pos = np.where(below, 2 * lo - pos, pos)
            pos = np.where(above, 2 * hi - pos, pos)
            vel = np.where(below, np.abs(vel), vel)
            vel = np.where(above, -np.abs(vel), vel)
            # ball-ball: elastic, equal masses, only when approaching
            for i in range(n_balls):
                for j in range(i + 1, n_balls):
                    d = pos[i] - pos[j]
                    dist = float(np.hypot(d[0], d[1]))
                    if dist >= 2 * radius or dist == 0.0:
                        continue
                    n = d / dist
                    approach = float(np.dot(vel[i] - vel[j], n))
                    if approach < 0:
                        vel = vel.copy()
                        vel[i] = vel[i] - approach * n
                        vel[j] = vel[j] + approach * n
    return positions, velocities


def render_balls(positions: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Anti-aliased discs ``[T, H, W]`` (float32, in [0, 1]) from centres ``[T, B, 2]`` (y, x)."""
    centres = np.arange(size) + 0.5
    yy = centres[None, :, None, None]
    xx = centres[None, None, :, None]
    py = positions[:, None, None, :, 0]
    px = positions[:, None, None, :, 1]
    dist = np.sqrt((yy - py) ** 2 + (xx - px) ** 2)  # [T, H, W, B]
    cover = np.clip(radius + 0.5 - dist, 0.0, 1.0).sum(axis=-1)
    return np.clip(cover, 0.0, 1.0).astype(np.float32)


def render_colored(positions: np.ndarray, size: int, radius: float, colors: np.ndarray,
                   background: np.ndarray) -> np.ndarray:
    """RGB frames ``[T, 3, H, W]``: discs of ``colors`` ``[B, 3]`` laid in order over ``background`` ``[3, H, W]``."""
    centres = np.arange(size) + 0.5
    yy = centres[None, :, None]
    xx = centres[None, None, :]
    out = np.broadcast_to(background, (positions.shape[0], *background.shape)).astype(np.float32).copy()
    for b in range(positions.shape[1]):
        dist = np.sqrt((yy - positions[:, b, 0, None, None]) ** 2 + (xx - positions[:, b, 1, None, None]) ** 2)
        cover = np.clip(radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)[:, None]  # [T, 1, H, W]
        out = out * (1.0 - cover) + colors[b].astype(np.float32)[None, :, None, None] * cover
    return out


def _colored_scene(rng: np.random.Generator, n_balls: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ball colours ``[B, 3]`` and a background ``[3, H, W]``: a dark linear gradient between two colours."""
    colors = rng.uniform(0.35, 1.0, size=(n_balls, 3))
    ends = rng.uniform(0.0, 0.35, size=(2, 3))
    angle = rng.uniform(0.0, 2 * np.pi)
    c = (np.arange(size) + 0.5) / size - 0.5
    ramp = np.clip(0.5 + np.cos(angle) * c[None, :] + np.sin(angle) * c[:, None], 0.0, 1.0)  # [H, W]
    background = ends[0][:, None, None] * (1 - ramp) + ends[1][:, None, None] * ramp
    return colors, background


def generate_balls(
    n_sequences: int,
    n_frames: int = 20,
    size: int = 32,
    n_balls: int = 3,
    seed: int = 0,
    *,
    radius: float | None = None,
    speed: float | None = None,
    channels: int = 1,
    substeps: int = 10,
    colored: bool = False,
    start: int = 0,
    return_state: bool = False,
):
    """Bouncing-balls videos ``[N, T, C, H, W]`` (float32 in [0, 1]), deterministic from ``seed``.

    ``radius`` defaults to ``0.12 * size`` (3.84 px at 32, as in Sutskever's
    generator: radius 1.2 in a box of 10), ``speed`` to ``0.05 * size`` pixels
    per frame (every ball starts at this speed in a random direction).
    ``channels=3`` repeats the grey frame on three channels (RGB models);
    ``colored=True`` (needs ``channels=3``) draws each ball in its own colour over
    a dark two-colour gradient background instead (drawn after the motion, so the
    trajectories are those of the grey sequences).
    ``start`` is the index of the first sequence.  With ``return_state`` the
    result is ``(frames, BallsState)``.
    """
    radius = 0.12 * size if radius is None else float(radius)
    speed = 0.05 * size if speed is None else float(speed)
    _check(n_sequences, n_frames, size, n_balls, radius, channels, substeps)
    if colored and channels != 3:
        raise ConfigError("generate_balls: colored=True needs channels=3")
    frames = np.empty((n_sequences, n_frames, channels, size, size), dtype=np.float32)
    positions = np.empty((n_sequences, n_frames, n_balls, 2))
    velocities = np.empty_like(positions)
    for k in range(n_sequences):
        rng = np.random.default_rng([int(seed), int(start) + k])
        pos, vel = _initial(rng, n_balls, size, radius, speed)
        positions[k], velocities[k] = simulate_balls(pos, vel, n_frames, size, radius, substeps)
        if colored:
            frames[k] = render_colored(positions[k], size, radius, *_colored_scene(rng, n_balls, size))
        else:
            frames[k] = render_balls(positions[k], size, radius)[:, None]
    if return_state:
        return frames, BallsState(positions=positions, velocities=velocities, radius=radius, size=size)
    return frames
