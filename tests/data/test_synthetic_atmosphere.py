"""The physical world: dinosaur's Held-Suarez atmosphere with tropical cyclones.

One low-resolution run (T21, 10 sigma levels, 1-hour steps) is shared by the
tests of balance and realism.  Its spin-up is 36 days instead of the default
120: the run starts at rest from the radiative-equilibrium temperature, whose
baroclinic jets break into eddies within about 10 days, and by day 30 the
storm-track statistics are those of the long runs (6-hour PSL changes of about
2.3 hPa in 30-60 degrees, 850 hPa jets of about 10 m/s; docs/data.md).
"""

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("dinosaur", reason="the physical world needs the physics extra: pip install 'climode[physics]'")

from climode.data.synthetic.atmosphere import AtmosphereConfig, generate_atmosphere, state_path  # noqa: E402
from climode.errors import ConfigError, DataError, MissingDependencyError  # noqa: E402

FAST = dict(resolution="T21", layers=10, dt_minutes=60.0, chunk_days=2.0)
EARTH_RADIUS = 6.371e6
OMEGA = 7.292e-5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("atmosphere") / "world.zarr"
    cfg = AtmosphereConfig(seed=3, days=6.0, spinup_days=36.0, cyclones_per_day=3.0, **FAST)
    generate_atmosphere(path, cfg, progress=False)
    return xr.open_zarr(path).load()


def _midlatitudes(ds):
    return (np.abs(ds["lat"].values) > 30) & (np.abs(ds["lat"].values) < 60)


def test_store_is_global_cf_and_says_psl_is_surface_pressure(world):
    assert world.sizes["lat"] == 32 and world.sizes["lon"] == 64 and world.sizes["time"] == 48
    assert np.all(np.diff(world["lat"].values) > 0) and world["lon"].values[0] == 0.0
    assert world.attrs["Conventions"] == "CF-1.8"
    assert "surface pressure is the sea-level pressure" in world.attrs["comment"]
    assert world["PSL"].attrs["standard_name"] == "air_pressure_at_mean_sea_level"
    assert world["U850"].attrs["units"] == "m/s" and world["PSL"].attrs["units"] == "Pa"
    hours = np.diff(xr.coding.times.encode_cf_datetime(world["time"].values, "hours since 2000-01-01",
                                                       "noleap")[0])
    assert np.all(hours == 3)
    for name in ("U850", "V850", "PSL"):
        assert np.isfinite(world[name].values).all()
    psl = world["PSL"].values / 100
    assert 900 < psl.min() and psl.max() < 1060 and 990 < psl.mean() < 1010


def test_westerly_jets_in_both_hemispheres(world):
    lat = world["lat"].values
    zonal = world["U850"].mean(("time", "lon")).values
    for hemisphere in (lat > 0, lat < 0):
        band = hemisphere & (np.abs(lat) > 25) & (np.abs(lat) < 65)
        assert zonal[band].max() > 4.0, zonal
        assert 25 < np.abs(lat[band][np.argmax(zonal[band])]) < 60
    tropics = np.abs(lat) < 15
    assert zonal[tropics].mean() < 0  # trade easterlies


def test_wind_and_pressure_are_in_geostrophic_balance_in_midlatitudes(world):
    lat, lon = world["lat"].values, world["lon"].values
    psl = world["PSL"].values
    # geostrophic meridional wind from the zonal PSL gradient (periodic in longitude), surface air density
    dx = np.deg2rad(lon[1] - lon[0]) * EARTH_RADIUS * np.cos(np.deg2rad(lat))[None, :, None]
    dpdx = (np.roll(psl, -1, axis=-1) - np.roll(psl, 1, axis=-1)) / (2 * dx)
    f = 2 * OMEGA * np.sin(np.deg2rad(lat))[None, :, None]
    vg = dpdx / (1.2 * f)
    band = _midlatitudes(world)
    v, vg = world["V850"].values[:, band].ravel(), vg[:, band].ravel()
    assert np.corrcoef(v, vg)[0, 1] > 0.8
    slope = np.dot(v, vg) / np.dot(vg, vg)
    assert 0.5 < slope < 1.3, slope  # friction and the thermal wind below 850 hPa make it sub-geostrophic


def test_lows_move_east_in_both_hemispheres(world):
    lat = world["lat"].values
    psl = world["PSL"].values
    anomaly = psl - psl.mean(axis=-1, keepdims=True)
    for hemisphere in (lat > 0, lat < 0):
        rows = hemisphere & _midlatitudes(world)
        shifts = np.arange(-6, 7)
        score = np.zeros(shifts.size)
        for k, s in enumerate(shifts):  # anomaly 12 h later against the field now shifted east by s columns
            score[k] = np.mean(anomaly[4:, rows] * np.roll(anomaly[:-4, rows], s, axis=-1))
        best = shifts[np.argmax(score)]
        assert best > 0, (best, score)  # eastward phase speed
        speed = best * np.deg2rad(5.625) * EARTH_RADIUS * np.cos(np.deg2rad(45)) / (12 * 3600)
        assert 2 < speed < 25


