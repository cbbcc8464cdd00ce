"""Peak memory and time of a dense request: many times off the decoder grid, from the bundled model.

The default asks for 1000 times every 0.1 h from +0.05 h to +99.95 h (none on
the 3-hour grid, all within the bundled model's 8x-trained-horizon limit of
+120 h) with ``Forecaster.predict`` in a fresh process after one warm-up
forecast (``benchmarks/forecast.py``'s warm worker): ``predict_extra_mb`` is
the peak resident memory while predicting minus the memory just before.  To
measure another version of climode, put its source first on ``PYTHONPATH``.
Prints one JSON line.

    python benchmarks/dense_forecast.py [--times "+0.05h..+99.95h/0.1h"] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from forecast import warm  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--times", default="+0.05h..+99.95h/0.1h")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--checkpoint")
    args = p.parse_args(argv)
    import climode

    result = {"benchmark": "dense_forecast", "times": args.times, "climode": str(Path(climode.__file__).parent),
              **warm(args.times, args.repeats, args.checkpoint), "machine": machine()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
