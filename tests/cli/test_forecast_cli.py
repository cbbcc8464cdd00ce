import json
import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import xarray as xr

from climode.cli.main import main


def test_forecast_json_and_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "f.nc"
    code = main(["forecast", "--checkpoint", str(checkpoint), "--basin", "atlantic", "--times", "60h,63h",
                 "--output", str(out), "--json", "--device", "cpu"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == str(out) and len(doc["times"]) == 2
    assert [row["lead_hours"] for row in doc["times"]] == [3.0, 6.0]
    assert len(doc["inputs"]) == 5
    assert xr.open_dataset(out).sizes["time"] == 2


def test_forecast_table_and_plot(checkpoint, tmp_path, capsys, caplog):
    png = tmp_path / "map.png"
    gif = tmp_path / "f.gif"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["forecast", "--checkpoint", str(checkpoint), "--times=-5h,+3h", "--output",
                     str(tmp_path / "f.zarr"), "--plot", str(png), "--animate", str(gif), "--device", "cpu"])
    assert code == 0
    assert not [w for w in caught if "zarr" in type(w.message).__name__.lower() or "zarr" in str(w.filename)]
    assert not [r for r in caplog.records if r.name == "shapefile"]  # pyshp's GSHHS hole warnings are silenced
    text = capsys.readouterr().out
    assert "reference time" in text and "(+3 h)" in text and "(-5 h)" in text and "written:" in text
    assert (tmp_path / "map_000.png").stat().st_size > 10_000 and gif.read_bytes()[:3] == b"GIF"
    store = xr.open_zarr(tmp_path / "f.zarr")
    assert store.sizes["time"] == 2 and "climode forecast --times=-5h,+3h" in store.attrs["history"]


def test_gif_frames_last_the_intended_milliseconds(forecaster, sample, tmp_path):
    from PIL import Image

    from climode.plotting import _title, animate_forecast

    fc = forecaster.predict(sample, "-6h,+3h,+6h")
    assert _title(fc, 0).endswith("valid 2000-08-03T03:00:00 (-6 h)") and _title(fc, 1).endswith("(+3 h)")
    for fps, ms in ((2.0, 500), (4.0, 250)):
        path = animate_forecast(fc, tmp_path / f"f{fps:g}.gif", fps=fps)
        with Image.open(path) as gif:
            durations = []
            for frame in range(gif.n_frames):
                gif.seek(frame)
                durations.append(gif.info["duration"])
        assert durations == [ms] * 3


def test_maps_have_coastlines_and_labelled_gridlines_offline(forecaster, sample, tmp_path, monkeypatch):
    """The shipped Natural Earth coastline is drawn (read once), with lat/lon labels; nothing downloads."""
    import cartopy.crs as ccrs
    import cartopy.feature
    import matplotlib
    from cartopy.mpl.gridliner import Gridliner

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import climode.plotting as plotting

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("a map tried to download"))
    plotting.coastline_geometries.cache_clear()
    fc = forecaster.predict(sample, "+3h,+6h")
    for _, fig in plotting._maps(fc, None, None):
        ax = fig.axes[0]
        fig.canvas.draw()
        coast = [a for a in ax.artists + ax.collections if isinstance(getattr(a, "_feature", None),
                                                                        cartopy.feature.ShapelyFeature)]
        assert coast, "no coastline artist on the map"
        extent = ax.get_extent(ccrs.PlateCarree())
        assert len(list(coast[0]._feature.intersecting_geometries(extent))) > 10  # the Americas' coasts
        grids = [a for a in ax.artists if isinstance(a, Gridliner)]
        labels = [t.get_text() for gl in grids for t in gl.label_artists if t.get_visible()]
        assert any(text.endswith("°W") for text in labels) and any(text.endswith("°N") for text in labels), labels
    plt.close("all")
    assert plotting.coastline_geometries.cache_info().misses == 1


def test_json_times_are_iso_8601_in_every_calendar(checkpoint, sample, tmp_path, capsys):
    import numpy as np

    standard = sample.assign_coords(time=[np.datetime64(t.isoformat()) for t in sample.time.values])
    standard.to_netcdf(tmp_path / "standard.nc")
    iso = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
    docs = []
    for k, data in enumerate(([], ["--data", str(tmp_path / "standard.nc")])):
        assert main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h", "--output",
                     str(tmp_path / f"f{k}.nc"), "--json", "--device", "cpu", *data]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    for doc in docs:
        stamps = [doc["forecast_reference_time"], *doc["inputs"], *(row["valid_time"] for row in doc["times"])]
        assert all(iso.match(s) for s in stamps), stamps
    assert docs[0]["times"][0]["valid_time"] == docs[1]["times"][0]["valid_time"] == "2000-08-03T12:00:00"


def test_output_name_and_plot_extra_are_checked_before_the_forecast_runs(checkpoint, tmp_path, monkeypatch, capsys):
    from climode.forecast import Forecaster

    def never(*args, **kwargs):
        raise AssertionError("the forecast ran")

    for name in ("predict", "predict_with_info"):
        monkeypatch.setattr(Forecaster, name, never)
    assert main(["forecast", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "out.txt")]) == 2
    assert "use a .nc or .zarr file name" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "cartopy.crs", None)  # cartopy not installed
    out = tmp_path / "f.nc"
    assert main(["forecast", "--checkpoint", str(checkpoint), "--output", str(out), "--plot", "m.png"]) == 2
    assert "pip install 'climode[plot]'" in capsys.readouterr().err and not out.exists()


def test_members_of_a_stochastic_checkpoint_are_written(checkpoint, tmp_path, capsys):
    import torch

    from climode.models.config import ModelConfig
    from climode.models.registry import get_model
    from climode.training.checkpoint import load_checkpoint, save_checkpoint

    meta = load_checkpoint(checkpoint).meta.to_dict()
    meta["config"] = ModelConfig.from_dict({**meta["config"], "sample_z0": True}).to_dict()
    torch.manual_seed(0)
    stochastic = save_checkpoint(tmp_path, get_model("vidode", meta["config"]), step=3, meta=meta)
    out = tmp_path / "ens.nc"
    assert main(["forecast", "--checkpoint", str(stochastic), "--times", "+3h", "--members", "2", "--output",
                 str(out), "--json", "--device", "cpu"]) == 0
    assert len(json.loads(capsys.readouterr().out)["times"]) == 1
    ens = xr.open_dataset(out)
    assert ens["PSL"].dims == ("member", "time", "lat", "lon") and ens["member"].attrs["standard_name"] == "realization"
    assert float(abs(ens["PSL"].isel(member=0) - ens["PSL"].isel(member=1)).max()) > 1e-3


def test_help_says_how_to_write_negative_times(capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    assert "--times=-5h" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--times", "soon"], "cannot read time"),
    (["--basin", "mars"], "unknown"),
    (["--basin", "WP"], "region"),
    (["--data", "/nonexistent/*.nc"], "no file"),
    (["--output", "out.txt"], ".nc or .zarr"),
    (["--times=99999d"], "at most 1024 ("),
    (["--checkpoint", "/nonexistent.json"], "not found"),
])
def test_bad_input_is_one_line_and_exit_code_2(checkpoint, tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "climode", "forecast", "--checkpoint", str(checkpoint),
                           "--device", "cpu", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("climode: error:") and message in lines[0].lower(), proc.stderr
