"""Wall time and peak memory of forecasts, cold (the CLI from process start) and warm (predict).

For 2, 8 and 64 requested times: the default ``climode forecast`` in a fresh
process, and ``Forecaster.predict`` in a warm one.  Many requested times cost
one decoder ODE solve plus one Conv-Decoder step per 3-hour grid point, not one
solve per time.  Prints one JSON line.

    python benchmarks/forecast.py [--repeats 3] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402

COUNTS = {2: "+3h,+6h", 8: "+3h..+24h/3h", 64: "+3h..+192h/3h"}


def cold(times: str, checkpoint: str | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "climode", "forecast", "--basin", "atlantic", "--times", times,
               "--output", str(Path(tmp) / "f.nc"), "--quiet", "--device", "cpu"]
        if checkpoint:
            cmd += ["--checkpoint", checkpoint]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return wall, peak


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkpoint")
    args = p.parse_args(argv)
    from climode.forecast import load_model
    from climode.forecast.sample import default_sample

    result: dict = {"benchmark": "forecast", "cold": {}, "warm": {}}
    for n, spec in COUNTS.items():
        runs = [cold(spec, args.checkpoint) for _ in range(args.repeats)]
        result["cold"][n] = {"wall_s": round(statistics.median(r[0] for r in runs), 3),
                             "peak_rss_mb": round(max(r[1] for r in runs), 1)}
    t0 = time.perf_counter()
    model = load_model(args.checkpoint, device="cpu")
    result["load_model_s"] = round(time.perf_counter() - t0, 3)
    sample = default_sample()
    model.predict(sample, "+3h")  # warm-up
    for n, spec in COUNTS.items():
        walls, nfe = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.predict(sample, spec, basin="atlantic")
            walls.append(time.perf_counter() - t0)
        result["warm"][n] = {"wall_s": round(statistics.median(walls), 3)}
    result["warm_peak_rss_mb"] = round(peak_rss_mb(), 1)
    w = result["warm"]
    result["warm_cost_per_extra_time_s"] = round((w[64]["wall_s"] - w[2]["wall_s"]) / 62, 4)
    result["machine"] = machine()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
