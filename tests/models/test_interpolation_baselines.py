"""Reference interpolations: frame blending and DIS optical-flow interpolation."""

import numpy as np
import torch

from climode.models.registry import get_model


def moving_square(positions, size=32):
    frames = np.zeros((len(positions), 3, size, size), np.float32)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    for t, p in enumerate(positions):
        frames[t] = (np.clip(4.5 - np.maximum(np.abs(y - 16), np.abs(x - p)), 0, 1) * 0.8 + 0.1)[None]
    return frames


def test_blend_is_the_linear_cross_fade_and_persistence_outside():
    frames = torch.from_numpy(moving_square([8, 14, 20]))[None]
    out = get_model("frame_blend", {"in_channels": 3})(frames, [0.0, 4.0, 8.0], [1.0, 4.0, 6.0, 9.0]).frames[0]
    torch.testing.assert_close(out[0], 0.75 * frames[0, 0] + 0.25 * frames[0, 1])
    torch.testing.assert_close(out[1], frames[0, 1])
    torch.testing.assert_close(out[2], 0.5 * frames[0, 1] + 0.5 * frames[0, 2])
    torch.testing.assert_close(out[3], frames[0, 2])


def test_flow_interpolation_moves_a_square_halfway_and_beats_blending():
    frames = moving_square([10, 16])
    truth = moving_square([13])[0]
    inputs = torch.from_numpy(frames)[None]
    flow = get_model("flow_interpolation", {"in_channels": 3})(inputs, [0.0, 2.0], [1.0]).frames[0, 0].numpy()
    blend = get_model("frame_blend", {"in_channels": 3})(inputs, [0.0, 2.0], [1.0]).frames[0, 0].numpy()
    column_mass = flow[0].sum(axis=0) - 0.1 * 32
    centre = float((column_mass * (np.arange(32) + 0.5)).sum() / column_mass.sum())
    assert abs(centre - 13.0) < 0.5
    assert np.abs(flow - truth).mean() < 0.5 * np.abs(blend - truth).mean()
