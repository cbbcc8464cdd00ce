"""The data catalog: the packaged entries, env-var paths, drivers, splits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import climode
from climode.data.catalog import default_catalog_path, expand, load_catalog
from climode.errors import ConfigError, DataError

CALLS: list[dict] = []
#: The repository's top level, whose data_catalog.yaml is the one source of truth.
ROOT = Path(__file__).resolve().parents[2]


def fake_generate(seed: int = 0, n: int = 3, **params) -> xr.Dataset:
    """A tiny generator: canonical fields whose values encode the seed, plus a truth track."""
    CALLS.append({"seed": seed, "n": n, **params})
    rng = np.random.default_rng(seed)
    time = np.array([np.datetime64("2001-01-01T00") + np.timedelta64(6 * k, "h") for k in range(n)])
    shape = (n, 3, 4)
    return xr.Dataset(
        {
            "U850": (("time", "lat", "lon"), rng.normal(size=shape), {"units": "m/s"}),
            "V850": (("time", "lat", "lon"), rng.normal(size=shape), {"units": "m/s"}),
            "PSL": (("time", "lat", "lon"), np.full(shape, 100000.0 + seed), {"units": "Pa"}),
            "track_lat": (("time", "storm"), np.zeros((n, 1))),
        },
        coords={"time": time, "lat": [0.0, 1.0, 2.0], "lon": [10.0, 11.0, 12.0, 13.0]},
    )


def _write_catalog(tmp_path, body: str):
    path = tmp_path / "catalog.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_packaged_catalog_entries(monkeypatch):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    cat = load_catalog()
    for name in ("cam5_hurricane", "synthetic_hurricanes", "ncl_storm_1996", "kth", "moving_gif",
                 "penn_action", "bouncing_balls", "moving_mnist"):
        entry = cat.get(name)
        assert entry.description and entry.obtain and entry.licence, name
    assert cat.get("cam5_hurricane").calendar == "noleap"
    syn = cat.get("synthetic_hurricanes")
    assert syn.generator == "climode.data.synthetic.hurricanes:generate"
    assert syn.splits == {"train": (0, 9999), "validation": (10000, 10999), "test": (20000, 20999)}
    assert cat.get("kth").driver == "video"
    with pytest.raises(ConfigError, match=r"no dataset 'era9'.*known: cam5_hurricane, synthetic_hurricanes"):
        cat.get("era9")


def test_the_catalog_read_is_the_top_level_file(monkeypatch):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    if not (ROOT / "data_catalog.yaml").is_file():
        pytest.skip("not a source checkout")
    assert default_catalog_path().read_bytes() == (ROOT / "data_catalog.yaml").read_bytes()
    assert not (ROOT / "climode" / "data" / "data_catalog.yaml").exists()  # no second copy to drift


def test_catalog_names_are_told_from_paths(tmp_path):
    from climode.data.open import is_catalog_name

    assert is_catalog_name("synthetic_hurricanes") and is_catalog_name("era5.v2")
    assert not is_catalog_name("storm.nc") and not is_catalog_name("store.zarr")
    assert not is_catalog_name(str(tmp_path)) and not is_catalog_name("data/*.nc")


@pytest.mark.slow
def test_the_wheel_carries_the_top_level_catalog_and_reads_it(tmp_path):
    if not (ROOT / "setup.py").is_file():
        pytest.skip("not a source checkout")
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "data_catalog.yaml"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "climode", source / "climode", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("climode-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    top = (ROOT / "data_catalog.yaml").read_bytes()
    assert (installed / "climode" / "data" / "data_catalog.yaml").read_bytes() == top
    code = "from climode.data.catalog import default_catalog_path as p; print(p()); print(p().read_bytes() == open(" \
           f"{str(ROOT / 'data_catalog.yaml')!r}, 'rb').read())"
    env = {k: v for k, v in os.environ.items() if k != "CLIMODE_CATALOG"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(installed)}, cwd=tmp_path,
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == [str(installed / "climode" / "data" / "data_catalog.yaml"), "True"]


def test_paths_expand_environment_with_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    monkeypatch.delenv("CLIMODE_DATA", raising=False)
    monkeypatch.delenv("CLIMODE_CAM5", raising=False)
    entry = load_catalog().get("cam5_hurricane")
    assert entry.expanded_paths() == [os.path.expanduser("~/climode_data/cam5/*.nc")]
    monkeypatch.setenv("CLIMODE_DATA", str(tmp_path))
    assert entry.expanded_paths() == [f"{tmp_path}/cam5/*.nc"]
    assert not entry.available()
    (tmp_path / "cam5").mkdir()
    assert not entry.available()
    (tmp_path / "cam5" / "x.nc").write_bytes(b"")
    assert entry.available()
    assert expand("${NOPE_XYZ:-/a}/b") == "/a/b"
    with pytest.raises(DataError, match="environment variable NOPE_XYZ is not set"):
        expand("${NOPE_XYZ}/b")


def test_catalog_override_and_netcdf_entry(monkeypatch, tmp_path, cam_like):
    src = cam_like()
    del src["PSL"].attrs["units"]  # the catalog supplies it
    src = src.rename({"PSL": "pres_msl"})
    (tmp_path / "data").mkdir()
    src.to_netcdf(tmp_path / "data" / "f.nc")
    path = _write_catalog(
        tmp_path,
        """
        datasets:
          mine:
            driver: netcdf
            paths: ${MY_ROOT}/*.nc
            variables: {PSL: pres_msl}
            units: {PSL: hPa}
            description: my data
        """,
    )
    monkeypatch.setenv("CLIMODE_CATALOG", str(path))
    monkeypatch.setenv("MY_ROOT", str(tmp_path / "data"))
    entry = load_catalog().get("mine")
    assert entry.available()
    ds = climode.open_dataset("mine")
    np.testing.assert_allclose(ds["PSL"].values, src["pres_msl"].values * 100.0)
    assert ds["PSL"].attrs["original_name"] == "pres_msl"


def test_synthetic_driver_splits_and_seeds(tmp_path):
    path = _write_catalog(
        tmp_path,
        f"""
        datasets:
          fake:
            driver: synthetic
            generator: {__name__}:fake_generate
            args: {{n: 4, strength: 2.5}}
            splits: {{train: [0, 99], test: [500, 599]}}
        """,
    )
    cat = load_catalog(path)
    assert cat.get("fake").available()
    CALLS.clear()
    ds = climode.open_dataset("fake", split="test", catalog=cat)
    assert CALLS == [{"seed": 500, "n": 4, "strength": 2.5}]
    assert ds.sizes["time"] == 4 and ds.attrs["climode_seed"] == 500
    assert float(ds["PSL"].mean()) == 100500.0
    assert "track_lat" in ds  # truth variables off the grid are kept
    again = climode.open_dataset("fake", split="test", seed=512, catalog=path)
    assert float(again["PSL"].mean()) == 100512.0
    with pytest.raises(ConfigError, match=r"seed 7 is outside split 'test' of 'fake' \(seeds 500..599\)"):
        climode.open_dataset("fake", split="test", seed=7, catalog=cat)
    with pytest.raises(ConfigError, match="has no split 'validation'; its splits are: train, test"):
        climode.open_dataset("fake", split="validation", catalog=cat)


def test_video_entries_and_bad_catalogs(tmp_path, cam_like):
    with pytest.raises(DataError, match="video datasets are opened with climode.data.video"):
        climode.open_dataset("moving_mnist")
    bad = _write_catalog(tmp_path, "datasets:\n  x: {driver: grib, paths: a.grb}\n")
    with pytest.raises(ConfigError, match=r"entry 'x': driver 'grib' is not one of netcdf, zarr, synthetic, video"):
        load_catalog(bad)
    overlap = _write_catalog(
        tmp_path, "datasets:\n  s: {driver: synthetic, generator: 'a:b', splits: {train: [0, 10], test: [5, 20]}}\n"
    )
    with pytest.raises(ConfigError, match="overlap"):
        load_catalog(overlap)
    typo = _write_catalog(tmp_path, "datasets:\n  y: {driver: netcdf, path: a.nc}\n")
    with pytest.raises(ConfigError, match=r"entry 'y': unknown field\(s\) path"):
        load_catalog(typo)
    with pytest.raises(ConfigError, match="split= and seed= apply only to synthetic"):
        climode.open_dataset(xr.Dataset(), split="test")


def test_ncl_storm_entry_available():
    entry = load_catalog().get("ncl_storm_1996")
    present = all(os.path.exists(p) for p in entry.expanded_paths())
    assert entry.available() == present
    assert entry.variables == {"U850": "u", "V850": "v", "PSL": "p"}
    assert "near-surface" in entry.description


def test_path_alternatives_first_existing_wins(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    (tmp_path / "fallback").mkdir()
    (tmp_path / "fallback" / "f.nc").write_bytes(b"")
    path = _write_catalog(
        tmp_path,
        f"""
        datasets:
          alt:
            driver: netcdf
            paths:
              - ["${{SITE_ROOT}}/f.nc", {tmp_path}/fallback/f.nc]
        """,
    )
    monkeypatch.delenv("SITE_ROOT", raising=False)
    entry = load_catalog(path).get("alt")
    assert entry.expanded_paths() == [f"{tmp_path}/fallback/f.nc"]  # unset variable: skipped
    monkeypatch.setenv("SITE_ROOT", str(tmp_path / "site"))
    assert entry.expanded_paths() == [f"{tmp_path}/fallback/f.nc"] and entry.available()  # set but empty
    (tmp_path / "site" / "f.nc").write_bytes(b"")
    assert entry.expanded_paths() == [f"{tmp_path}/site/f.nc"]
    (tmp_path / "site" / "f.nc").unlink()
    (tmp_path / "fallback" / "f.nc").unlink()
    assert not entry.available()
    assert entry.missing() == [f"{tmp_path}/site/f.nc or {tmp_path}/fallback/f.nc"]
    assert entry.expanded_paths() == [f"{tmp_path}/site/f.nc"]  # errors name the first alternative
    bad = _write_catalog(tmp_path, "datasets:\n  y: {driver: netcdf, paths: [[]]}\n")
    with pytest.raises(ConfigError, match="list of alternatives"):
        load_catalog(bad)


NCL_FILES = [f"/usr/share/ncarg/data/cdf/{n}storm.cdf" for n in "UVP"]


@pytest.mark.skipif(not all(os.path.exists(p) for p in NCL_FILES), reason="libncarg-data not installed")
def test_ncarg_root_does_not_hide_debian_files(tmp_path, monkeypatch):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    monkeypatch.setenv("NCARG_ROOT", str(tmp_path))  # an NCL install without the example data
    entry = load_catalog().get("ncl_storm_1996")
    assert entry.available() and entry.expanded_paths() == NCL_FILES
    assert climode.open_dataset("ncl_storm_1996").sizes["time"] == 64


def test_ncarg_root_install_layout_is_used(tmp_path, monkeypatch):
    """Files under $NCARG_ROOT/lib/ncarg/data/cdf (NCL's own layout) are found first."""
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    cdf = tmp_path / "lib" / "ncarg" / "data" / "cdf"
    cdf.mkdir(parents=True)
    for n in "UVP":
        (cdf / f"{n}storm.cdf").write_bytes(b"")
    monkeypatch.setenv("NCARG_ROOT", str(tmp_path))
    entry = load_catalog().get("ncl_storm_1996")
    assert entry.expanded_paths() == [str(cdf / f"{n}storm.cdf") for n in "UVP"] and entry.available()
