"""``climode data``: list the catalog, inspect a dataset, write synthetic data."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="list, inspect and synthesise datasets", description="Datasets: list, inspect, synth."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", help="data catalog YAML (default: $CLIMODE_CATALOG or the packaged one)")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    p_list = sub.add_parser("list", help="list the datasets of the catalog", parents=[common])
    p_list.set_defaults(func=_list)

    p_inspect = sub.add_parser(
        "inspect", help="open and validate a dataset as a forecast would, and summarise it", parents=[common]
    )
    p_inspect.add_argument("source", nargs="+", metavar="NAME_OR_PATH", help="catalog name, file, glob or zarr store")
    p_inspect.add_argument("--variables", nargs="+", metavar="VAR", help="canonical variables (default U850 V850 PSL)")
    p_inspect.add_argument("--split", help="split of a synthetic catalog entry")
    p_inspect.add_argument("--seed", type=int, help="seed of a synthetic catalog entry")
    p_inspect.add_argument("--var", metavar="NAME=VAR,...",
                           help="the data's names of canonical variables, e.g. U850=u,V850=v,PSL=slp")
    p_inspect.add_argument("--units", metavar="NAME=UNITS,...",
                           help="units of variables whose files have none or wrong ones, e.g. PSL=hPa")
    p_inspect.add_argument("--min-times", type=int, default=2, help="fewest time steps accepted (default 2)")
    p_inspect.set_defaults(func=_inspect)

    p_synth = sub.add_parser("synth", help="generate a synthetic dataset and write it")
    p_synth.add_argument("kind", choices=["hurricanes"], help="what to generate")
    p_synth.add_argument("--output", "-o", required=True, help="output file (.nc or .zarr)")
    p_synth.add_argument("--overwrite", action="store_true", help="replace an existing output (refused otherwise)")
    p_synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p_synth.add_argument("--days", type=float, help="length of the simulation in days")
    p_synth.add_argument("--resolution", type=float, help="grid spacing in degrees")
    p_synth.set_defaults(func=_synth)


def _list(args: argparse.Namespace) -> int:
    from climode.data.catalog import load_catalog

    cat = load_catalog(args.catalog)
    rows = [
        (e.name, e.driver, "yes" if e.available() else "no", e.summary) for e in cat.entries.values()
    ]
    header = ("name", "driver", "available", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    print(f"catalog: {cat.path}")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    missing = {e.name: e.missing() for e in cat.entries.values() if e.driver != "synthetic"}
    missing = {name: paths for name, paths in missing.items() if paths}
    if missing:
        print()
        print("missing paths (each entry's obtain: field in the catalog says how to get the data):")
        width = max(len(name) for name in missing)
        for name, paths in missing.items():
            for path in paths:
                print(f"  {name.ljust(width)}  {path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from climode.data import lexicon
    from climode.data.mapping import check_units, check_variables, interface, parse_assignments
    from climode.data.open import open_dataset
    from climode.data.validate import check_values, summarize

    source = args.source[0] if len(args.source) == 1 else list(args.source)
    wanted = args.variables or list(lexicon.CANONICAL)
    variables = args.variables
    if args.var:
        names = check_variables(parse_assignments(args.var, "--var"), "--var", allowed=wanted)
        variables = {v: names.get(v) for v in wanted}
    units = check_units(parse_assignments(args.units, "--units"), "--units") if args.units else None
    with interface("cli"):
        ds = open_dataset(
            source,
            variables,
            split=args.split,
            seed=args.seed,
            units=units,
            min_times=args.min_times,
            validate=False,
            catalog=args.catalog,
        )
    report = check_values(ds, ds.attrs.get("climode_source", str(source)))
    print(summarize(ds, report))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from climode.errors import ConfigError
    from climode.io import check_output_path, write_dataset

    if Path(args.output).suffix.lower() not in (".nc", ".nc4", ".netcdf", ".zarr"):
        raise ConfigError(f"cannot write {args.output}: use a .nc or .zarr file name")
    check_output_path(args.output, overwrite=args.overwrite)
    if args.kind == "hurricanes":
        from climode.data.synthetic.hurricanes import generate
    else:  # pragma: no cover - argparse restricts the choices
        raise ConfigError(f"unknown synthetic kind {args.kind!r}")
    import inspect

    params = {k: getattr(args, k) for k in ("days", "resolution") if getattr(args, k) is not None}
    accepted = inspect.signature(generate).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    refused = [k for k in params if k not in accepted and not takes_any]
    if refused:
        raise ConfigError(f"synthetic {args.kind} does not take --{', --'.join(refused)}")
    ds = generate(seed=args.seed, **params)
    path = write_dataset(ds, args.output)
    log.info("wrote %s", path)
    print(f"wrote {path} ({', '.join(map(str, ds.data_vars))}; {dict(ds.sizes)})")
    return 0
