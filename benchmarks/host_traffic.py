"""Host syncs, uploads and float64 device operations of one Vid-ODE forward+backward at the reference preset.

Counted on the CPU as if the tensors lived on a GPU (``climode.training.host_syncs``);
the counts do not depend on the frame size, so ``--size 64`` gives the 128x128 figures faster.
Prints one JSON line.

    python benchmarks/host_traffic.py [--batch 8] [--frames 10] [--size 64] [--decoder dopri5|rk4]

To count an older checkout, run it with that checkout first on the path and this
branch's counter loaded from its file:

    PYTHONPATH=/path/to/old/checkout python benchmarks/host_traffic.py --counter climode/training/host_syncs.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch


def load_counter(path: str | None):
    if path is None:
        from climode.training import host_syncs

        return host_syncs
    spec = importlib.util.spec_from_file_location("host_syncs_counter", Path(path).resolve())
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=10, help="inputs and as many outputs")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--decoder", default="dopri5", help="decoder solver (rk4 steps one frame, 0.1 model time)")
    p.add_argument("--counter", help="load the counter from this file (to count an older checkout)")
    args = p.parse_args(argv)
    counter = load_counter(args.counter)
    from climode.models.config import ModelConfig, SolverConfig
    from climode.models.vidode import VidODE

    torch.manual_seed(0)
    step = 0.1 if args.decoder in ("euler", "midpoint", "rk4") else None
    model = VidODE(ModelConfig.reference(decoder_solver=SolverConfig(method=args.decoder, step_size=step))).train()
    b, t = args.batch, args.frames
    frames = torch.rand(b, t, 3, args.size, args.size)
    times = torch.arange(t, dtype=torch.float64).expand(b, t)
    queries = torch.arange(t, 2 * t, dtype=torch.float64).expand(b, t)
    mask = torch.ones(b, t)
    with counter.count_host_traffic([times, queries, mask]) as traffic:
        out = model(frames, times, queries, mask)
        out.frames.square().mean().backward()
    print(json.dumps({
        "batch": b, "frames": f"{t} -> {t}", "decoder": args.decoder, "syncs": traffic.n_syncs,
        "uploads": traffic.n_uploads, "float64_ops": sum(traffic.float64.values()),
        "nfe_encoder": out.nfe_encoder, "nfe_decoder": out.nfe_decoder,
        "sync_sites": dict(traffic.syncs.most_common(8)), "upload_sites": dict(traffic.uploads.most_common(8)),
        "float64_sites": dict(traffic.float64.most_common(4)),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
