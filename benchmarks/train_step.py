"""Time and memory of one Vid-ODE generator training step at the reference preset.

128x128 RGB, batch 8, 5 inputs -> 5 outputs (extrapolation), decoder dopri5
rtol 1e-3 atol 1e-4, encoder one Euler step per gap (as the published code),
random data and untrained weights.  Prints one JSON line.

    python benchmarks/train_step.py [--batch 8] [--size 128] [--steps 5] [--memory-saving [LEVEL]] [--amp-cpu]

The script, like the trainer, first makes glibc keep freed memory
(``climode.training.host_memory``); with --memory-saving it instead makes glibc
map and return every block of 8 MiB or more (``--malloc release``, ``--release-mib``), which keeps
the heap from fragmenting; ``--malloc default`` measures with glibc as it is.  ``roofline_s`` is the step's GFLOP at
the forward rate of a large 3x3 convolution; ``train_roofline_s`` at the rate of
the same convolution's forward plus backward, the best a step made only of such
convolutions could do.  Both are measured at the step's precision.  With
--discriminators the full GAN step is timed as a whole, so ``forward_s`` and
``backward_s`` are null.  ``step_cpu_s`` is the median CPU time of the process
per step (all threads, user and system): with ``OMP_WAIT_POLICY=PASSIVE`` it
varies less than ``step_s`` when other processes share the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import conv_gflops, conv_train_gflops, first_module_names, machine, module_gflops, peak_rss_mb  # noqa: E402

from climode.models.config import MEMORY_SAVING_LEVELS, ModelConfig, SolverConfig  # noqa: E402
from climode.models.discriminators import ImageDiscriminator, SequenceDiscriminator  # noqa: E402
from climode.models.vidode import VidODE  # noqa: E402
from climode.training.host_memory import keep_freed_memory, release_large_blocks  # noqa: E402
from climode.training.step import Discriminators, TrainStep  # noqa: E402

#: climode's generator parts as the flop counter names them (benchmarks/published_step.py: the published ones)
CLIMODE_MODULES = {
    "VidODE.encoder": "Conv-Encoder E",
    "VidODE.gru": "ConvGRU",
    "VidODE.encoder_ode": "encoder ODE func",
    "VidODE.decoder_ode": "decoder ODE func",
    "VidODE.decoder.net": "Conv-Decoder G",  # its Sequential: G returns a dataclass, whose backward the tracker misses
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--inputs", type=int, default=5)
    p.add_argument("--outputs", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up steps")
    p.add_argument("--solver", default="dopri5", help="decoder solver method")
    p.add_argument("--step-size", type=float, default=None, help="fixed-step solver step (model time)")
    p.add_argument("--encoder-solver", default="euler")
    p.add_argument("--discriminators", action="store_true")
    p.add_argument("--memory-saving", nargs="?", const="default", default=None,
                   choices=("default", *MEMORY_SAVING_LEVELS),
                   help="activation checkpointing; optionally the level (default: ModelConfig's)")
    p.add_argument("--adjoint", action="store_true")
    p.add_argument("--amp-cpu", action="store_true", help="bf16 autocast of the convolutions on the CPU")
    p.add_argument("--malloc", choices=("auto", "keep", "release", "default"), default="auto",
                   help="keep: glibc keeps freed memory for reuse; release: blocks of --release-mib MiB and more are "
                        "mapped and returned one by one; default: glibc as it is; auto: keep, or release "
                        "with --memory-saving")
    p.add_argument("--release-mib", type=int, default=8,
                   help="with --malloc release: blocks of this many MiB and more are mapped one by one")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def _median_or_none(values: list) -> float | None:
    """Median of timings rounded to ms; None (JSON null) where the phase was not timed."""
    timed = [v for v in values if v is not None]
    return round(statistics.median(timed), 3) if timed else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    # keep freed memory on CPU, except when memory saving asks for the smallest peak
    keep = args.malloc == "keep" or (args.malloc == "auto" and not args.memory_saving)
    release = args.malloc == "release" or (args.malloc == "auto" and args.memory_saving)
    kept = keep_freed_memory() if keep and device.type == "cpu" else False
    released = release_large_blocks(args.release_mib << 20) if release and device.type == "cpu" else False
    torch.manual_seed(0)
    saving = {} if args.memory_saving in (None, "default") else {"memory_saving_level": args.memory_saving}
    cfg = ModelConfig.reference(
        encoder_solver=SolverConfig(method=args.encoder_solver),
        decoder_solver=SolverConfig(method=args.solver, rtol=1e-3, atol=1e-4, step_size=args.step_size, adjoint=args.adjoint),
        memory_saving=args.memory_saving is not None,
        amp_cpu=args.amp_cpu,
        **saving,
    )
    model = VidODE(cfg).to(device)
    disc = None
    if args.discriminators:
        d_img = ImageDiscriminator(3).to(device)
        d_seq = SequenceDiscriminator(3, args.inputs + args.outputs).to(device)
        disc = Discriminators(d_img, d_seq, torch.optim.Adamax([*d_img.parameters(), *d_seq.parameters()], lr=1e-3))
    step = TrainStep(model, torch.optim.Adamax(model.parameters(), lr=1e-3), disc)
    n, b, s = args.inputs + args.outputs, args.batch, args.size
    frames = torch.rand(b, n, 3, s, s, device=device)
    batch = {
        "inputs": frames[:, : args.inputs],
        "input_times": torch.arange(args.inputs, dtype=torch.float64).expand(b, -1),
        "input_mask": torch.ones(b, args.inputs, device=device),
        "targets": frames[:, args.inputs :],
        "target_times": torch.arange(args.inputs, n, dtype=torch.float64).expand(b, -1),
        "target_mask": torch.ones(b, args.outputs, device=device),
    }

    def timed_step():
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        model.train()
        out = model(batch["inputs"], batch["input_times"], batch["target_times"], batch["input_mask"])
        losses = step.generator_losses(batch, out)
        total = sum(losses.values())
        t1 = time.perf_counter()
        step.optimizer.zero_grad(set_to_none=True)
        total.backward()
        t2 = time.perf_counter()
        step.optimizer.step()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t0, time.process_time() - cpu0, out

    if disc is not None:
        def timed_step():  # noqa: F811 - the full GAN step, timed as a whole
            t0, cpu0 = time.perf_counter(), time.process_time()
            res = step(batch)
            return None, None, time.perf_counter() - t0, time.process_time() - cpu0, res.output

    for _ in range(2):
        timed_step()
    fwd, bwd, tot, cpu = [], [], [], []
    for _ in range(args.steps):
        f, bw, t, c, out = timed_step()
        fwd.append(f), bwd.append(bw), tot.append(t), cpu.append(c)
    peak = peak_rss_mb()
    try:
        with first_module_names(), FlopCounterMode(display=False) as counter:
            timed_step()
        gflop = counter.get_total_flops() / 1e9
        per_module = module_gflops(counter, CLIMODE_MODULES)
    except RuntimeError:  # the flop counter's module hooks cannot follow the adjoint's autograd.grad
        gflop, per_module = float("nan"), None
    bf16 = args.amp_cpu and device.type == "cpu"
    peak_conv = conv_gflops(device, bf16=bf16)
    train_conv = conv_train_gflops(device, bf16=bf16)
    median = statistics.median(tot)
    result = {
        "benchmark": "train_step",
        "batch": b,
        "size": s,
        "solver": args.solver,
        "step_size": args.step_size,
        "discriminators": args.discriminators,
        "memory_saving": cfg.memory_saving,
        "memory_saving_level": cfg.memory_saving_level if cfg.memory_saving else None,
        "adjoint": args.adjoint,
        "amp_cpu": args.amp_cpu,
        "keep_freed_memory": kept,
        "release_large_blocks": released,
        "release_mib": args.release_mib if released else None,
        "step_s": round(median, 3),
        "step_cpu_s": round(statistics.median(cpu), 3),
        "forward_s": _median_or_none(fwd),
        "backward_s": _median_or_none(bwd),
        "nfe_encoder": out.nfe_encoder,
        "nfe_decoder": out.nfe_decoder,
        "gflop": round(gflop, 1) if gflop == gflop else None,
        "gflop_per_module": per_module,
        "gflop_per_s": round(gflop / median, 1) if gflop == gflop else None,
        "conv_gflop_per_s": round(peak_conv, 1),
        "roofline_s": round(gflop / peak_conv, 3) if gflop == gflop else None,
        "conv_train_gflop_per_s": round(train_conv, 1),
        "train_roofline_s": round(gflop / train_conv, 3) if gflop == gflop else None,
        "peak_rss_mb": round(peak, 1),
        "params": sum(p.numel() for p in model.parameters()),
        "machine": machine(),
    }
    print(json.dumps(result, allow_nan=False))
    return result


if __name__ == "__main__":
    main()
