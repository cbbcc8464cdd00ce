"""``climode train RECIPE.yaml``: train a model from a recipe."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model from a YAML recipe",
                              description="Train a model from a YAML recipe (see recipes/).")
    p.add_argument("recipe", help="path to a recipe YAML file")
    p.add_argument("--run-dir", help="where checkpoints and logs go (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --run-dir")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe entry, e.g. --set train.max_steps=10 (repeatable)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override train.device")
    p.add_argument("--check", action="store_true", help="validate the recipe and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from climode.training.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.check:
        print(f"{args.recipe}: valid recipe {recipe.name!r}")
        return 0
    from climode.training.trainer import Trainer

    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / recipe.name
    result = Trainer(recipe, run_dir, resume=args.resume, device=args.device, progress=not args.quiet).fit()
    last = result.losses[-1]["total"] if result.losses else float("nan")
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        print(f"trained {recipe.name} to step {result.steps} (last loss {last:.4g}); checkpoint: {result.checkpoint}")
    return 0
