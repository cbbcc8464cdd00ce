"""The bundled model: present, safe to load, documented, and the README's main job works."""

import json

import numpy as np

import climode
from climode.forecast.forecaster import BUNDLED
from climode.zoo import DISCLAIMER


def test_bundled_model_loads_with_its_metadata():
    meta = json.loads(BUNDLED.read_text())
    assert meta["schema_version"] >= 1 and meta["disclaimer"] == DISCLAIMER
    assert meta["variables"] == ["U850", "V850", "PSL"] and meta["recipe"]["name"] == "hurricanes_cpu"
    assert BUNDLED.with_suffix(".safetensors").stat().st_size < 5 * 2**20  # small enough to ship
    model = climode.load_model(device="cpu")
    assert model.name == "vidode" and model.n_inputs == 5


def test_default_forecast_moves_a_storm(tmp_path):
    from climode.forecast.storms import storm_centres

    out = climode.forecast(None, "60h,63h", basin="atlantic", device="cpu", output=tmp_path / "f.nc")
    assert out.attrs["climode_disclaimer"] == DISCLAIMER
    assert np.isfinite(out["PSL"].values).all()
    centres = storm_centres(out)
    assert all(len(c) >= 1 for c in centres)  # the sample holds a tropical storm
    assert (out["PSL"].isel(time=1) != out["PSL"].isel(time=0)).any()
