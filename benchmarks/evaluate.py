"""Samples per second of evaluation and peak memory, on an archive 100x a batch.

Scores the model and persistence on ``--windows`` windows (default 800 = 100
batches of 8) from held-out synthetic seasons, cyclone tracking included.
Prints one JSON line; ``windows_per_s`` excludes the one-off ACC climatology of
the training seasons (``climatology_s``).

    python benchmarks/evaluate.py [--windows 800] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=800)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-tracks", action="store_true")
    p.add_argument("--checkpoint")
    args = p.parse_args(argv)
    from climode.evaluation import EvaluationConfig, evaluate
    from climode.forecast import load_model

    model = load_model(args.checkpoint, device="cpu")
    config = EvaluationConfig(windows=args.windows, n_sequences=args.sequences, batch_size=args.batch_size,
                              baselines=["persistence"], tracks=not args.no_tracks, bootstrap=200)
    t0 = time.perf_counter()
    results = evaluate(model, config, progress=False)
    wall = time.perf_counter() - t0
    # the ACC climatology (training seasons, generated once per process) is set-up, not evaluation
    setup = float(results["meta"]["climatology"].get("seconds", 0.0))
    scoring = wall - setup
    out = {"benchmark": "evaluate", "windows": results["meta"]["n_windows"], "systems": 2, "tracks": config.tracks,
           "wall_s": round(wall, 2), "climatology_s": round(setup, 2),
           "windows_per_s": round(results["meta"]["n_windows"] / scoring, 2),
           "peak_rss_mb": round(peak_rss_mb(), 1), "machine": machine()}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
