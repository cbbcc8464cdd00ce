"""Regenerate docs/figures/video_strip.png and docs/figures/video_x4.gif with the bundled video model.

    python docs/figures/make_video_figures.py

Held-out clips: the test split of the coloured bouncing balls (seed 2, never trained
on).  Each clip keeps every 4th frame; the bundled model, frame blending and the DIS
optical-flow interpolation fill the 3 frames between; the strip shows, per clip, the
truth and each method at the three in-between frames of one gap (rows: truth, model,
flow, blend).  The GIF plays the 4x-subsampled clip (left), the model's 4x
interpolation of it (middle) and the truth (right), enlarged 4x.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from climode.data.video import open_video_dataset
from climode.forecast.video import TimePlan, interpolate_frames, load_video_model
from climode.models.registry import get_model

HERE = Path(__file__).resolve().parent
CLIPS = (0, 3, 7, 11)
SCALE = 4


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """[T, 3, H, W] in [0, 1] -> uint8 [T, H, W, 3]."""
    return np.rint(np.clip(frames, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def main() -> None:
    model = load_video_model(device="cpu")
    test = open_video_dataset("bouncing_balls", split="test", channels=3, colored=True, n_sequences=max(CLIPS) + 1)
    references = {name: get_model(name, {"in_channels": 3}) for name in ("flow_interpolation", "frame_blend")}
    rows: list[list[np.ndarray]] = [[], [], [], []]
    for c in CLIPS:
        clip = test.clip(c)  # [20, 3, 32, 32]
        kept = to_uint8(clip[0:9:4])  # frames 0, 4, 8
        plan = TimePlan.factor(4, 1)
        predicted = dict(interpolate_frames(iter(kept), plan, model))
        inputs = torch.from_numpy(clip[0:9:4][None])
        queries = [5.0, 6.0, 7.0]
        ref = {n: to_uint8(m(inputs, [0.0, 4.0, 8.0], queries).frames[0].numpy()) for n, m in references.items()}
        truth = to_uint8(clip[5:8])
        for k in range(3):
            rows[0].append(truth[k])
            rows[1].append(predicted[Fraction(5 + k, 4)])
            rows[2].append(ref["flow_interpolation"][k])
            rows[3].append(ref["frame_blend"][k])
        for r in rows:
            r.append(np.full((32, 4, 3), 255, np.uint8))  # gap between clips
    strip = np.concatenate([np.concatenate(r[:-1], axis=1) for r in rows], axis=0)
    image = Image.fromarray(strip).resize((strip.shape[1] * 3, strip.shape[0] * 3), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (image.width + 60, image.height), "white")
    canvas.paste(image, (60, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(("truth", "model", "flow", "blend")):
        draw.text((4, i * 96 + 42), label, fill="black")
    canvas.save(HERE / "video_strip.png", optimize=True)

    clip = test.clip(CLIPS[1])
    kept = to_uint8(clip[0:17:4])  # 5 frames
    out = [f for _, f in interpolate_frames(iter(kept), TimePlan.factor(4, 1), model)]  # 17 frames
    truth = to_uint8(clip[:17])
    frames = []
    for j in range(17):
        held = kept[j // 4]
        row = np.concatenate([held, np.full((32, 2, 3), 255, np.uint8), out[j],
                              np.full((32, 2, 3), 255, np.uint8), truth[j]], axis=1)
        frames.append(Image.fromarray(row).resize((row.shape[1] * SCALE, 32 * SCALE), Image.Resampling.NEAREST))
    frames[0].save(HERE / "video_x4.gif", save_all=True, append_images=frames[1:], duration=120, loop=0,
                   optimize=True)
    print("wrote", HERE / "video_strip.png", HERE / "video_x4.gif")


if __name__ == "__main__":
    main()
