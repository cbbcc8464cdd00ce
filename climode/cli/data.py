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

    p_synth = sub.add_parser(
        "synth", help="generate a synthetic dataset and write it",
        description="hurricanes: the analytic hurricane world (fast). atmosphere: the physical world, dinosaur's "
                    "Held-Suarez atmosphere with tropical cyclones, global, written to a zarr store chunk by chunk "
                    "(needs pip install 'climode[physics]'; rerun the same command to resume an interrupted run). "
                    "bouncing-balls, moving-mnist: the video benchmarks, as .npy files the catalog reads.")
    p_synth.add_argument("kind", choices=["hurricanes", "atmosphere", "bouncing-balls", "moving-mnist"], help="what to generate")
    p_synth.add_argument("--output", "-o", required=True, help="output file (.nc or .zarr; atmosphere: .zarr; .npy for the video benchmarks)")
    p_synth.add_argument("--overwrite", action="store_true", help="replace an existing output (refused otherwise)")
    p_synth.add_argument("--seed", type=int, help="random seed (default 0; video: the split's seed)")
    p_synth.add_argument("--days", type=float, help="length of the simulation in days")
    p_synth.add_argument("--years", type=float, help="atmosphere: length in years of 365 days (default 1)")
    p_synth.add_argument("--resolution",
                         help="hurricanes: grid spacing in degrees; atmosphere: spectral truncation T21, T31 or "
                              "T42 (default T42: 128 x 64 cells of 2.8 degrees)")
    p_synth.add_argument("--layers", type=int, help="atmosphere: sigma levels (default 20)")
    p_synth.add_argument("--spinup-days", type=float, help="atmosphere: model days run and discarded first "
                                                           "(default 120)")
    p_synth.add_argument("--dt-minutes", type=float, help="atmosphere: time step (default by resolution)")
    p_synth.add_argument("--output-hours", type=int,
                         help="atmosphere: hours between written frames, a whole number of time steps (default 3; "
                              "1 gives targets between a 3-hour decoder grid)")
    p_synth.add_argument("--cyclones-per-day", type=float,
                         help="atmosphere: genesis rate of tropical cyclones over the globe (default 0.4)")
    p_synth.add_argument("--quiet", action="store_true", help="no progress bar")
    video = p_synth.add_argument_group("video benchmarks (bouncing-balls, moving-mnist)")
    video.add_argument("--split", default="train", choices=["train", "validation", "test"],
                       help="which split's sequences (default: train)")
    video.add_argument("--sequences", type=int, help="number of sequences (default: the split's size)")
    video.add_argument("--frames", type=int, help="frames per sequence (default 20)")
    video.add_argument("--size", type=int, help="frame side in pixels (default 32 balls, 64 digits)")
    video.add_argument("--channels", type=int, choices=[1, 3], help="1 grey (default) or 3 RGB")
    video.add_argument("--colored", action="store_true", help="bouncing-balls: coloured balls on gradients (RGB)")
    video.add_argument("--balls", type=int, help="bouncing-balls: number of balls (default 3)")
    video.add_argument("--source", metavar="IDX_DIR", help="moving-mnist: folder of IDX images "
                       "(default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)")
    video.add_argument("--digits", type=int, help="moving-mnist: glyphs per sequence (default 2)")
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


def _synth_video(args: argparse.Namespace) -> int:
    from climode.data.synthetic.video_files import write_video_benchmark
    from climode.errors import ConfigError

    options = {"n_balls": args.balls, "source": args.source, "n_digits": args.digits,
               "colored": True if args.colored else None}
    allowed = {"bouncing-balls": {"n_balls", "colored"}, "moving-mnist": {"source", "n_digits"}}[args.kind]
    wrong = [k for k, v in options.items() if v is not None and k not in allowed]
    if wrong:
        flag = {"n_balls": "--balls", "source": "--source", "n_digits": "--digits", "colored": "--colored"}[wrong[0]]
        raise ConfigError(f"{flag} does not apply to {args.kind}")
    options = {k: v for k, v in options.items() if v is not None}
    channels = args.channels or (3 if args.colored else None)
    path = write_video_benchmark(args.kind, args.output, split=args.split, n_sequences=args.sequences,
                                 n_frames=args.frames, size=args.size, channels=channels, seed=args.seed,
                                 progress=log.isEnabledFor(logging.INFO), **options)
    import numpy as np

    print(f"wrote {path} ({args.kind}, {args.split} split, uint8 {tuple(np.load(path, mmap_mode='r').shape)} "
          "[T, N, H, W, C])")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from climode.errors import ConfigError
    from climode.io import check_output_path, write_dataset

    if args.kind == "atmosphere":
        if args.seed is None:
            args.seed = 0
        return _synth_atmosphere(args)
    atmosphere_only = [f"--{k.replace('_', '-')}" for k in _ATMOSPHERE_OPTIONS if getattr(args, k) is not None]
    if atmosphere_only:
        raise ConfigError(f"{', '.join(atmosphere_only)} only apply to synth atmosphere")
    if args.kind != "hurricanes":
        check_output_path(args.output, overwrite=args.overwrite)
        return _synth_video(args)
    if args.seed is None:
        args.seed = 0
    if Path(args.output).suffix.lower() not in (".nc", ".nc4", ".netcdf", ".zarr"):
        raise ConfigError(f"cannot write {args.output}: use a .nc or .zarr file name")
    check_output_path(args.output, overwrite=args.overwrite)
    from climode.data.synthetic.hurricanes import generate

    import inspect

    if args.resolution is not None:
        try:
            args.resolution = float(args.resolution)
        except ValueError:
            raise ConfigError(f"--resolution {args.resolution!r} must be a grid spacing in degrees for "
                              "synth hurricanes (T21, T31, T42 are for synth atmosphere)") from None
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


_ATMOSPHERE_OPTIONS = ("years", "layers", "spinup_days", "dt_minutes", "output_hours", "cyclones_per_day")


def _synth_atmosphere(args: argparse.Namespace) -> int:
    from climode.data.synthetic.atmosphere import DAYS_PER_YEAR, AtmosphereConfig, generate_atmosphere, state_path
    from climode.errors import ConfigError

    if args.days is not None and args.years is not None:
        raise ConfigError("give --years or --days, not both")
    params = {k: getattr(args, k) for k in ("layers", "spinup_days", "dt_minutes", "output_hours", "cyclones_per_day")
              if getattr(args, k) is not None}
    if args.resolution is not None:
        params["resolution"] = args.resolution
    days = args.days if args.days is not None else (args.years if args.years is not None else 1.0) * DAYS_PER_YEAR
    cfg = AtmosphereConfig(seed=args.seed, days=days, **params)
    path = generate_atmosphere(args.output, cfg, progress=not args.quiet)
    log.info("wrote %s", path)
    print(f"wrote {path} (U850, V850, PSL and cyclone tracks; {cfg.n_frames} steps of {cfg.output_hours} h on the "
          f"{cfg.resolution} grid; run state kept in {state_path(path).name})")
    return 0
