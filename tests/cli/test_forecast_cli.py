import json
import subprocess
import sys

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


def test_forecast_table_and_plot(checkpoint, tmp_path, capsys):
    png = tmp_path / "map.png"
    gif = tmp_path / "f.gif"
    code = main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h", "--output", str(tmp_path / "f.zarr"),
                 "--plot", str(png), "--animate", str(gif), "--device", "cpu"])
    assert code == 0
    text = capsys.readouterr().out
    assert "reference time" in text and "+3 h" in text and "written:" in text
    assert png.stat().st_size > 10_000 and gif.read_bytes()[:3] == b"GIF"
    assert xr.open_zarr(tmp_path / "f.zarr").sizes["time"] == 1


@pytest.mark.parametrize("args,message", [
    (["--times", "soon"], "cannot read time"),
    (["--basin", "mars"], "unknown"),
    (["--basin", "WP"], "region"),
    (["--data", "/nonexistent/*.nc"], "no file"),
    (["--output", "out.txt"], ".nc or .zarr"),
])
def test_bad_input_is_one_line_and_exit_code_2(checkpoint, tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "climode", "forecast", "--checkpoint", str(checkpoint),
                           "--device", "cpu", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("climode: error:") and message in lines[0].lower(), proc.stderr


def test_maps_draw_without_any_map_data(checkpoint, tmp_path, monkeypatch, caplog):
    import climode.plotting as plotting

    monkeypatch.setattr(plotting, "MAP_DATA_DIRS", ())
    monkeypatch.setattr(plotting, "_warned", False)
    monkeypatch.delenv("CLIMODE_MAP_DATA", raising=False)
    png = tmp_path / "map.png"
    assert main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h,+6h", "--output",
                 str(tmp_path / "f.nc"), "--plot", str(png), "--quiet", "--device", "cpu"]) == 0
    assert (tmp_path / "map_000.png").exists() and (tmp_path / "map_001.png").exists()
    assert sum("without coastlines" in r.message for r in caplog.records) == 1
