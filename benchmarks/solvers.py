"""Cost and accuracy of decoder solver choices on a trained model.

Evaluates the bundled model (or ``--checkpoint``) on the same held-out windows
with its decoder ODE solved by each solver in turn, and prints one JSON line per
solver: wall time per window (whole evaluation, and the model's forward alone),
decoder function evaluations per batch of 8 (one solve serves the batch), the
latitude-weighted RMSE of each variable against the truth (skill), and the
solver's own error: the RMSE and maximum difference, in physical units, of its
forecasts from those of a tight reference solve (dopri5, rtol 1e-7, atol 1e-9)
of the same model on the same windows.

    python benchmarks/solvers.py [--windows 48] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

REFERENCE = {"method": "dopri5", "rtol": 1e-7, "atol": 1e-9}
SOLVERS = [
    {"method": "euler", "step_size": 0.25},
    {"method": "euler", "step_size": 0.125},
    {"method": "euler", "step_size": 0.0625},
    {"method": "midpoint", "step_size": 0.125},
    {"method": "rk4", "step_size": 0.25},
    {"method": "rk4", "step_size": 0.125},
    {"method": "dopri5", "rtol": 1e-2, "atol": 1e-3},
    {"method": "dopri5", "rtol": 1e-3, "atol": 1e-4},
    {"method": "dopri5", "rtol": 1e-4, "atol": 1e-5},
    {"method": "dopri5", "rtol": 1e-5, "atol": 1e-6},
]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=48)
    p.add_argument("--checkpoint")
    args = p.parse_args(argv)
    import torch

    from climode.evaluation import EvaluationConfig, evaluate
    from climode.forecast import load_model
    from climode.models.config import SolverConfig

    model = load_model(args.checkpoint, device="cpu")
    trained = dataclasses.asdict(model.model.config.decoder_solver)

    def run(solver: dict) -> tuple[dict, list, list, float, float]:
        """Evaluate with ``solver``; (results, decoder NFE per batch, frames per batch, wall s, forward s)."""
        model.model.config.decoder_solver = SolverConfig(**solver)
        nfe, frames, forward_s = [], [], [0.0]
        original = model.model.forward

        def counting(*a, **k):
            t = time.perf_counter()
            out = original(*a, **k)
            forward_s[0] += time.perf_counter() - t
            nfe.append(out.nfe_decoder)
            frames.append(model.normalizer.denormalize(out.frames.float().numpy(), channel_axis=2))
            return out

        model.model.forward = counting
        config = EvaluationConfig(windows=args.windows, n_sequences=2, baselines=[], tracks=False, bootstrap=10)
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                res = evaluate(model, config, progress=False)
        finally:
            model.model.forward = original
        return res, nfe, frames, time.perf_counter() - t0, forward_s[0]

    _, ref_nfe, ref_frames, _, _ = run(REFERENCE)
    reference = np.concatenate(ref_frames)
    rows = []
    for solver in SOLVERS:
        res, nfe, frames, wall, forward = run(solver)
        diff = np.concatenate(frames) - reference
        err = {v: {"rmse": float(np.sqrt(np.nanmean(diff[:, :, i] ** 2))), "max": float(np.nanmax(np.abs(diff[:, :, i])))}
               for i, v in enumerate(model.variables)}
        row = {"benchmark": "solvers", "solver": solver, "trained_with": trained,
               "wall_s_per_window": round(wall / args.windows, 4),
               "forward_s_per_window": round(forward / args.windows, 4),
               "decoder_nfe_per_batch": round(sum(nfe) / len(nfe), 1),
               "rmse": {v: round(res["model"]["overall"][v]["rmse"], 4) for v in model.variables},
               "rmse_15h": {v: round(res["model"]["leads"]["15"][v]["rmse"], 4) for v in model.variables},
               "error_vs_reference": {v: {k: float(f"{x:.3g}") for k, x in e.items()} for v, e in err.items()},
               "reference": REFERENCE, "reference_nfe_per_batch": round(sum(ref_nfe) / len(ref_nfe), 1),
               "machine": machine()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
