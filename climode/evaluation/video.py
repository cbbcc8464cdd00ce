"""``climode evaluate`` on a video benchmark: SSIM, PSNR, MSE, MAE (and LPIPS) per lead frame.

The video counterpart of :mod:`climode.evaluation.runner`, on the same loop: the checkpoint's own
protocol draws held-out windows with a fixed seed from the benchmark's test
split; the model and the named baselines (persistence, the pysteps
extrapolations) forecast the same windows; the scores are those of the Vid-ODE
paper's Tables 1-3: SSIM with a Gaussian window and PSNR per frame, then
averaged, plus MSE and MAE, with LPIPS (AlexNet) when local weights are given.
Frames are clipped to [0, 1] before scoring, as an image writer would.  Leads
are in frames after each window's last input; 95% intervals come from a
bootstrap over windows.  The held-out clips are decoded once into memory (the
benchmarks' test splits are small); the scores stream over batches.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from climode.data.sampling import FixedProtocol, get_protocol
from climode.data.video import open_video_dataset
from climode.errors import ConfigError
from climode.evaluation.loop import build_systems, forecast_windows, held_out_windows, window_leads
from climode.evaluation.report import reproducibility_meta
from climode.evaluation.scorers import ImageScorer
from climode.forecast.video import ChunkedContinuation, MirrorEnsemble, TwoWayInterpolation, continuation_chunk
from climode.metrics.image import LPIPS_WEIGHTS_ENV

#: baselines that make sense for video (advection needs U850/V850)
VIDEO_BASELINES = ("persistence", "pysteps", "pysteps_lk", "pysteps_vet", "blend", "flow")
#: PSNR of a frame predicted exactly (infinite) is capped here so that means stay finite
PSNR_CAP_DB = 100.0
#: leads (frames) scored for a model trained with the frame_rate protocol, as the paper's 10 predictions
FRAME_RATE_LEADS = 10


def evaluate_video(forecaster, config, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster`` and ``config.baselines`` on held-out windows of ``config.data``.

    Returns ``{system: {"overall": {metric: value}, "leads": {"1": {...}}}, "meta": {...}}``.
    """
    wrong = [b for b in config.baselines if b not in VIDEO_BASELINES]
    if wrong:
        raise ConfigError(f"baseline {wrong[0]!r} is for climate fields; for video choose from "
                          f"{', '.join(VIDEO_BASELINES)}")
    recipe_data = forecaster.meta.recipe_data
    grid = forecaster.grid.get("shape") or [recipe_data.get("frame_size") or 64] * 2
    if grid[0] != grid[1]:
        raise ConfigError(f"the checkpoint's frames are {grid[0]}x{grid[1]}; video evaluation resizes to square frames")
    options = dict(recipe_data.get("generator_args") or {}) if config.data == recipe_data.get("dataset") else {}
    videos = open_video_dataset(config.data, split=config.split, size=int(grid[0]), **options)
    if videos.channels != len(forecaster.variables):
        raise ConfigError(f"{config.data} has {videos.channels} channel(s) but the checkpoint forecasts "
                          f"{len(forecaster.variables)}; score it on data of its own kind")
    protocol_meta = dict(forecaster.meta.protocol)
    if config.interpolate:
        protocol = interpolation_protocol(config.interpolate, int(protocol_meta.get("n_inputs", 3)))
    elif protocol_meta.get("name") == "frame_rate":  # trained for both: score the continuation
        protocol = get_protocol("extrapolation", n_inputs=int(protocol_meta.get("n_inputs", 3)),
                                n_targets=FRAME_RATE_LEADS)
    else:
        protocol = get_protocol(protocol_meta.pop("name", recipe_data.get("protocol")), **protocol_meta)
    clips = videos.to_array(max_clips=config.clips)
    dataset = held_out_windows(clips, None, protocol, forecaster.normalizer, seed=config.seed, windows=config.windows)
    lpips_weights = config.lpips_weights or os.environ.get(LPIPS_WEIGHTS_ENV) or None
    metrics = ["ssim", "psnr", "mse", "mae"] + (["lpips"] if lpips_weights else [])
    model_systems = None
    mirrored = MirrorEnsemble(forecaster.model)
    if config.interpolate:
        # as climode interpolate runs it (two-way, mirror self-ensemble), as --no-mirrors runs it, the
        # plain two-way mean, and the forward run alone (the paper's model)
        model_systems = {"model": TwoWayInterpolation(mirrored), "model_no_mirrors": TwoWayInterpolation(forecaster.model)}
        if config.interpolate > 2:  # at factor 2 every query is mid-gap, where both weightings agree
            model_systems["model_two_way_mean"] = TwoWayInterpolation(forecaster.model, weighting="equal")
        model_systems["model_forward_only"] = forecaster.model
    elif (chunk := continuation_chunk(protocol_meta)) < len(dataset.window(0, 0)[2].target_offsets):
        # trained to a shorter lead than is scored: also as climode extrapolate runs it, chunk by chunk
        # (with and without --no-mirrors)
        n_inputs = len(dataset.window(0, 0)[2].input_offsets)
        model_systems = {"model": forecaster.model,
                         "model_chunked": ChunkedContinuation(mirrored, n_inputs, chunk),
                         "model_chunked_no_mirrors": ChunkedContinuation(forecaster.model, n_inputs, chunk)}
    systems = build_systems(forecaster, config.baselines, model_systems=model_systems)
    scores = {name: ImageScorer(metrics, lpips_weights=lpips_weights, psnr_max_db=PSNR_CAP_DB) for name in systems}
    leads_seen: set[float] = set()
    for batch, predictions in forecast_windows(dataset, systems, batch_size=config.batch_size, seed=config.seed,
                                               device=forecaster.device or torch.device("cpu"), progress=progress):
        truth = batch["targets"].numpy()
        kept = batch["target_mask"].numpy() > 0
        leads = _gap_offsets(batch) if config.interpolate else window_leads(batch)
        for name, frames in predictions.items():
            scores[name].update(np.clip(frames, 0.0, 1.0), truth, kept, leads)
        leads_seen.update(float(h) for h, m in zip(leads.ravel(), kept.ravel()) if m)

    out: dict[str, Any] = {name: scorer.results() for name, scorer in scores.items()}
    out["meta"] = {
        "kind": "video",
        "task": f"interpolation x{config.interpolate}" if config.interpolate else "extrapolation",
        "n_windows": len(dataset),
        "n_clips": int(clips.shape[0]),
        "data": config.data,
        "split": config.split,
        "window_seed": config.seed,
        "lead_frames": sorted(leads_seen),
        "frame_size": int(grid[0]),
        "metrics": metrics,
        "model": forecaster.name,
        "checkpoint": str(forecaster.path.name if forecaster.path else ""),
        "checkpoint_sha256": forecaster.meta.sha256 or "",
        "ci95": {name: scorer.intervals(config.bootstrap, config.seed) for name, scorer in scores.items()},
        "bootstrap": config.bootstrap,
        "scoring": "frames clipped to [0, 1]; SSIM with an 11x11 Gaussian window (sigma 1.5) on gray frames, "
                   f"PSNR per frame (capped at {PSNR_CAP_DB:g} dB) then averaged; CIs are means over windows",
        "reproducibility": reproducibility_meta(),
    }
    return out


def interpolation_protocol(factor: int, n_inputs: int = 3):
    """Inputs every ``factor`` frames (``n_inputs`` of them), targets every frame between them."""
    inputs = tuple(range(0, (max(2, n_inputs) - 1) * factor + 1, factor))
    between = tuple(k for k in range(inputs[-1]) if k % factor)
    return FixedProtocol(inputs, between, step_hours=None)


def _gap_offsets(batch) -> np.ndarray:
    """Frames [B, K] from the observed frame before each target (1 .. factor - 1 for interpolation)."""
    times = batch["input_times"].numpy()
    observed = batch["input_mask"].numpy() > 0
    targets = batch["target_times"].numpy()
    out = np.empty(targets.shape)
    for b in range(targets.shape[0]):
        t = np.sort(times[b, observed[b]])
        prev = t[np.clip(np.searchsorted(t, targets[b], side="right") - 1, 0, None)]
        out[b] = targets[b] - prev
    return np.round(out, 6)
