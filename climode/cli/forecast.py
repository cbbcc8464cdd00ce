"""``climode forecast``: fields at any requested times from a few observations."""

from __future__ import annotations

import argparse

EXAMPLES = """
times: 60h = hours after the first input used; +3h = after the last input (the forecast
reference time); -5h = before it (inside the window); absolute times (2000-08-03T12:00);
ranges (60h..72h/3h, +3h..+15h/3h).  Write a time that starts with '-' with '=':
--times=-5h,+3h (argparse reads '--times -5h' as an unknown option).
A requested time may lie at most 1024 decoder steps (3072 h for the bundled model)
after the observation before it.
With no --data the embedded default runs: a test season of the synthetic hurricane
world observed at 0, 9, 21, 42 and 57 h, and the bundled model (trained on synthetic
data; not an operational forecast).
"""

#: the options of ``climode forecast`` recorded in the output's ``history``, in order
_HISTORY_OPTIONS = ("times", "data", "var", "units", "basin", "inputs", "init", "checkpoint", "output",
                    "overwrite", "plot", "animate", "members", "regrid", "device", "precision")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("forecast", help="forecast fields at the requested times",
                              description="Forecast U850, V850 and PSL at any requested times.", epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--times", default="+3h,+6h",
                   help="requested valid times (default: +3h,+6h); write negative ones as --times=-5h")
    p.add_argument("--data", nargs="+", metavar="PATH",
                   help="NetCDF files or zarr stores (several, or a quoted glob 'obs/*.nc'), or a catalog name "
                        "(default: the embedded sample)")
    p.add_argument("--var", metavar="NAME=VAR,...",
                   help="the data's names of the model's variables, e.g. U850=u,V850=v,PSL=slp")
    p.add_argument("--units", metavar="NAME=UNITS,...",
                   help="units of variables whose files have none or wrong ones, e.g. PSL=hPa")
    p.add_argument("--basin", help="basin code (NA, EP, WP, NI, SI, SP), alias (atlantic) or box lat=5:60,lon=255:359")
    p.add_argument("--inputs", help="observation times to use (default: the newest the model was trained with)")
    p.add_argument("--init", help="forecast reference time: use observations at or before it")
    p.add_argument("--checkpoint", help="a checkpoint (.json/.safetensors or run directory); default: bundled model")
    p.add_argument("--output", default="climode_forecast.nc",
                   help="output file, .nc or .zarr (default: %(default)s); never one of the inputs")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output, --plot or --animate file (refused otherwise)")
    p.add_argument("--plot", metavar="MAP.png", help="draw a map per time (PNG)")
    p.add_argument("--animate", metavar="FORECAST.gif", help="write an animated GIF of the maps")
    p.add_argument("--members", type=int, help="ensemble size (stochastic models only)")
    p.add_argument("--regrid", choices=["bilinear", "conservative"], default="bilinear",
                   help="how data on another grid spacing are regridded (conservative needs climode[regrid])")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", choices=["float32", "bfloat16"],
                   help="arithmetic of the convolutions (default: what the model was trained in)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the table")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (and no progress bar)")
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The ``climode forecast`` command ``args`` came from (options that were set), for ``history``."""
    import shlex

    parts = ["climode", "forecast"]
    for name in _HISTORY_OPTIONS:
        value = getattr(args, name, None)
        if value is True:
            parts.append(f"--{name}")
        elif isinstance(value, list):
            parts += [f"--{name}", *map(str, value)]
        elif value is not None and value is not False:
            parts.append(f"--{name}={value}")
    return shlex.join(parts)


def _data(args: argparse.Namespace):
    """``--data`` as open_dataset takes it: one path, glob or catalog name, or a list of paths."""
    if not args.data:
        return None
    return args.data[0] if len(args.data) == 1 else list(args.data)


def _map_targets(path: str) -> list:
    """The files ``--plot map.png`` may write: map.png and map_000.png, map_001.png, ... that exist."""
    import glob
    from pathlib import Path

    target = Path(path)
    return sorted(target.parent.glob(f"{glob.escape(target.stem)}_[0-9][0-9][0-9]{glob.escape(target.suffix)}"))


def _check_before_running(args: argparse.Namespace) -> None:
    """Refuse what would fail, or destroy data, only after the forecast ran: the output names
    (not an input, not an existing file unless --overwrite, writable), the plot extras, members."""
    from pathlib import Path

    from climode.data.mapping import check_units, parse_assignments
    from climode.errors import ClimodeError, require
    from climode.forecast.output import check_output, input_paths
    from climode.io import check_output_path

    if args.members is not None and args.members < 1:
        raise ClimodeError("--members must be at least 1")
    args.var_map = parse_assignments(args.var, "--var") if args.var else None
    args.units_map = check_units(parse_assignments(args.units, "--units"), "--units") if args.units else None
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise ClimodeError(f"--plot draws PNG maps: name it .png, not {args.plot}")
    if args.animate and Path(args.animate).suffix.lower() != ".gif":
        raise ClimodeError(f"--animate writes a GIF: name it .gif, not {args.animate}")
    if args.plot or args.animate:
        for module in ("matplotlib", "cartopy.crs", *(("imageio.v2",) if args.animate else ())):
            require(module, "plot")
    if args.regrid == "conservative":
        require("xarray_regrid", "regrid")
    inputs = input_paths(_data(args), args.checkpoint)
    check_output(args.output, inputs=inputs, overwrite=args.overwrite, flag="--output", overwrite_hint="--overwrite")
    if args.plot:
        check_output_path(args.plot, inputs=inputs, overwrite=args.overwrite, flag="--plot",
                          existing=_map_targets(args.plot))
    if args.animate:
        check_output_path(args.animate, inputs=inputs, overwrite=args.overwrite, flag="--animate")


def _truth_track(data) -> list[tuple[float, float]] | None:
    """The embedded sample's strongest storm track (lat, lon), for the maps; None for other data."""
    if data is not None:
        return None
    import numpy as np

    from climode.forecast.sample import sample_window

    window = sample_window()
    k = int(np.nanargmin(window["track_min_psl"].min("time").values))
    return [(float(a), float(b)) for a, b in zip(window["track_lat"][k].values, window["track_lon"][k].values)
            if a == a]


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import warnings

    from climode.errors import HorizonWarning

    from climode.forecast import load_model
    from climode.forecast.forecaster import history_line, write_forecast
    from climode.time import format_time
    from climode.data.mapping import interface
    from climode.forecast.storms import format_table, storm_centres, storm_table

    _check_before_running(args)
    model = load_model(args.checkpoint, args.device, precision=args.precision)
    with warnings.catch_warnings(record=True) as caught, interface("cli"):
        warnings.simplefilter("always", HorizonWarning)
        result, info = model.predict_with_info(_data(args), args.times, basin=args.basin, inputs=args.inputs,
                                               init=args.init, members=args.members, regrid_method=args.regrid,
                                               variables=args.var_map, units=args.units_map,
                                               progress=False if args.quiet else None)
    for warning in caught:
        if issubclass(warning.category, HorizonWarning):
            print(f"climode: warning: {warning.message}", file=sys.stderr)
        else:  # anything else goes on as it would have
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    result.attrs["history"] = history_line(command_line(args))
    path = write_forecast(result, args.output)
    rows = storm_table(result)
    if args.plot or args.animate:
        from climode.plotting import animate_forecast, plot_forecast

        centres = storm_centres(result)
        truth_track = _truth_track(_data(args))
        if args.plot:
            written = plot_forecast(result, args.plot, centres, truth_track)
            if not args.quiet and not args.json:
                print(f"maps: {', '.join(str(p) for p in written)}")
        if args.animate:
            animate_forecast(result, args.animate, centres, truth_track)
    reference = format_time(result["forecast_reference_time"].values[()])
    if args.json:
        print(json.dumps({
            "output": str(path),
            "model": model.name,
            "forecast_reference_time": reference,
            "inputs": [format_time(t) for t in info.input_times],
            "notes": info.notes,
            "times": rows,
        }, indent=2))
    elif not args.quiet:
        print(f"climode {model.name}: forecast from {len(info.input_times)} observations, "
              f"reference time {reference}")
        for note in info.notes:
            print(f"note: {note}")
        print(format_table(rows))
        print(f"written: {path}")
        if result.attrs.get("climode_disclaimer"):
            print(result.attrs["climode_disclaimer"])
    return 0
