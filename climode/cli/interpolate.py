"""``climode interpolate``: a video in, the same video at another frame rate out, with a trained
video model (:mod:`climode.forecast.video`); the options shared with ``climode extrapolate``."""

from __future__ import annotations

import argparse

EPILOG = """
VIDEO is an mp4, avi, mkv, mov, webm or GIF file, or a folder of frame images (natural
name order, --input-fps, default 25). OUT is .mp4/.mkv/.mov (H.264), .gif, or a name
without suffix for a folder of PNG frames (lossless). Without --checkpoint the bundled
RGB model runs (trained on synthetic coloured bouncing balls; see docs/video_model_card.md).
"""


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", metavar="VIDEO", help="video file or folder of frame images")
    p.add_argument("--output", "-o", required=True, metavar="OUT", help="output .mp4, .gif, or PNG folder")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--checkpoint", help="a video checkpoint (.json/.safetensors, run directory or bundled name); "
                                        "default: the bundled RGB model")
    p.add_argument("--input-fps", metavar="FPS", help="frame rate of VIDEO (default: from the file; 25 for a folder)")
    p.add_argument("--tile", type=int, help="tile size in pixels (default: the model's training size)")
    p.add_argument("--overlap", type=int, help="tile overlap in pixels (default: a quarter of the tile)")
    p.add_argument("--no-mirrors", dest="mirrors", action="store_false",
                   help="skip the mirror self-ensemble (the model on the frames and their 3 mirror images, "
                        "averaged): 4x faster, slightly less accurate frames")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no progress bar, print nothing but errors")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("interpolate", help="convert a video's frame rate with a trained model",
                              description="Frame-rate conversion: original frames pass through unchanged, new "
                                          "frames come from the model at their exact fractional times.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_video_arguments(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--factor", type=int, help="k times the frame rate: N frames become k(N-1)+1")
    how.add_argument("--fps", help="a new frame rate (e.g. 60 or 30000/1001)")
    how.add_argument("--times", help="explicit output times in seconds, comma-separated (e.g. 0,0.02,0.1)")
    p.set_defaults(func=run_interpolate)


def open_video_and_model(args: argparse.Namespace):
    from climode.data.video_io import check_output, open_video
    from climode.forecast.video import load_video_model

    check_output(args.output, args.overwrite)  # before any decoding or model loading
    video = open_video(args.video, fps=args.input_fps)
    model = load_video_model(args.checkpoint, args.device, tile=args.tile, overlap=args.overlap, mirrors=args.mirrors)
    return video, model


def print_summary(summary: dict, quiet: bool) -> None:
    if not quiet:
        rate = f" at {summary['fps_out']:g} fps" if summary.get("fps_out") else ""
        print(f"wrote {summary['output']}: {summary['frames_out']} frames{rate} "
              f"from {summary['frames_in']} at {summary['fps_in']:g} fps")


def run_interpolate(args: argparse.Namespace) -> int:
    from climode.errors import ConfigError
    from climode.forecast.video import interpolate

    times = None
    if args.times is not None:
        try:
            times = [float(t) for t in args.times.split(",") if t.strip()]
        except ValueError:
            raise ConfigError(f"--times {args.times!r} must be seconds separated by commas, e.g. 0,0.5,1.25") from None
    video, model = open_video_and_model(args)
    summary = interpolate(video, args.output, factor=args.factor, fps=args.fps, times=times, model=model,
                          overwrite=args.overwrite, progress=not args.quiet)
    print_summary(summary, args.quiet)
    return 0

