"""``climode extrapolate``: a video in, the video continued by a trained video model out
(:mod:`climode.forecast.video`)."""

from __future__ import annotations

import argparse

from climode.cli.interpolate import EPILOG, add_video_arguments, open_video_and_model, print_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("extrapolate", help="continue a video with a trained model",
                              description="Write the video followed by --frames predicted frames.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_video_arguments(p)
    p.add_argument("--frames", type=int, default=10, help="frames to add (default: %(default)s)")
    p.set_defaults(func=run_extrapolate)


def run_extrapolate(args: argparse.Namespace) -> int:
    from climode.forecast.video import extrapolate

    video, model = open_video_and_model(args)
    summary = extrapolate(video, args.output, frames=args.frames, model=model, overwrite=args.overwrite,
                          progress=not args.quiet)
    print_summary(summary, args.quiet)
    return 0
