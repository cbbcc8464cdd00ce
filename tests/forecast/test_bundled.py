"""The bundled model: present, safe to load, documented, and the README's main job works."""

import json

import numpy as np

import climode
from climode.forecast.checkpoint import BUNDLED
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

    out = climode.run_forecast(None, "60h,63h", basin="atlantic", device="cpu", output=tmp_path / "f.nc")
    assert out.attrs["climode_disclaimer"] == DISCLAIMER
    assert np.isfinite(out["PSL"].values).all()
    centres = storm_centres(out)
    assert all(len(c) >= 1 for c in centres)  # the sample holds a tropical storm
    assert (out["PSL"].isel(time=1) != out["PSL"].isel(time=0)).any()


def test_bundled_model_beats_persistence_on_the_sample_season():
    """A cheap guard (4 windows of the held-out sample season, the paper's input offsets): at every lead from
    +3 h to +15 h, every variable's latitude-weighted RMSE is below persistence's."""
    from climode.forecast.sample import INPUT_HOURS, _season
    from climode.metrics.fields import lat_weights

    season = _season()[["U850", "V850", "PSL"]]
    model = climode.load_model(device="cpu")
    w = lat_weights(season.lat.values)[:, None]
    leads = [3, 6, 9, 12, 15]
    sq = {name: np.zeros((2, len(leads))) for name in season.data_vars}  # [model/persistence, lead]
    starts = (0, 24, 48, 71)
    for start in starts:
        steps = [start + h // 3 for h in INPUT_HOURS]
        fc = model.predict(season.isel(time=steps), ",".join(f"+{h}h" for h in leads))
        for name in sq:
            truth = season[name].values[[steps[-1] + h // 3 for h in leads]]
            last = season[name].values[steps[-1]]
            sq[name][0] += np.mean(w * (fc[name].values - truth) ** 2, axis=(1, 2)) / len(starts)
            sq[name][1] += np.mean(w * (last - truth) ** 2, axis=(1, 2)) / len(starts)
    for name, (model_mse, persistence_mse) in sq.items():
        ratio = np.sqrt(model_mse / persistence_mse)
        assert (ratio < 1.0).all(), f"{name}: RMSE ratio to persistence at +3..+15 h = {np.round(ratio, 2)}"
