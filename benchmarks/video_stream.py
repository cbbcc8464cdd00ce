"""Peak memory and time of ``climode interpolate`` against the video's length (streaming windows).

    python benchmarks/video_stream.py --frames 20 160 --size 96

For each length, an H.264 video of a disc moving over a gradient is written with
PyAV, then ``climode interpolate --factor 2`` runs in a fresh subprocess; its peak
resident memory (ru_maxrss of the child) and wall time are reported as JSON with the
frames decoded, the model calls (windows) and the tiles per frame.  Prediction: the
peak does not depend on the length (only ``n_inputs`` decoded frames and one window's
tiles are held), and time grows linearly with it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402


def write_video(path: Path, n: int, size: int) -> None:
    c = np.arange(size) + 0.5
    background = np.stack(np.meshgrid(c, c)[::-1], axis=-1).sum(-1)[..., None] / (2 * size) * [60, 90, 120]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(n):
            x = size / 2 + size / 3 * math.sin(t / 7)
            cover = np.clip(6.5 - np.hypot(c[:, None] - size / 2, c[None, :] - x), 0, 1)[..., None]
            frame = np.rint(background * (1 - cover) + cover * [230, 200, 80]).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 160])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--no-mirrors", action="store_true", help="pass --no-mirrors to climode interpolate")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            src = Path(tmp) / f"in{n}.mp4"
            write_video(src, n, args.size)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "climode", "interpolate", str(src), "--factor", "2", "--quiet",
                            "--output", str(Path(tmp) / f"out{n}.mp4")] + (["--no-mirrors"] if args.no_mirrors else []),
                           check=True)
            seconds = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            rows.append({"frames_in": n, "frames_out": 2 * (n - 1) + 1, "windows": math.ceil((n - 1) / 2),
                         "tiles_per_frame": math.ceil((args.size - 8) / 24) ** 2, "seconds": round(seconds, 2),
                         # ru_maxrss of children is the largest child so far: only an increase is this run's
                         "peak_rss_mb": round(peak / 1024, 1), "peak_rose": peak > before})
    print(json.dumps({"benchmark": "video_stream", "size": args.size, "mirrors": not args.no_mirrors, "machine": machine(),
                      "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
