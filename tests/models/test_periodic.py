"""The whole globe: on a grid that goes once round, the model wraps in longitude."""

import numpy as np
import pytest
import torch
import xarray as xr

from climode.models.config import ModelConfig, SolverConfig
from climode.models.periodic import periodic_longitude
from climode.models.vidode import VidODE
from climode.models.warp import periodic_x, warp


def _model(n_downs=2):
    torch.manual_seed(3)
    cfg = ModelConfig.tiny(n_downs=n_downs, time_unit="hour", time_scale=24.0, decoder_step=3.0,
                           difference_mode="residual", encoder_solver=SolverConfig(method="euler", step_size=0.25),
                           decoder_solver=SolverConfig(method="euler", step_size=0.125))
    model = VidODE(cfg).eval()
    for m in model.modules():  # non-trivial running statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _forecast(model, x, periodic=True):
    with torch.no_grad(), periodic_longitude(model, periodic):
        return model(x, torch.tensor([0.0, 3.0, 6.0]), torch.tensor([9.0, 12.0])).frames


def test_rolling_a_global_input_rolls_the_forecast_by_the_same_columns():
    model = _model(n_downs=2)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 3, 16, 32)
    base = _forecast(model, x)
    assert torch.isfinite(base).all()
    for shift in (4, 8, 12, 28):  # every multiple of the encoder stride 4
        rolled = _forecast(model, torch.roll(x, shift, dims=-1))
        torch.testing.assert_close(rolled, torch.roll(base, shift, dims=-1), atol=1e-5, rtol=1e-4)
    # zero padding (outside the context) breaks this symmetry at the seam
    plain = _forecast(model, x, periodic=False)
    plain_rolled = _forecast(model, torch.roll(x, 8, dims=-1), periodic=False)
    assert (plain_rolled - torch.roll(plain, 8, dims=-1)).abs().max() > 1e-3


def test_context_restores_the_layers_and_the_weights_are_untouched():
    model = _model(n_downs=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    paddings = [m.padding for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    torch.manual_seed(1)
    x = torch.randn(1, 3, 3, 8, 16)
    before = _forecast(model, x, periodic=False)
    _forecast(model, x, periodic=True)
    assert [m.padding for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == paddings
    torch.testing.assert_close(_forecast(model, x, periodic=False), before, atol=0, rtol=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_periodic_warp_wraps_across_the_seam():
    image = torch.zeros(1, 1, 4, 8)
    image[0, 0, :, 7] = 1.0
    flow = torch.zeros(1, 2, 4, 8)
    flow[:, 0] = 2.0  # content moves 2 columns east
    with periodic_x():
        moved = warp(image, flow)
    assert torch.equal(moved[0, 0, :, 1], torch.ones(4))  # column 7 -> 9 = column 1
    assert moved.sum() == 4
    assert warp(image, flow)[0, 0, :, 1].sum() == 0  # border padding without the switch


def _global_world(shift=0):
    lat = np.arange(-84.0, 84.1, 12.0)  # 15 rows: padded to 16 with NaN by the forecaster
    lon = np.arange(0.0, 360.0, 11.25)  # 32 columns, once round
    rng = np.random.default_rng(0)
    shape = (5, lat.size, lon.size)
    base = {"U850": rng.normal(0, 6, shape), "V850": rng.normal(0, 4, shape),
            "PSL": 101000 + rng.normal(0, 500, shape)}
    times = np.datetime64("2000-01-01T00") + np.arange(5) * np.timedelta64(6, "h")
    return xr.Dataset({k: (("time", "lat", "lon"), np.roll(v, shift, axis=-1).astype(np.float32),
                           {"units": "Pa" if k == "PSL" else "m/s"}) for k, v in base.items()},
                      coords={"time": times, "lat": lat, "lon": lon})


@pytest.mark.parametrize("shift", [4, 16])
def test_forecaster_wraps_on_a_global_grid(checkpoint, shift):
    from climode.forecast import load_model

    model = load_model(checkpoint, device="cpu")
    model.grid = {}  # forecast on the data's own grid
    base = model.predict(_global_world(), "+6h,+12h")
    rolled = model.predict(_global_world(shift), "+6h,+12h")
    for v in ("U850", "V850", "PSL"):
        assert np.isfinite(base[v].values).all()  # polar rows included
        np.testing.assert_allclose(rolled[v].values, np.roll(base[v].values, shift, axis=-1), rtol=1e-4,
                                   atol=1e-5 * float(np.abs(base[v].values).max()))
