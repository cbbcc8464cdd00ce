import math

import numpy as np
import pytest
import xarray as xr

from climode.errors import ConfigError
from climode.metrics import cyclones as cy
from climode.metrics.cyclones import Centre, DetectionParams, TrackParams
from climode.metrics.streaming import score_tracks

DX = 0.5
LAT = np.arange(0.0, 40.0 + 1e-9, DX)
LON = np.arange(250.0, 300.0 + 1e-9, DX)


def holland(lat, lon, clat, clon, pc=96_000.0, dp=5_000.0, rmax_km=100.0, b=1.5):
    """Holland (1980) profile p(r) = p_c + dp * exp(-(R/r)^B)."""
    r = np.maximum(cy.haversine_km(clat, clon, lat[:, None], lon[None, :]), 1e-6)
    return pc + dp * np.exp(-((rmax_km / r) ** b))


def rankine_winds(lat, lon, clat, clon, vmax=40.0, rmax_km=100.0, sign=1.0):
    """Cyclonic (NH, counter-clockwise) Rankine vortex winds in m/s."""
    r = np.maximum(cy.haversine_km(clat, clon, lat[:, None], lon[None, :]), 1e-6)
    speed = np.where(r < rmax_km, vmax * r / rmax_km, vmax * rmax_km / r)
    dy = (lat[:, None] - clat) * 111.195
    dx = (lon[None, :] - clon) * 111.195 * np.cos(np.deg2rad(clat))
    return -sign * speed * dy / r, sign * speed * dx / r


def test_haversine_known_distances():
    assert cy.haversine_km(0, 0, 1, 0) == pytest.approx(2 * math.pi * 6371 / 360)
    assert cy.haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371)
    assert cy.haversine_km(10, 359.5, 10, 0.5) == pytest.approx(cy.haversine_km(10, -0.5, 10, 0.5))


def test_relative_vorticity_of_solid_body_rotation():
    lat = np.arange(-80.0, 80.1, 1.0)
    lon = np.arange(0.0, 360.0, 1.0)
    u = 20.0 * np.cos(np.deg2rad(lat))[:, None] * np.ones(lon.size)
    v = np.zeros_like(u)
    zeta = cy.relative_vorticity(u, v, lat, lon)
    expect = 2 * 20.0 * np.sin(np.deg2rad(lat)) / 6.371e6
    # second-order centred differences on a 1-degree grid: relative error ~ dphi^2
    np.testing.assert_allclose(zeta[1:-1, 5], expect[1:-1], rtol=1e-3, atol=1e-12)
    assert np.all(np.isfinite(zeta))


@pytest.mark.parametrize("clat,clon", [(20.3, 275.2), (20.1, 275.4), (15.4, 262.15)])
def test_holland_vortex_found_at_subgrid_position(clat, clon):
    psl = holland(LAT, LON, clat, clon)
    u, v = rankine_winds(LAT, LON, clat, clon)
    cs = cy.detect_centres(psl, LAT, LON, u, v)
    assert len(cs) == 1
    c = cs[0]
    assert abs(c.lat - clat) < 0.25 * DX and abs(c.lon - clon) < 0.25 * DX
    assert 96_000 <= c.min_psl < 96_050  # the grid minimum, near the true central pressure
    assert 35 < c.max_wind <= 40.0


def test_global_grid_wraps_in_longitude():
    lat = np.arange(-30.0, 30.1, 1.0)
    lon = np.arange(0.0, 360.0, 1.0)
    psl = holland(lat, lon, 12.3, 0.3, rmax_km=150)
    (c,) = cy.detect_centres(psl, lat, lon)
    assert cy.haversine_km(c.lat, c.lon, 12.3, 0.3) < 0.25 * 111