def test_six_hour_pressure_changes_in_the_storm_tracks_are_realistic(world):
    psl = world["PSL"].values / 100
    change = psl[2:] - psl[:-2]
    storm_tracks = change[:, _midlatitudes(world)].std()
    tropics = change[:, np.abs(world["lat"].values) < 10].std()
    assert 1.0 < storm_tracks < 5.0, storm_tracks  # real storm tracks: about 2-4 hPa
    assert tropics < storm_tracks


def _storms(world):
    ids = world["cyclone_id"].values
    out = {}
    for sid in np.unique(ids[ids >= 0]):
        t, slot = np.nonzero(ids == sid)
        out[int(sid)] = tuple(world[f"cyclone_{name}"].values[t, slot] for name in ("lat", "lon", "dp")) + (t,)
    return out


def test_cyclones_turn_the_right_way_and_move_poleward_in_both_hemispheres(world):
    lat, lon = world["lat"].values, world["lon"].values
    storms = _storms(world)
    moved = {1: [], -1: []}
    spin = {1: [], -1: []}
    for slat, slon, dp, t in storms.values():
        hemi = 1 if slat[0] > 0 else -1
        if t.size >= 8:
            moved[hemi].append(slat[-1] - slat[0])
        k = int(np.argmax(dp))  # at its deepest
        i, j = int(np.argmin(np.abs(lat - slat[k]))), int(np.argmin(np.abs(((lon - slon[k]) + 180) % 360 - 180)))
        if not 2 <= i < lat.size - 2:
            continue
        u, v = world["U850"].values[t[k]], world["V850"].values[t[k]]
        # circulation round the box of cells i-1..i+1, j-1..j+1 (counter-clockwise positive)
        jm, jp = (j - 1) % lon.size, (j + 1) % lon.size
        circulation = (v[i, jp] - v[i, jm]) - (u[i + 1, j] - u[i - 1, j])
        spin[hemi].append(np.sign(circulation))
    assert len(spin[1]) >= 2 and len(spin[-1]) >= 2, spin
    assert np.mean(spin[1]) > 0.5  # counter-clockwise in the north
    assert np.mean(spin[-1]) < -0.5  # clockwise in the south
    assert moved[1] and moved[-1]
    assert np.mean(moved[1]) > 0 and np.mean(moved[-1]) < 0  # poleward in each hemisphere


def test_interrupted_run_resumes_to_the_same_world(tmp_path, monkeypatch):
    import climode.data.synthetic.atmosphere as atmosphere

    cfg = AtmosphereConfig(seed=3, days=1.0, spinup_days=0.5, cyclones_per_day=8.0, **dict(FAST, chunk_days=0.25))
    whole = tmp_path / "whole.zarr"
    generate_atmosphere(whole, cfg, progress=False)

    real_save, calls = atmosphere._save_state, []

    def stop_after_the_third_chunk_is_appended(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # 2 spin-up chunks, 2 output chunks saved; the third is in the store, not the state
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    part = tmp_path / "part.zarr"
    monkeypatch.setattr(atmosphere, "_save_state", stop_after_the_third_chunk_is_appended)
    with pytest.raises(KeyboardInterrupt):
        generate_atmosphere(part, cfg, progress=False)
    assert xr.open_zarr(part).sizes["time"] == 6 and state_path(part).exists()
    monkeypatch.setattr(atmosphere, "_save_state", real_save)
    generate_atmosphere(part, cfg, progress=False)
    a, b = xr.open_zarr(whole).load(), xr.open_zarr(part).load()
    assert a.sizes["time"] == b.sizes["time"] == 8
    assert (a["cyclone_id"] >= 0).any()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    with pytest.raises(ConfigError, match="other settings"):
        generate_atmosphere(part, AtmosphereConfig(seed=4, **{**FAST, "days": 1.0, "spinup_days": 0.5}),
                           progress=False)


def test_existing_store_without_state_is_not_overwritten(tmp_path):
    store = tmp_path / "w.zarr"
    store.mkdir()
    with pytest.raises(DataError, match="already exists"):
        generate_atmosphere(store, AtmosphereConfig(days=1.0, spinup_days=0.0, **FAST), progress=False)
    with pytest.raises(ConfigError, match="zarr store"):
        generate_atmosphere(tmp_path / "w.nc", AtmosphereConfig(days=1.0, **FAST), progress=False)


def test_missing_extra_names_it(monkeypatch):
    import sys

    from climode.data.synthetic.atmosphere import require_physics

    monkeypatch.setitem(sys.modules, "dinosaur", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'climode\[physics\]'"):
        require_physics()
