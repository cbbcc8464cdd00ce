"""How much the 0/360 seam shows in a global forecast, with periodic longitude and with zero padding.

For each variable, the mean absolute difference between neighbouring columns is
computed for all column pairs of the forecast (pair 0 joins the last and the
first column: the seam).  Printed: the seam's difference over the median pair's,
and how many of the other pairs differ more (a seam that does not show is an
ordinary pair).  Usage::

    climode data synth atmosphere --days 90 --resolution T31 --output t31.zarr
    python benchmarks/global_seam.py t31.zarr [--checkpoint RUN] [--start 400]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import xarray as xr

import climode.models.periodic as periodic
from climode.forecast import load_model


def seam(ds: xr.Dataset, variables) -> dict:
    out = {}
    for v in variables:
        a = ds[v].values
        a = a[:, np.isfinite(a).all(axis=(0, 2))]
        pairs = np.abs(a - np.roll(a, 1, axis=-1)).mean(axis=(0, 1))
        out[v] = {"seam_over_median_pair": round(float(pairs[0] / np.median(pairs)), 3),
                  "pairs_differing_more": int((pairs > pairs[0]).sum()), "pairs": int(pairs.size)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a global store, e.g. from climode data synth atmosphere")
    parser.add_argument("--checkpoint", help="default: the bundled model")
    parser.add_argument("--start", type=int, default=400, help="first input step")
    args = parser.parse_args()
    model = load_model(args.checkpoint, "cpu")
    ds = xr.open_zarr(args.data)[model.variables].isel(time=slice(args.start, args.start + model.n_inputs)).load()
    wrapped = model.predict(ds, "+6h,+12h")
    real = periodic.is_periodic_grid
    periodic.is_periodic_grid = lambda lon, width=None: False  # the forecaster's switch off: zero padding
    try:
        zero = model.predict(ds, "+6h,+12h")
    finally:
        periodic.is_periodic_grid = real
    print(json.dumps({"grid": dict(wrapped.sizes), "periodic_longitude": seam(wrapped, model.variables),
                      "zero_padding": seam(zero, model.variables), "inputs": seam(ds, model.variables)}, indent=1))


if __name__ == "__main__":
    main()
