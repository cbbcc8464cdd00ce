"""``climode summarize``: one table of the model against persistence from several evaluation files."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summarize", help="one table of the model against persistence from climode evaluate --json files",
        description="One markdown row per climode evaluate --json file (labelled by its region, else its data): "
                    "the model's RMSE as a fraction of persistence's at chosen leads, the worst such ratio, "
                    "track and minimum-PSL errors, and the maximum-wind bias.")
    p.add_argument("files", nargs="+", help="climode evaluate --json files (one row each)")
    p.add_argument("--leads", help="lead hours of the ratio columns (default: 3 to 15 every 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from climode.errors import ClimodeError
    from climode.evaluation.summary import DEFAULT_LEADS, load_results, summary_row, summary_table

    try:
        leads = list(DEFAULT_LEADS) if args.leads is None else [float(h) for h in args.leads.split(",")]
    except ValueError:
        raise ClimodeError(f"--leads {args.leads!r}: give lead hours separated by commas, such as 3,6,9") from None
    rows = [summary_row(load_results(f), leads) for f in args.files]
    print(summary_table(rows, leads))
    return 0
