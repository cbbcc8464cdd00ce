"""``climode data list|inspect|synth`` through the real entry point."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from climode.cli.main import main

NCL_DIR = "/usr/share/ncarg/data/cdf"


def _cam_file(path, nt=4, psl_name="PSL"):
    lat = np.array([10.0, 12.5, 15.0])
    lon = np.array([100.0, 102.5, 105.0, 107.5])
    shape = (nt, lat.size, lon.size)
    u = np.arange(np.prod(shape), dtype="float32").reshape(shape)
    v = -u
    v[2] = np.nan  # one step without V
    u[0, 0, 0] = np.nan
    psl = np.full(shape, 101325.0, dtype="float32")
    xr.Dataset(
        {
            "U850": (("time", "lat", "lon"), u, {"units": "m/s"}),
            "V850": (("time", "lat", "lon"), v, {"units": "m/s"}),
            psl_name: (("time", "lat", "lon"), psl, {"units": "Pa"}),
        },
        coords={
            "time": ("time", 3.0 * np.arange(nt), {"units": "hours since 1980-01-01", "calendar": "noleap"}),
            "lat": lat,
            "lon": lon,
        },
    ).to_netcdf(path)


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["name", "driver", "available", "description"]
    table = lines[2 : lines.index("") if "" in lines else len(lines)]
    rows = {line.split()[0]: line.split()[1:3] for line in table}
    assert rows["cam5_hurricane"][0] == "netcdf"
    assert rows["kth"] == ["video", "no"] or rows["kth"][0] == "video"
    expected = "yes" if os.path.exists(f"{NCL_DIR}/Pstorm.cdf") else "no"
    assert rows["ncl_storm_1996"] == ["netcdf", expected]


def test_data_list_names_the_missing_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    monkeypatch.setenv("CLIMODE_CAM5", str(tmp_path / "cam5"))
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    missing = lines[lines.index("") + 2 :]
    assert lines[lines.index("") + 1].startswith("missing paths")
    assert f"cam5_hurricane {tmp_path}/cam5/*.nc" in [" ".join(line.split()) for line in missing]
    assert not any(line.split()[0] == "synthetic_hurricanes" for line in missing)
    (tmp_path / "cam5").mkdir()
    (tmp_path / "cam5" / "a.nc").write_bytes(b"")
    assert main(["data", "list"]) == 0
    assert "cam5_hurricane  " not in capsys.readouterr().out.split("missing paths")[-1]


def test_inspect_absent_catalog_data_says_how_to_obtain_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    monkeypatch.setenv("CLIMODE_CAM5", str(tmp_path))
    assert main(["data", "inspect", "cam5_hurricane"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"no files match {tmp_path}/*.nc" in err
    assert "to obtain cam5_hurricane: Not downloadable from here: copy the CAM5 history files" in err
    assert "set CLIMODE_CAM5 to the directory that holds them" in err


def test_inspect_valid_file(tmp_path, capsys):
    _cam_file(tmp_path / "ok.nc")
    assert main(["data", "inspect", str(tmp_path / "ok.nc")]) == 0
    out = capsys.readouterr().out
    assert "U850   m/s  missing 2.1%" in out  # 1 of 48 values
    assert "V850   m/s  missing 25.0%" in out  # 1 of 4 steps
    assert "grid: 3 lat x 4 lon, resolution 2.5 x 2.5 degrees" in out
    assert "lon: 100 .. 107.5 degrees_east" in out
    assert "time: 1980-01-01 00:00 .. 1980-01-01 09:00, 4 steps, every 3 h, calendar noleap" in out
    assert "V850: 1 (1980-01-01 06:00)" in out


def test_inspect_invalid_file_exits_nonzero_with_one_line(tmp_path, capsys):
    _cam_file(tmp_path / "ps.nc", psl_name="PS")
    assert main(["data", "inspect", str(tmp_path / "ps.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("climode: error:") and "no PSL" in err and "surface pressure" in err
    # asking only for the winds is fine
    assert main(["data", "inspect", str(tmp_path / "ps.nc"), "--variables", "U850", "V850"]) == 0


@pytest.mark.skipif(not os.path.exists(f"{NCL_DIR}/Vstorm.cdf"), reason="libncarg-data not installed")
def test_inspect_ncl_storm(capsys):
    assert main(["data", "inspect", "ncl_storm_1996"]) == 0
    out = capsys.readouterr().out
    assert "64 steps, every 6 h" in out and "V850: 2 (1996-01-09 06:00, 1996-01-14 06:00)" in out


def test_synth_hurricanes(tmp_path, capsys):
    pytest.importorskip("climode.data.synthetic.hurricanes")
    out = tmp_path / "syn.nc"
    args = ["data", "synth", "hurricanes", "--output", str(out), "--seed", "3", "--days", "2", "--resolution", "3"]
    assert main(args) == 0
    ds = xr.open_dataset(out)
    assert {"U850", "V850", "PSL"} <= set(ds.data_vars)
    step_h = (ds["time"].values[1] - ds["time"].values[0]).total_seconds() / 3600.0
    assert ds.sizes["time"] * step_h == pytest.approx(48.0)  # --days 2 reached the generator
    assert float(ds["lat"][1] - ds["lat"][0]) == pytest.approx(3.0)  # --resolution 3
    assert main(["data", "inspect", str(out)]) == 0


def test_synth_atmosphere_writes_a_store_that_climode_opens(tmp_path, capsys):
    pytest.importorskip("dinosaur", reason="the physical world needs the physics extra: pip install 'climode[physics]'")
    out = tmp_path / "world.zarr"
    args = ["data", "synth", "atmosphere", "--output", str(out), "--seed", "3", "--days", "0.5", "--resolution",
            "T21", "--layers", "10", "--dt-minutes", "60", "--spinup-days", "0.25", "--quiet"]
    assert main(args) == 0
    assert "T21 grid" in capsys.readouterr().out
    assert main(["data", "inspect", str(out)]) == 0  # canonical U850/V850/PSL on a global grid
    assert "4 steps, every 3 h" in capsys.readouterr().out
    assert main(["data", "synth", "hurricanes", "--output", str(tmp_path / "h.nc"), "--resolution", "T21"]) == 2
    assert "grid spacing in degrees" in capsys.readouterr().err
    assert main(["data", "synth", "atmosphere", "--output", str(tmp_path / "a.zarr"), "--resolution", "T5"]) == 2
    assert "T21, T31, T42" in capsys.readouterr().err
    # --output-hours: hourly frames (targets between a 3-hour decoder grid); not a hurricane-world option
    hourly = tmp_path / "hourly.zarr"
    assert main([*args[:3], "--output", str(hourly), *args[5:]] + ["--output-hours", "1"]) == 0
    capsys.readouterr()
    assert main(["data", "inspect", str(hourly)]) == 0
    assert "12 steps, every 1 h" in capsys.readouterr().out
    assert main(["data", "synth", "hurricanes", "--output", str(tmp_path / "h2.nc"), "--output-hours", "1"]) == 2
    assert "--output-hours" in capsys.readouterr().err
