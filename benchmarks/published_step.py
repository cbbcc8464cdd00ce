"""GFLOP and time of one training step of the published Vid-ODE code, at the reference preset.

The published implementation (github.com/psh01087/Vid-ODE) is NOT part of
climode: check it out yourself and point ``--repo`` at the checkout.  This
script imports its generator (``models.conv_odegru.VidODE``) unchanged, runs
the generator step of its ``train`` loop with the discriminators off
(``compute_all_losses``, backward, Adamax step) on random data, and counts
the work with the same ``torch.utils.flop_counter.FlopCounterMode`` as
``benchmarks/train_step.py``: forward + backward, per module.

Reference preset: 128x128 RGB, batch 8, 5 inputs -> 5 outputs on times
arange(10)/10 (extrapolation), decoder dopri5 rtol 1e-3 atol 1e-4, encoder one
hand-written Euler step per gap (the published code's only option).

    python benchmarks/published_step.py --repo /path/to/Vid-ODE [--steps 5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import first_module_names, machine, module_gflops, peak_rss_mb  # noqa: E402

#: the published generator's parts as the flop counter names them (its loss calls them directly)
PUBLISHED_MODULES = {
    "Encoder": "Conv-Encoder E",
    "Encoder_z0_ODE_ConvGRU.cell_list.0": "ConvGRU",
    "Encoder_z0_ODE_ConvGRU.z0_diffeq_solver.ode_func": "encoder ODE func",  # called by hand: one Euler step
    "DiffeqSolver": "decoder ODE func",
    "Decoder": "Conv-Decoder G",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True, help="a local checkout of github.com/psh01087/Vid-ODE")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up steps")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    repo = Path(args.repo).resolve()
    if not (repo / "models" / "conv_odegru.py").is_file():
        sys.exit(f"published_step: error: {repo} is not a checkout of the published Vid-ODE "
                 "(models/conv_odegru.py is missing): git clone https://github.com/psh01087/Vid-ODE")
    sys.path.insert(0, str(repo))
    warnings.filterwarnings("ignore", message=".*uint8.*")  # its masks index with .byte()
    from models.conv_odegru import VidODE as PublishedVidODE  # noqa: PLC0415 - from the checkout

    torch.manual_seed(0)
    opt = SimpleNamespace(input_dim=3, init_dim=32, n_downs=2, input_size=args.size, n_layers=2,
                          dec_diff="dopri5", run_backwards=True, extrap=True, irregular=False)
    with contextlib.redirect_stdout(sys.stderr):  # it prints while building; stdout is the JSON line
        model = PublishedVidODE(opt, "cpu")
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-3)
    b, s, n_in, n_out = args.batch, args.size, 5, 5
    frames = torch.rand(b, n_in + n_out, 3, s, s)
    times = torch.arange(n_in + n_out, dtype=torch.float32) / (n_in + n_out)
    batch = {
        # contiguous copies, as the published split_data_extrap makes with .clone()
        "observed_data": frames[:, :n_in].clone(), "observed_tp": times[:n_in].clone(),
        "data_to_predict": frames[:, n_in:].clone(), "tp_to_predict": times[n_in:].clone(),
        "observed_mask": torch.ones(b, n_in, 1), "mask_predicted_data": torch.ones(b, n_out, 1),
    }
    nfe = {"n": 0}
    ode_net = model.diffeq_solver.ode_func.gradient_net
    ode_net.register_forward_hook(lambda *_: nfe.__setitem__("n", nfe["n"] + 1))

    def step() -> float:
        t0 = time.perf_counter()
        model.train()
        loss = model.compute_all_losses(dict(batch))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.export_infos()  # the training loop's tracker is emptied each step
        return time.perf_counter() - t0

    for _ in range(2):
        step()
    seconds = []
    for _ in range(args.steps):
        nfe["n"] = 0
        seconds.append(step())
    forward_nfe = nfe["n"]
    with first_module_names(), FlopCounterMode(display=False) as counter:
        step()
    total = counter.get_total_flops() / 1e9
    median = statistics.median(seconds)
    result = {
        "benchmark": "published_step",
        "repo_commit": _commit(repo),
        "batch": b,
        "size": s,
        "solver": "dopri5",
        "step_s": round(median, 3),
        "nfe_decoder_forward": forward_nfe,
        "gflop": round(total, 1),
        "gflop_per_module": module_gflops(counter, PUBLISHED_MODULES),
        "gflop_per_s": round(total / median, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "params": sum(p.numel() for p in model.parameters()),
        "machine": machine(),
    }
    print(json.dumps(result))
    return result


def _commit(repo: Path) -> str | None:
    head = repo / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (repo / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None


if __name__ == "__main__":
    main()
