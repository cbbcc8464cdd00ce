"""``climode evaluate`` on a video benchmark: SSIM, PSNR, MSE, MAE (and LPIPS) per lead frame.

The video counterpart of :mod:`climode.evaluation.runner`: the checkpoint's own
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

import math
import os
from typing import Any

import numpy as np
import torch

from climode.errors import ConfigError
from climode.metrics.image import LPIPS_WEIGHTS_ENV
from climode.metrics.streaming import OVERALL, ImageScoreAccumulator, bootstrap_ci
from climode.models.inference import deterministic_forecast

#: baselines that make sense for video (advection needs U850/V850)
VIDEO_BASELINES = ("persistence", "pysteps", "pysteps_lk", "pysteps_vet", "blend", "flow")
#: PSNR of a frame predicted exactly (infinite) is capped here so that means stay finite
PSNR_CAP_DB = 100.0
#: leads (frames) scored for a model trained with the frame_rate protocol, as the paper's 10 predictions
FRAME_RATE_LEADS = 10
#: the direction in which each score is better (for the report)
HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "mse": False, "mae": False, "lpips": False}


def evaluate_video(forecaster, config, progress: bool = True) -> dict[str, Any]:
    """Score ``forecaster`` and ``config.baselines`` on held-out windows of ``config.data``.

    Returns ``{system: {"overall": {metric: value}, "leads": {"1": {...}}}, "meta": {...}}``.
    """
    from climode.data.loader import WindowDataset, make_loader
    from climode.data.sampling import get_protocol
    from climode.data.video import open_video_dataset
    from climode.evaluation.runner import BASELINE_ALIASES, _lead_key, _window_leads, reproducibility_meta
    from climode.models.registry import get_model

    wrong = [b for b in config.baselines if b not in VIDEO_BASELINES]
    if wrong:
        raise ConfigError(f"baseline {wrong[0]!r} is for climate fields; for video choose from "
                          f"{', '.join(VIDEO_BASELINES)}")
    recipe_data = dict(forecaster.meta.get("recipe", {}).get("data", {}))
    grid = forecaster.grid.get("shape") or [recipe_data.get("frame_size") or 64] * 2
    if grid[0] != grid[1]:
        raise ConfigError(f"the checkpoint's frames are {grid[0]}x{grid[1]}; video evaluation resizes to square frames")
    options = dict(recipe_data.get("generator_args") or {}) if config.data == recipe_data.get("dataset") else {}
    videos = open_video_dataset(config.data, split=config.split, size=int(grid[0]), **options)
    if videos.channels != len(forecaster.variables):
        raise ConfigError(f"{config.data} has {videos.channels} channel(s) but the checkpoint forecasts "
                          f"{len(forecaster.variables)}; score it on data of its own kind")
    protocol_meta = dict(forecaster.meta.get("protocol", {}))
    if config.interpolate:
        protocol = interpolation_protocol(config.interpolate, int(protocol_meta.get("n_inputs", 3)))
    elif protocol_meta.get("name") == "frame_rate":  # trained for both: score the continuation
        protocol = get_protocol("extrapolation", n_inputs=int(protocol_meta.get("n_inputs", 3)),
                                n_targets=FRAME_RATE_LEADS)
    else:
        protocol = get_protocol(protocol_meta.pop("name", recipe_data.get("protocol")), **protocol_meta)
    clips = videos.to_array(max_clips=config.clips)
    dataset = WindowDataset(clips, None, protocol, forecaster.normalizer, seed=config.seed,
                            samples_per_epoch=config.windows)
    loader = make_loader(dataset, config.batch_size, epoch=0)
    lpips_weights = config.lpips_weights or os.environ.get(LPIPS_WEIGHTS_ENV) or None
    metrics = ["ssim", "psnr", "mse", "mae"] + (["lpips"] if lpips_weights else [])
    systems: dict[str, torch.nn.Module] = {"model": forecaster.model}
    if config.interpolate:  # as climode interpolate runs it, and the forward run alone
        from climode.forecast.video import TwoWayInterpolation

        systems = {"model": TwoWayInterpolation(forecaster.model), "model_forward_only": forecaster.model}
    for name in config.baselines:
        systems[name] = get_model(BASELINE_ALIASES[name], {"in_channels": len(forecaster.variables)})
    scores = {name: ImageScoreAccumulator(metrics, lpips_weights=lpips_weights, psnr_max_db=PSNR_CAP_DB)
              for name in systems}
    device = forecaster.device or torch.device("cpu")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="window")
    leads_seen: set[float] = set()
    for batch in loader:
        inputs = batch["inputs"].to(device)
        truth = batch["targets"].numpy()
        kept = batch["target_mask"].numpy() > 0
        leads = _gap_offsets(batch) if config.interpolate else _window_leads(batch)
        for name, system in systems.items():
            with torch.no_grad():
                out = deterministic_forecast(system, inputs, batch["input_times"], batch["target_times"],
                                             batch["input_mask"].to(device))
            pred = np.clip(out.frames.float().cpu().numpy(), 0.0, 1.0)
            for b in range(pred.shape[0]):
                k = np.flatnonzero(kept[b])
                scores[name].update(pred[b, k][None], truth[b, k][None], leads=leads[b, k].tolist())
        leads_seen.update(float(h) for h, m in zip(leads.ravel(), kept.ravel()) if m)
        if bar is not None:
            bar.update(len(inputs))
    if bar is not None:
        bar.close()

    out: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    for name, acc in scores.items():
        computed = acc.compute()
        leads_block = {_lead_key(k): v for k, v in computed.items() if k != OVERALL}
        out[name] = {"overall": computed.get(OVERALL, {}),
                     "leads": dict(sorted(leads_block.items(), key=lambda kv: float(kv[0])))}
        ci[name] = {m: list(bootstrap_ci(acc.per_window(m), config.bootstrap, config.seed)) for m in metrics}
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
        "checkpoint_sha256": forecaster.meta.get("sha256", ""),
        "ci95": ci,
        "bootstrap": config.bootstrap,
        "scoring": "frames clipped to [0, 1]; SSIM with an 11x11 Gaussian window (sigma 1.5) on gray frames, "
                   f"PSNR per frame (capped at {PSNR_CAP_DB:g} dB) then averaged; CIs are means over windows",
        "reproducibility": reproducibility_meta(),
    }
    return out


def interpolation_protocol(factor: int, n_inputs: int = 3):
    """Inputs every ``factor`` frames (``n_inputs`` of them), targets every frame between them."""
    from climode.data.sampling import FixedProtocol

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


def markdown_video_report(results: dict[str, Any]) -> str:
    """The paper's Tables 1-3 layout: one row per system, then SSIM and PSNR per lead frame."""
    from climode.evaluation.report import _fmt

    meta = results["meta"]
    systems = [k for k in results if k != "meta"]
    metrics = meta["metrics"]
    leads = list(results[systems[0]]["leads"])
    arrows = {m: "↑" if HIGHER_IS_BETTER[m] else "↓" for m in metrics}
    task = meta.get("task", "extrapolation")
    lead_word = "frame after the previous input" if task.startswith("interpolation") else "lead frame"
    lines = [f"# climode evaluation: {meta['model']} on {meta['data']} ({meta['split']}), {task}", "",
             f"{meta['n_windows']} windows from {meta['n_clips']} clips at {meta['frame_size']}x{meta['frame_size']}, "
             f"window seed {meta['window_seed']}; {meta['scoring']}; 95% bootstrap intervals over windows "
             f"({meta['bootstrap']} resamples).", "",
             "| system | " + " | ".join(f"{m.upper()} {arrows[m]} [95% CI]" for m in metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for s in systems:
        cells = []
        for m in metrics:
            lo, hi = meta["ci95"][s][m]
            cells.append(f"{_fmt(results[s]['overall'][m], 4)} [{_fmt(lo, 4)}, {_fmt(hi, 4)}]")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    for m in ("ssim", "psnr"):
        lines += [f"## {m.upper()} per {lead_word}", "", "| system | " + " | ".join(f"+{h}" for h in leads) + " |",
                  "|---" * (len(leads) + 1) + "|"]
        for s in systems:
            lines.append(f"| {s} | " + " | ".join(_fmt(results[s]["leads"][h].get(m, math.nan), 4) for h in leads) + " |")
        lines.append("")
    return "\n".join(lines)