def test_weak_or_open_dips_are_ignored():
    # 1.5 hPa Gaussian dip: no closed 2 hPa contour
    r = cy.haversine_km(20, 275, LAT[:, None], LON[None, :])
    weak = 100_000.0 - 150.0 * np.exp(-((r / 200.0) ** 2))
    assert cy.detect_centres(weak, LAT, LON) == []
    # a 6 hPa local minimum on a 2 hPa/degree slope: its +2 hPa contour opens southward
    dlat = LAT[:, None] - 20.0
    dlon = (LON[None, :] - 275.0) * np.cos(np.deg2rad(20.0))
    open_dip = 100_000.0 + 200.0 * dlat - 600.0 * np.exp(-(dlat**2 + dlon**2) / 1.5**2)
    no_contour = DetectionParams(closed_contour_hpa=None, max_psl=100_500.0)
    assert len(cy.detect_centres(open_dip, LAT, LON, params=no_contour)) == 1  # it is a local minimum
    assert cy.detect_centres(open_dip, LAT, LON, params=DetectionParams(max_psl=None)) == []
    # on a gentler slope the same dip does close a 2 hPa contour
    closed_dip = open_dip - 150.0 * dlat
    assert len(cy.detect_centres(closed_dip, LAT, LON, params=DetectionParams(max_psl=None))) == 1
    # the same weak dip passes when only the pressure threshold is asked for
    found = cy.detect_centres(weak, LAT, LON, params=DetectionParams(closed_contour_hpa=None, max_psl=100_000))
    assert len(found) == 1


def test_vorticity_threshold_rejects_anticyclonic_winds():
    psl = holland(LAT, LON, 20.2, 275.2)
    params = DetectionParams(min_vorticity=1e-4)
    u, v = rankine_winds(LAT, LON, 20.2, 275.2)
    (c,) = cy.detect_centres(psl, LAT, LON, u, v, params)
    assert c.vorticity > 1e-4
    assert cy.detect_centres(psl, LAT, LON, -u, -v, params) == []
    with pytest.raises(ConfigError, match="u= and v="):
        cy.detect_centres(psl, LAT, LON, params=params)


def test_two_storms_are_separate_and_deepest_first():
    psl = np.minimum(holland(LAT, LON, 15.0, 260.0, pc=98_000), holland(LAT, LON, 30.0, 290.0, pc=95_000))
    cs = cy.detect_centres(psl, LAT, LON)
    assert [round(c.lat) for c in cs] == [30, 15]
    assert [round(c.min_psl) for c in cs] == [95_000, 98_000]
    # a shallower second minimum within merge_distance_deg of a deeper one is merged away
    close = np.minimum(holland(LAT, LON, 20.0, 270.0, pc=98_000), holland(LAT, LON, 20.0, 274.0, pc=95_000))
    assert len(cy.detect_centres(close, LAT, LON, params=DetectionParams(closed_contour_hpa=None))) == 1


def _moving_frames(n=5, step_deg=2.0, dt_h=6):
    times = np.array("2000-09-01T00", dtype="datetime64[h]") + np.arange(n) * np.timedelta64(dt_h, "h")
    psl = np.stack([holland(LAT, LON, 15.0 + 0.5 * k, 260.0 + step_deg * k) for k in range(n)])
    return times, psl


def test_moving_vortex_is_stitched_into_one_track_from_a_dataset():
    times, psl = _moving_frames()
    ds = xr.Dataset({"PSL": (("time", "lat", "lon"), psl)}, coords={"time": times, "lat": LAT, "lon": LON})
    tracks = cy.track(ds)
    assert len(tracks) == 1 and len(tracks[0]) == 5
    lons = [c.lon for c in tracks[0].centres]
    np.testing.assert_allclose(lons, 260.0 + 2.0 * np.arange(5), atol=0.25 * DX)
    assert list(tracks[0].times) == list(times)


def test_tracking_jump_limit_scales_with_time_step():
    # 2 degrees per step = ~210 km: within 500 km / 6 h for 6-hourly frames, not for 1-hourly ones
    c = [[Centre(15.0, 260.0 + 2.0 * k, 99_000.0)] for k in range(4)]
    assert len(cy.track(c, times=[0, 6, 12, 18])) == 1
    assert cy.track(c, times=[0, 1, 2, 3]) == []  # four one-point pieces, shorter than min_length
    assert len(cy.track(c, times=[0, 1, 2, 3], params=TrackParams(min_length=1))) == 4
    # a missing frame breaks the track unless max_gap allows it
    gap = {0: c[0], 6: c[1], 12: [], 18: c[3]}
    assert cy.track(gap, params=TrackParams(min_length=3)) == []
    (tr,) = cy.track(gap, params=TrackParams(min_length=3, max_gap=1))
    assert tr.times == [0, 6, 18]


