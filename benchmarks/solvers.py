"""Cost and accuracy of decoder solver choices on a trained model.

Evaluates the bundled model (or ``--checkpoint``) on the same held-out windows
with its decoder ODE solved by each solver in turn, and prints one JSON line per
solver: wall time per window, decoder function evaluations per batch of 8 (one
solve serves the batch), and the
latitude-weighted RMSE of each variable.  The reference is the solver the model
was trained with.

    python benchmarks/solvers.py [--windows 48] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

SOLVERS = [
    {"method": "euler", "step_size": 0.125},
    {"method": "euler", "step_size": 0.0625},
    {"method": "midpoint", "step_size": 0.125},
    {"method": "rk4", "step_size": 0.125},
    {"method": "rk4", "step_size": 0.25},
    {"method": "dopri5", "rtol": 1e-3, "atol": 1e-4},
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
    rows = []
    for solver in SOLVERS:
        model.model.config.decoder_solver = SolverConfig(**solver)
        nfe = []
        original = model.model.forward

        def counting(*a, **k):
            out = original(*a, **k)
            nfe.append(out.nfe_decoder)
            return out

        model.model.forward = counting
        config = EvaluationConfig(windows=args.windows, n_sequences=2, baselines=[], tracks=False, bootstrap=10)
        t0 = time.perf_counter()
        with torch.no_grad():
            res = evaluate(model, config, progress=False)
        wall = time.perf_counter() - t0
        model.model.forward = original
        row = {"benchmark": "solvers", "solver": solver, "trained_with": trained,
               "wall_s_per_window": round(wall / args.windows, 4),
               "decoder_nfe_per_batch": round(sum(nfe) / len(nfe), 1),
               "rmse": {v: round(res["model"]["overall"][v]["rmse"], 4) for v in model.variables},
               "rmse_15h": {v: round(res["model"]["leads"]["15"][v]["rmse"], 4) for v in model.variables},
               "machine": machine()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
