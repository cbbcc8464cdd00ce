"""Wall time, peak memory and NFE of forecasts, cold (the CLI from process start) and warm (predict).

For 2, 8 and 32 requested times (3-hourly from +3 h), and for 1 and 2 times at
the 32-time horizon (+96 h, within the bundled model's limit of 8x its trained horizon): the default ``climode forecast`` in a fresh
process (cold), and ``Forecaster.predict`` in a process that has loaded the
model and made one forecast already (warm).  Every run is its own child
process, so each row's peak memory is that run's own ``ru_maxrss`` (read with
``os.wait4``), not a running maximum over all children.  Many requested times
cost one decoder ODE solve plus one Conv-Decoder step per 3 hours of horizon,
not one solve per time: the NFE columns and the same-horizon rows show it.
Prints one JSON line.

    python benchmarks/forecast.py [--repeats 3] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

#: label -> (number of requested times, --times, horizon in hours after the last input)
CASES = {
    "2": (2, "+3h,+6h", 6),
    "8": (8, "+3h..+24h/3h", 24),
    "32": (32, "+3h..+96h/3h", 96),
    "1@96h": (1, "+96h", 96),
    "2@96h": (2, "+3h,+96h", 96),
}


def _run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; its wall time (s), its own peak RSS (MB, from wait4's rusage) and its stdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
        out.seek(0)
        return wall, usage.ru_maxrss / 1024.0, out.read()


def cold(times: str, checkpoint: str | None) -> tuple[float, float]:
    """Wall time and peak RSS of one ``climode forecast`` from process start."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "climode", "forecast", "--basin", "atlantic", f"--times={times}",
               "--output", str(Path(tmp) / "f.nc"), "--quiet", "--device", "cpu"]
        if checkpoint:
            cmd += ["--checkpoint", checkpoint]
        wall, peak, _ = _run_child(cmd)
    return wall, peak


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def warm_worker(times: str, repeats: int, checkpoint: str | None) -> dict:
    """In this process: load, forecast once (+3 h), then time ``predict(times)``.

    The peak RSS is reset after the warm-up (``/proc/self/clear_refs``), so
    ``peak_rss_mb`` is the peak while predicting ``times`` only, and
    ``predict_extra_mb`` that peak minus the resident memory just before.
    """
    import gc

    from climode.forecast import load_model
    from climode.forecast.sample import default_sample

    t0 = time.perf_counter()
    model = load_model(checkpoint, device="cpu")
    load_s = time.perf_counter() - t0
    sample = default_sample()
    model.predict(sample, "+3h", basin="atlantic")  # warm-up
    gc.collect()
    before = _status_mb("VmRSS")
    reset = _reset_peak()
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, info = model.predict_with_info(sample, times, basin="atlantic")
        walls.append(time.perf_counter() - t0)
    peak = _status_mb("VmHWM")
    return {"wall_s": round(statistics.median(walls), 3), "wall_min_s": round(min(walls), 3),
            "load_model_s": round(load_s, 3),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "predict_extra_mb": round(peak - before, 1) if reset else None,
            "nfe_encoder": info.nfe_encoder, "nfe_decoder": info.nfe_decoder}


def warm(times: str, repeats: int, checkpoint: str | None) -> dict:
    """:func:`warm_worker` in a fresh child process, so its peak memory is its own."""
    cmd = [sys.executable, __file__, "--warm-worker", times, "--repeats", str(repeats)]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    _, _, out = _run_child(cmd)
    return json.loads(out)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkpoint")
    p.add_argument("--warm-worker", metavar="TIMES", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warm_worker:
        print(json.dumps(warm_worker(args.warm_worker, args.repeats, args.checkpoint)))
        return {}
    result: dict = {"benchmark": "forecast", "cases": {}}
    for label, (n, spec, horizon) in CASES.items():
        runs = [cold(spec, args.checkpoint) for _ in range(args.repeats)]
        result["cases"][label] = {
            "n_times": n, "times": spec, "horizon_h": horizon,
            "cold": {"wall_s": round(statistics.median(r[0] for r in runs), 3),
                     "wall_min_s": round(min(r[0] for r in runs), 3),
                     "peak_rss_mb": round(statistics.median(r[1] for r in runs), 1)},
            "warm": warm(spec, args.repeats, args.checkpoint),
        }
    c = result["cases"]
    result["warm_s_per_extra_time"] = round((c["32"]["warm"]["wall_s"] - c["2"]["warm"]["wall_s"]) / 30, 4)
    result["warm_s_per_extra_time_same_horizon"] = round(
        (c["32"]["warm"]["wall_s"] - c["1@96h"]["warm"]["wall_s"]) / 31, 4)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews walls
    result["machine"] = machine()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
