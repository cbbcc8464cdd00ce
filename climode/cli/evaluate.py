"""``climode evaluate``: score a model and baselines on the same held-out windows."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="score a model and baselines on held-out windows",
                              description="Score a model and reference forecasts on the same held-out windows.")
    p.add_argument("--checkpoint", help="checkpoint to score (default: the bundled model)")
    p.add_argument("--data", default="synthetic_hurricanes",
                   help="catalog name or path (synthetic_hurricanes means its held-out test seeds), or a video "
                        "benchmark (bouncing_balls, moving_mnist, kth, penn_action, moving_gif: scored with SSIM, "
                        "PSNR, MSE, MAE)")
    p.add_argument("--split", default="test")
    p.add_argument("--baselines",
                   help="comma-separated: persistence, advection (by the 850 hPa wind; climate only), pysteps "
                        "(Lucas-Kanade), pysteps_vet (default: persistence,advection for climate fields, "
                        "persistence,pysteps for video)")
    p.add_argument("--windows", type=int, default=240, help="number of windows (default: %(default)s)")
    p.add_argument("--sequences", type=int, default=4, help="held-out sequences (seasons) to draw windows from")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="seed of the window draw")
    p.add_argument("--clips", type=int, metavar="N", help="video: held-out clips to draw windows from (default: all)")
    p.add_argument("--interpolate", type=int, metavar="K",
                   help="video: score interpolation instead: inputs every K frames, targets the frames between "
                        "(baselines default to blend,flow)")
    p.add_argument("--lpips-weights", metavar="FILE",
                   help="video: local LPIPS (AlexNet) weights, .safetensors or .pth (LPIPS is skipped without them)")
    p.add_argument("--climatology-sequences", type=int, metavar="N",
                   help="training seasons averaged into the ACC climatology (default: those the checkpoint "
                        "was trained on)")
    p.add_argument("--report", help="write a markdown report here")
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from climode.evaluation import EvaluationConfig, evaluate
    from climode.evaluation.report import markdown_report, results_json
    from climode.forecast import load_model
    from climode.io import atomic_write_text

    from climode.training.data import VIDEO_SETS

    default = "persistence,pysteps" if args.data in VIDEO_SETS else "persistence,advection"
    if args.interpolate:
        default = "blend,flow"
    baselines = [b.strip() for b in (args.baselines or default).split(",") if b.strip()]
    config = EvaluationConfig(data=args.data, split=args.split, n_sequences=args.sequences, windows=args.windows,
                              batch_size=args.batch_size, baselines=baselines, seed=args.seed,
                              climatology_sequences=args.climatology_sequences, clips=args.clips,
                              lpips_weights=args.lpips_weights, interpolate=args.interpolate)
    model = load_model(args.checkpoint, args.device, video=True)
    results = evaluate(model, config, progress=not args.quiet)
    report = markdown_report(results)
    if args.report:
        atomic_write_text(args.report, report)
    if args.json_path:
        atomic_write_text(args.json_path, results_json(results))  # NaN scores are null
    if not args.quiet:
        print(report)
    return 0
