"""``climode evaluate``: score a model and baselines on the same held-out windows."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="score a model and baselines on held-out windows",
                              description="Score a model and reference forecasts on the same held-out windows.")
    p.add_argument("--checkpoint", help="checkpoint to score (default: the bundled model)")
    p.add_argument("--data", default="synthetic_hurricanes",
                   help="catalog name or path (synthetic_hurricanes means its held-out test seeds; an entry marked "
                        "evaluation_only, such as ncl_storm_1996, is scored over its whole record), or a video "
                        "benchmark (bouncing_balls, moving_mnist, kth, penn_action, moving_gif: scored with SSIM, "
                        "PSNR, MSE, MAE)")
    p.add_argument("--split", default="test",
                   help="split of --data to score, one of its catalog entry's splits (synthetic_hurricanes: "
                        "train, validation, test; default: %(default)s, seeds never used in training)")
    p.add_argument("--baselines",
                   help="comma-separated: persistence, advection (by the 850 hPa wind; climate only), pysteps "
                        "(Lucas-Kanade), pysteps_vet (default: persistence,advection for climate fields, "
                        "persistence,pysteps for video)")
    p.add_argument("--region", metavar="BASIN",
                   help="climate: score inside this basin (code such as NA, SP, SI, alias or lat=..,lon=.. box; "
                        "default: the checkpoint's training region on its own data, else the whole domain)")
    p.add_argument("--score-region", metavar="BASIN",
                   help="climate: forecast over --region (or the whole domain) but score only the cells of this "
                        "basin (code, alias or lat=..,lon=.. box), so the flow entering the basin is in the inputs")
    p.add_argument("--period", metavar="START/END",
                   help="climate file data the checkpoint did not train on: score only this period (inclusive ISO "
                        "dates, e.g. 2000-12-01/2000-12-31; default: the whole file)")
    p.add_argument("--windows", type=int, default=240, help="number of windows (default: %(default)s)")
    p.add_argument("--sequences", type=int, default=4, help="held-out sequences (seasons) to draw windows from")
    p.add_argument("--batch-size", type=int, default=8,
                   help="windows forecast at once (default: %(default)s); lower it if memory runs out")
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
    p.add_argument("--whole-record", action="store_true",
                   help="the data are an evaluation-only record (a file, or a catalog entry marked evaluation_only, "
                        "which implies this): score every window of the checkpoint's number of inputs at the "
                        "record's own spacing, against persistence and pysteps")
    p.add_argument("--leads", metavar="H,H",
                   help="record: lead hours after each initial time (default: one and two steps of the record)")
    p.add_argument("--report", help="write a markdown report here")
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --report or --json file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the model runs: auto (CUDA if available, default), cpu or cuda")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch intra-op threads (default: torch's choice); recorded in meta.reproducibility: two runs "
                        "agree to the byte with the same versions and thread count")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _check_outputs(args: argparse.Namespace) -> None:
    """--report and --json: not the checkpoint or data, not existing unless --overwrite, writable."""
    import os

    from climode.errors import ClimodeError
    from climode.forecast.forecaster import input_paths
    from climode.io import check_output_path

    inputs = input_paths(None, args.checkpoint)
    if args.data and os.path.exists(args.data):
        inputs.append(args.data)
    if args.report and args.json_path and os.path.abspath(args.report) == os.path.abspath(args.json_path):
        raise ClimodeError("--report and --json name the same file; give two names")
    for flag, path in (("--report", args.report), ("--json", args.json_path)):
        if path:
            check_output_path(path, inputs=inputs, overwrite=args.overwrite, flag=flag)


def run(args: argparse.Namespace) -> int:
    from climode.errors import ConfigError
    from climode.evaluation import EvaluationConfig, evaluate
    from climode.evaluation.record import RecordEvaluationConfig, evaluate_record, is_evaluation_only
    from climode.forecast import load_model

    _check_outputs(args)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    record = args.whole_record or is_evaluation_only(args.data)
    if args.period and record:
        raise ConfigError("--period applies to held-out windows of a file; an evaluation-only record is scored whole")
    if (args.region or args.score_region) and record:
        raise ConfigError(f"{'--region' if args.region else '--score-region'} applies to held-out windows of a "
                          "split; an evaluation-only record is scored on its whole domain")
    if args.leads and not record:
        raise ConfigError("--leads applies to an evaluation-only record (--whole-record); other data use the "
                          "checkpoint's protocol")
    # no --baselines: the config's own default (EvaluationConfig: by data kind; RecordEvaluationConfig: its list)
    chosen = {} if not args.baselines else {"baselines": [b.strip() for b in args.baselines.split(",") if b.strip()]}
    if record:
        try:
            leads = [float(h.strip().lstrip("+").rstrip("h")) for h in args.leads.split(",")] if args.leads else None
        except ValueError:
            raise ConfigError(f"--leads {args.leads!r} must be comma-separated hours, e.g. 6,12") from None
        model = load_model(args.checkpoint, args.device)
        results = evaluate_record(model, RecordEvaluationConfig(data=args.data, leads=leads, seed=args.seed,
                                                                **chosen), progress=not args.quiet)
        return _write(args, results)
    config = EvaluationConfig(data=args.data, split=args.split, n_sequences=args.sequences, windows=args.windows,
                              batch_size=args.batch_size, seed=args.seed,
                              climatology_sequences=args.climatology_sequences, clips=args.clips,
                              lpips_weights=args.lpips_weights, interpolate=args.interpolate, region=args.region,
                              score_region=args.score_region, period=args.period, **chosen)
    model = load_model(args.checkpoint, args.device, video=True)
    return _write(args, evaluate(model, config, progress=not args.quiet))


def _write(args: argparse.Namespace, results: dict) -> int:
    from climode.evaluation.report import markdown_report, results_json
    from climode.io import atomic_write_text

    report = markdown_report(results)
    if args.report:
        atomic_write_text(args.report, report)
    if args.json_path:
        atomic_write_text(args.json_path, results_json(results))  # NaN scores are null
    if not args.quiet:
        print(report)
    return 0
