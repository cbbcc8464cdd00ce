import torch

from climode.models.decoder import DecoderStep, compose
from climode.models.warp import warp


def test_zero_flow_with_mask_one_reproduces_previous_frame():
    torch.manual_seed(0)
    prev = torch.rand(2, 3, 24, 32)
    step = DecoderStep(flow=torch.zeros(2, 2, 24, 32), diff=torch.rand(2, 3, 24, 32), mask=torch.ones(2, 1, 24, 32))
    out = compose(step, prev, use_warp=True, use_composition=True, difference_mode="image")
    assert torch.allclose(out, prev, atol=1e-6, rtol=0)


def test_integer_flow_moves_pattern_by_that_shift():
    image = torch.zeros(1, 1, 20, 20)
    image[0, 0, 5:8, 4:6] = 1.0
    flow = torch.zeros(1, 2, 20, 20)
    flow[:, 0] = 3  # +3 px in x
    flow[:, 1] = -2  # -2 px in y
    moved = warp(image, flow)
    expected = torch.zeros_like(image)
    expected[0, 0, 3:6, 7:9] = 1.0
    assert torch.equal(moved, expected)


def test_fractional_flow_matches_grid_sample_bilinear():
    torch.manual_seed(1)
    image = torch.rand(2, 3, 12, 15)
    flow = torch.randn(2, 2, 12, 15) * 2
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(15.0), indexing="ij")
    grid = torch.stack([2 * (xs - flow[:, 0]) / 14 - 1, 2 * (ys - flow[:, 1]) / 11 - 1], dim=-1)
    ref = torch.nn.functional.grid_sample(image, grid, align_corners=True, padding_mode="border")
    assert torch.allclose(warp(image, flow), ref, atol=1e-5)


def test_composition_modes():
    prev = torch.full((1, 1, 4, 4), 2.0)
    step = DecoderStep(flow=torch.zeros(1, 2, 4, 4), diff=torch.full((1, 1, 4, 4), 0.5), mask=torch.full((1, 1, 4, 4), 0.25))
    image = compose(step, prev, use_warp=True, use_composition=True, difference_mode="image")
    residual = compose(step, prev, use_warp=True, use_composition=True, difference_mode="residual")
    assert torch.allclose(image, torch.full_like(prev, 0.25 * 2 + 0.75 * 0.5))
    assert torch.allclose(residual, torch.full_like(prev, 0.25 * 2 + 0.75 * 2.5))
    assert torch.equal(compose(step, prev, use_warp=True, use_composition=False, difference_mode="image"), prev)
    assert torch.equal(compose(step, prev, use_warp=False, use_composition=False, difference_mode="image"), step.diff)
