"""OnModelGrid: a model scored on data of another spacing runs on its own spacing, as a forecast runs it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from climode.evaluation.model_grid import OnModelGrid, model_grid_shape, resample
from climode.models.base import ForecastOutput


class Persistence(nn.Module):
    """The last input at every query, and the grid it was called on."""

    def __init__(self, stride=1):
        super().__init__()
        self.config = type("Config", (), {"stride": stride})()
        self.seen = None

    def forward(self, inputs, input_times, query_times, input_mask=None, static=None, **kwargs):
        self.seen = tuple(inputs.shape[-2:])
        k = torch.as_tensor(query_times).shape[1]
        return ForecastOutput(frames=inputs[:, -1:].expand(-1, k, -1, -1, -1))


def _call(system, field):
    x = torch.as_tensor(field, dtype=torch.float32)[None, None, None].expand(1, 2, 1, *field.shape)
    times = torch.tensor([[0.0, 3.0]])
    return system(x, times, torch.tensor([[6.0, 9.0]]), torch.ones(1, 2)).frames[0, 0, 0].numpy()


def test_model_runs_on_its_spacing_and_the_forecast_comes_back_on_the_data_grid():
    lat = np.arange(20.0, 50.01, 1.25)  # 25 rows at 1.25 degrees
    lon = np.arange(280.0, 330.01, 2.5)  # 21 columns at 2.5 degrees
    inner = Persistence(stride=2)
    system = OnModelGrid(inner, lat, lon, dlat=3.75, dlon=3.75)
    assert system.model_shape == model_grid_shape(lat, lon, 3.75, 3.75) == (9, 14)
    field = 0.3 * lat[:, None] - 0.1 * lon[None, :]  # bilinear resampling keeps a linear field exactly
    out = _call(system, field)
    assert inner.seen == (10, 14)  # 9 x 14 cells of 3.75 degrees, padded to the encoder's stride
    assert out.shape == field.shape
    np.testing.assert_allclose(out, field, atol=1e-4)


def test_a_global_grid_is_resampled_across_the_seam():
    lon = np.arange(0.0, 360.0, 2.5)
    lat = np.arange(-30.0, 30.01, 2.5)
    field = np.cos(np.deg2rad(lon))[None, :] * np.ones((len(lat), 1))
    system = OnModelGrid(Persistence(), lat, lon, dlat=3.75, dlon=3.75)
    assert system.periodic and system.model_shape[1] == 96
    out = _call(system, field)
    # the last column interpolates towards the first (cos 357.5 ~ cos 0), not outwards
    assert abs(out[0, -1] - field[0, -1]) < 2e-3
    assert np.abs(out - field).max() < 2e-3


def test_resample_to_the_same_size_changes_nothing():
    x = torch.randn(2, 3, 7, 9)
    assert torch.allclose(resample(x, (7, 9), periodic=False), x, atol=1e-6)
    assert torch.allclose(resample(x, (7, 9), periodic=True), x, atol=1e-6)


@pytest.mark.parametrize("dlat", [1.0, 5.0])
def test_model_grid_shape_covers_the_domain(dlat):
    lat = np.arange(0.0, 40.01, 2.0)
    rows, cols = model_grid_shape(lat, np.arange(250.0, 300.01, 2.0), dlat, dlat)
    assert (rows - 1) * dlat == pytest.approx(40.0)
    assert (cols - 1) * dlat == pytest.approx(50.0)