def _truth():
    return {t: [Centre(20.0, 280.0 + 1.0 * k, 97_000.0, 40.0, t)] for k, t in enumerate([0, 6, 12, 18])}


def _shift(cbt, dlat=1.0, dpsl=300.0, dwind=-5.0):
    return {t: [Centre(c.lat + dlat, c.lon, c.min_psl + dpsl, c.max_wind + dwind, t) for c in cs] for t, cs in cbt.items()}


def test_scores_for_a_slightly_displaced_forecast():
    truth = _truth()
    s = score_tracks(_shift(truth), truth)
    d = cy.haversine_km(20, 280, 21, 280)
    assert s["pod"] == 1.0 and s["far"] == 0.0 and s["hits"] == 4
    assert s["track_error_km"] == pytest.approx(d)
    assert s["min_psl_error_hpa"] == pytest.approx(3.0) and s["min_psl_bias_hpa"] == pytest.approx(3.0)
    assert s["max_wind_error_ms"] == pytest.approx(5.0) and s["max_wind_bias_ms"] == pytest.approx(-5.0)
    assert s["penalised_track_error_km"] == pytest.approx(d)


def test_missing_storm_is_visible_and_not_rewarded():
    truth = _truth()
    displaced = score_tracks(_shift(truth, dlat=1.5), truth)
    empty = score_tracks({}, truth)
    blurred = score_tracks({t: [] for t in truth}, truth)
    for s in (empty, blurred):
        assert s["pod"] == 0.0 and s["misses"] == 4 and s["hits"] == 0
        assert math.isnan(s["track_error_km"])  # undefined, never a "perfect" 0
        assert math.isnan(s["far"])
        assert s["penalised_track_error_km"] == 300.0 > displaced["penalised_track_error_km"]
    # a half-detected storm: POD 0.5 and the penalised error sits between
    half = {t: (cs if t < 12 else []) for t, cs in _shift(truth).items()}
    s = score_tracks(half, truth)
    assert s["pod"] == 0.5 and s["track_error_km"] == pytest.approx(cy.haversine_km(20, 280, 21, 280))
    assert displaced["penalised_track_error_km"] < s["penalised_track_error_km"] < 300.0


def test_false_alarms_and_distance_limit():
    truth = _truth()
    fc = _shift(truth, dlat=0.5)
    for t in fc:
        fc[t] = fc[t] + [Centre(35.0, 260.0, 99_000.0, 20.0, t)]  # spurious storm far away
    s = score_tracks(fc, truth)
    assert s["hits"] == 4 and s["false_alarms"] == 4 and s["far"] == 0.5 and s["pod"] == 1.0
    far_off = score_tracks(_shift(truth, dlat=4.0), truth)  # ~445 km > 300 km
    assert far_off["hits"] == 0 and far_off["misses"] == 4 and far_off["false_alarms"] == 4


def test_matching_is_one_to_one_and_optimal():
    truth = {0: [Centre(10.0, 280.0, 1e5), Centre(12.0, 280.0, 1e5)]}
    fc = {0: [Centre(11.2, 280.0, 1e5), Centre(13.0, 280.0, 1e5)]}
    m = cy.match_tracks(fc, truth, 300)
    # greedy nearest would pair 11.2 with 12.0 (89 km) and leave 10.0 vs 13.0 (334 km) unmatched
    assert len(m.pairs) == 2 and not m.misses and not m.false_alarms
    assert sorted(round(p[3]) for p in m.pairs) == sorted(
        [round(cy.haversine_km(10, 280, 11.2, 280)), round(cy.haversine_km(12, 280, 13, 280))]
    )
    # tracks are accepted as well as {time: centres}
    tracks = cy.track(fc, params=TrackParams(min_length=1))
    assert score_tracks(tracks, truth)["hits"] == 2
