"""Every registered model is a ForecastModel and returns a ForecastOutput; Vid-ODE's adds G's outputs."""

import pytest
import torch

from climode.models.base import ForecastModel, ForecastOutput
from climode.models.registry import config_class, get_model, list_models
from climode.models.vidode import VidODE, VidODEOutput

ENTRIES = {e.name: e for e in list_models()}
NAMES = [n for n in ENTRIES if n not in ("pysteps_lk", "pysteps_vet")]  # pysteps is an optional dependency
TIMES = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
QUERIES = torch.tensor([4.5, 6.0])


@pytest.mark.parametrize("name", NAMES)
def test_every_model_is_called_the_same_way(name):
    torch.manual_seed(0)
    if ENTRIES[name].reference:
        grid = {"lat": torch.linspace(10, 40, 16).numpy(), "lon": torch.linspace(260, 300, 16).numpy()}
        model = get_model(name, {"in_channels": 2}, **(grid if name == "wind_advection" else {}))
    else:
        model = get_model(name, config_class(name).tiny(in_channels=2))
    model.eval()
    assert isinstance(model, ForecastModel)
    with torch.no_grad():
        out = model(torch.rand(2, 5, 2, 16, 16), TIMES, QUERIES)
    assert isinstance(out, ForecastOutput) and out.frames.shape == (2, 2, 2, 16, 16)
    assert isinstance(out, VidODEOutput) == isinstance(model, VidODE)  # G's F, D, M (Vid-RNN is a Vid-ODE)


def test_vidode_output_extends_the_shared_fields():
    frames = torch.zeros(1, 1, 1, 2, 2)
    out = VidODEOutput(frames=frames, nfe_decoder=3, diff=frames)
    assert isinstance(out, ForecastOutput) and out.nfe_decoder == 3 and out.diff is frames
    plain = ForecastOutput(frames=frames)
    assert plain.extra_losses == {} and plain.z0_std is None and not hasattr(plain, "flow")
