"""Paper tiling, grid tiling with padding/overlap, stitching and pad_to_multiple."""

import numpy as np
import pytest
import xarray as xr

from climode.basins import Tiler, pad_to_multiple, paper_tiles, subset
from climode.errors import ConfigError, DataError


def _field(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _da(ny=50, nx=77, nt=3):
    lat = np.linspace(-20, 29, ny)
    lon = np.arange(nx) * 1.5 + 200.0
    data = _field((nt, 2, ny, nx))
    return xr.DataArray(
        data,
        dims=("time", "variable", "lat", "lon"),
        coords={"time": np.arange(nt), "variable": ["U850", "PSL"], "lat": lat, "lon": lon},
        name="fields",
        attrs={"units": "mixed"},
    )


# ----------------------------------------------------------------- paper tiles


def test_paper_tiles_layout():
    tiles = paper_tiles()
    assert len(tiles) == 9
    assert sorted({(t.lat_min, t.lat_max) for t in tiles}) == [(-90, -30), (-30, 30), (30, 90)]
    assert all(t.lat_span == 60 and t.lon_span == 160 for t in tiles)
    assert [t.lon_min for t in tiles[:3]] == [0, 120, 240]
    assert tiles[2].wraps and tiles[2].lon_max == 40
    # every neighbouring pair overlaps by the same 40 degrees, the seam pair included
    starts = [t.lon_min for t in tiles[:3]]
    gaps = np.diff(starts + [starts[0] + 360])
    assert np.all(160 - gaps == 40)


@pytest.mark.parametrize("dlat, dlon, lat0", [(1.0, 1.0, -90.0), (2.5, 1.25, -88.75), (0.9424, 1.25, -90.0)])
def test_paper_tiles_cover_every_grid_point(dlat, dlon, lat0):
    lat = np.arange(lat0, 90.0 + 1e-9, dlat)
    lon = np.arange(0.0, 360.0, dlon)
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    count = sum(t.contains(glat, glon).astype(int) for t in paper_tiles())
    assert count.min() >= 1
    # the same holds through subset: the union of the cut tiles is the whole grid
    ds = xr.Dataset({"PSL": (("lat", "lon"), glat * 1000 + glon)}, coords={"lat": lat, "lon": lon})
    seen = np.zeros(glat.shape, bool)
    for t in paper_tiles():
        part = subset(ds, t)
        i = np.searchsorted(lat, part.lat.values)
        j = np.searchsorted(lon, np.mod(part.lon.values, 360.0))
        seen[np.ix_(i, j)] = True
        assert np.all(np.diff(part.lon.values) > 0)
    assert seen.all()


def test_paper_tiles_other_sizes():
    exact = paper_tiles(60, 120)
    assert [t.lon_min for t in exact[:3]] == [0, 120, 240] and not any(t.wraps for t in exact)
    rows = paper_tiles(50, 360)
    assert len(rows) == 4
    np.testing.assert_allclose([t.lat_min for t in rows], [-90, -90 + 130 / 3, -90 + 260 / 3, 40])
    lat_edges = [(t.lat_min, t.lat_max) for t in rows]
    assert lat_edges[0][0] == -90 and lat_edges[-1][1] == 90
    assert all(b - a == 50 for a, b in lat_edges)
    assert rows[0].lon_span == 360
    shifted = paper_tiles(lon_start=-20)
    assert [t.lon_min for t in shifted[:3]] == [340, 100, 220]
    with pytest.raises(ConfigError):
        paper_tiles(lat_size=0)
    with pytest.raises(ConfigError):
        paper_tiles(lon_size=400)


# ----------------------------------------------------------------- plans


def test_plan_pads_remainders_instead_of_dropping():
    plan = Tiler((16, 32), (0, 0), multiple=4).plan(50, 77)
    assert plan.grid == (4, 3)
    assert plan.padded_shape == (64, 96)
    assert plan.pad == ((7, 7), (9, 10))
    assert plan.coverage().min() == 1 and plan.coverage().max() == 1
    small = Tiler((32, 32)).plan(5, 40)
    assert small.grid == (1, 2) and small.padded_shape[0] == 32
    ov = Tiler((16, 16), (4, 6)).plan(30, 30)
    assert ov.coverage().min() >= 1
    assert all(s == 12 * i for i, s in enumerate(ov.y.starts))


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(tile_size=(30, 32), multiple=4), r"multiples of 4.*\(32, 32\)"),
        (dict(tile_size=(16, 16), overlap=(16, 0)), "overlap"),
        (dict(tile_size=(16, 16), overlap=(-1, 0)), "overlap"),
        (dict(tile_size=(16, 16), pad_mode="wrap"), "edge, reflect, periodic"),
        (dict(tile_size=(16, 16, 3)), "pair"),
        (dict(tile_size=(0, 16)), "positive"),
        (dict(tile_size=(16, 16), multiple=0), "positive"),
    ],
)
def test_tiler_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Tiler(**kwargs)


# ----------------------------------------------------------------- split / stitch


@pytest.mark.parametrize("shape", [(50, 77), (16, 32), (7, 5), (33, 65)])
def test_numpy_round_trip_without_overlap_is_exact(shape):
    x = _field((3, 2, *shape)).astype(np.float32)
    tiler = Tiler((16, 32), multiple=4)
    tiles = tiler.split(x)
    plan = tiler.plan(*shape)
    assert tiles.shape == (plan.n_tiles, 3, 2, 16, 32) and tiles.dtype == np.float32
    back = tiler.stitch(tiles)
    assert back.shape == x.shape and back.dtype == np.float32
    np.testing.assert_array_equal(back, x)
    # the tiles really hold the padded data at the planned places
    (t, _), (l, _) = plan.pad
    padded = np.pad(x, [(0, 0), (0, 0), plan.pad[0], plan.pad[1]], mode="edge")
    for k, (sy, sx) in enumerate(plan.slices):
        np.testing.assert_array_equal(tiles[k], padded[..., sy, sx])
    assert padded[0, 0, 0, 0] == x[0, 0, 0, 0] and t >= 0 and l >= 0


@pytest.mark.parametrize("overlap", [(4, 8), (2, 2), (10, 20)])
@pytest.mark.parametrize("pad_mode", ["edge", "reflect", "periodic"])
def test_numpy_round_trip_with_overlap(overlap, pad_mode):
    x = _field((2, 45, 70))
    tiler = Tiler((16, 32), overlap, multiple=4, pad_mode=pad_mode)
    back = tiler.stitch(tiler.split(x), plan=tiler.plan(45, 70))
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-12)


def test_blend_weights_sum_to_one():
    for overlap in [(4, 8), (6, 10), (12, 24)]:
        plan = Tiler((16, 32), overlap).plan(53, 91)
        w = plan.weights()
        assert w.min() > 0 and w.max() <= 1
        total = np.zeros(plan.padded_shape)
        for k, (sy, sx) in enumerate(plan.slices):
            total[sy, sx] += w[k]
        inner = total[plan.pad[0][0] : plan.pad[0][0] + 53, plan.pad[1][0] : plan.pad[1][0] + 91]
        if 2 * overlap[0] <= 16 and 2 * overlap[1] <= 32:
            np.testing.assert_allclose(inner, 1.0, atol=1e-12)  # the taper alone is a partition of unity
        # stitching tiles of ones gives ones whatever the overlap (renormalised)
        tiler = Tiler((16, 32), overlap)
        ones = np.ones((plan.n_tiles, 16, 32))
        np.testing.assert_allclose(tiler.stitch(ones, plan=plan), 1.0, atol=1e-12)


def test_overlap_blend_is_smooth_between_tiles():
    tiler = Tiler((8, 8), (0, 4))
    plan = tiler.plan(8, 12)  # two tiles side by side sharing 4 columns
    assert plan.grid == (1, 2) and plan.pad == ((0, 0), (0, 0))
    tiles = np.stack([np.zeros((8, 8)), np.ones((8, 8))])
    out = tiler.stitch(tiles, plan=plan)
    row = out[0]
    np.testing.assert_array_equal(row[:4], 0.0)
    np.testing.assert_array_equal(row[8:], 1.0)
    ramp = row[4:8]
    assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < 0.5 < ramp[-1] < 1
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0)


def test_nan_in_one_tile_overlap_does_not_poison_the_cell():
    tiler = Tiler((8, 8), (0, 4))
    plan = tiler.plan(8, 12)
    x = _field((8, 12))
    tiles = tiler.split(x)
    tiles[0, 3, 5] = np.nan  # column 5: shared by both tiles
    tiles[1, 2, 7] = np.nan  # column 11: only the second tile
    out = tiler.stitch(tiles, plan=plan)
    assert out[3, 5] == pytest.approx(x[3, 5], abs=1e-15)
    assert np.isnan(out[2, 11])
    assert np.isnan(out).sum() == 1
    tiles[1, 3, 1] = np.nan  # now both tiles are NaN at (3, 5)
    assert np.isnan(tiler.stitch(tiles, plan=plan)[3, 5])


def test_dataarray_split_and_stitch():
    da = _da().transpose("lat", "time", "variable", "lon")  # spatial dims found by name
    tiler = Tiler((16, 32), (4, 8), multiple=4)
    tiles = tiler.split(da)
    plan = tiler.plan(50, 77)
    assert tiles.dims == ("tile", "time", "variable", "lat", "lon")
    assert tiles.sizes["tile"] == plan.n_tiles
    assert list(tiles["variable"].values) == ["U850", "PSL"]
    # per-tile coordinates: real lat/lon where inside, extrapolated in the padding
    for k, (r0, c0) in enumerate(zip(tiles.tile_row0.values, tiles.tile_col0.values)):
        tl = tiles.tile_lat.values[k]
        inside = (np.arange(16) + r0 >= 0) & (np.arange(16) + r0 < 50)
        np.testing.assert_allclose(tl[inside], da.lat.values[(np.arange(16) + r0)[inside]])
        np.testing.assert_allclose(np.diff(tl), 1.0)
        np.testing.assert_allclose(np.diff(tiles.tile_lon.values[k]), 1.5)
        assert tiles.tile_lon.values[k][0] == pytest.approx(200.0 + 1.5 * c0)
    # a model output without the attrs still stitches thanks to the plan argument
    forecast = tiles * 2.0
    forecast.attrs = {}
    back = Tiler((16, 32), (4, 8), multiple=4).stitch(forecast, plan=plan)
    assert back.dims == ("time", "variable", "lat", "lon")
    np.testing.assert_array_equal(back.lat.values, da.lat.values)
    np.testing.assert_array_equal(back.lon.values, da.lon.values)
    np.testing.assert_allclose(back.values, 2.0 * da.transpose(*back.dims).values, rtol=0, atol=1e-12)
    same = tiler.stitch(tiles)
    assert same.attrs == {"units": "mixed"}
    xr.testing.assert_allclose(same, da.transpose(*same.dims))


def test_dataarray_without_lat_lon_uses_last_two_dims():
    da = xr.DataArray(_field((2, 9, 10)), dims=("t", "y", "x"))
    tiler = Tiler((4, 4))
    tiles = tiler.split(da)
    assert tiles.dims == ("tile", "t", "y", "x") and tiles.sizes["tile"] == 9
    np.testing.assert_array_equal(tiler.stitch(tiles).values, da.values)


def test_stitch_errors():
    tiler = Tiler((8, 8))
    with pytest.raises(ConfigError, match="plan"):
        tiler.stitch(np.zeros((4, 8, 8)))
    plan = tiler.plan(16, 16)
    with pytest.raises(DataError, match="do not fit"):
        tiler.stitch(np.zeros((3, 8, 8)), plan=plan)
    with pytest.raises(DataError, match="do not fit"):
        tiler.stitch(np.zeros((4, 8, 4)), plan=plan)
    with pytest.raises(DataError, match="tile"):
        tiler.stitch(xr.DataArray(np.zeros((8, 8)), dims=("lat", "lon")), plan=plan)
    with pytest.raises(DataError, match="to_dataarray"):
        tiler.split(xr.Dataset({"a": (("lat", "lon"), np.zeros((4, 4)))}))
    with pytest.raises(DataError):
        tiler.split(np.zeros(5))


# ----------------------------------------------------------------- pad_to_multiple


def test_pad_to_multiple_numpy():
    x = _field((3, 13, 18))
    padded, unpad = pad_to_multiple(x, 4)
    assert padded.shape == (3, 16, 20)
    np.testing.assert_array_equal(padded[:, 1:14, 1:19], x)  # 3 rows: 1 before, 2 after; 2 cols: 1 + 1
    np.testing.assert_array_equal(padded[:, 0, 1:19], x[:, 0])  # edge replication
    np.testing.assert_array_equal(unpad(padded), x)
    # a forecast with other leading dims crops the same way
    fc = _field((5, 2, 16, 20))
    np.testing.assert_array_equal(unpad(fc), fc[..., 1:14, 1:19])
    refl, _ = pad_to_multiple(x, (8, 1), pad_mode="reflect")
    assert refl.shape == (3, 16, 18)
    np.testing.assert_array_equal(refl[:, 0], x[:, 1])
    exact, unpad_exact = pad_to_multiple(x[:, :12, :16], 4)
    np.testing.assert_array_equal(exact, x[:, :12, :16])
    with pytest.raises(DataError, match="unpad expects"):
        unpad(x)
    with pytest.raises(ConfigError):
        pad_to_multiple(x, 0)


def test_pad_to_multiple_dataarray():
    da = _da(ny=50, nx=77).transpose("time", "variable", "lat", "lon")
    padded, unpad = pad_to_multiple(da, 8)
    assert dict(padded.sizes) == {"time": 3, "variable": 2, "lat": 56, "lon": 80}
    assert np.all(np.diff(padded.lat.values) > 0) and np.all(np.diff(padded.lon.values) == 1.5)
    assert padded.lon.values[0] == 198.5
    back = unpad(padded)
    xr.testing.assert_identical(back, da)
    forecast = padded.isel(time=[0]) * 3.0
    out = unpad(forecast)
    np.testing.assert_array_equal(out.lat.values, da.lat.values)
    np.testing.assert_allclose(out.values, 3.0 * da.isel(time=[0]).values)


def test_periodic_padding_wraps_longitude_and_edge_pads_latitude():
    x = _field((3, 10, 30))  # 10 latitudes, 30 longitudes of a global grid
    tiler = Tiler((12, 16), multiple=4, pad_mode="periodic")
    plan = tiler.plan(10, 30)
    (top, bottom), (left, right) = plan.pad
    assert left > 0 and right > 0 and top > 0
    padded = np.zeros((3, *plan.padded_shape))
    for k, (sy, sx) in enumerate(plan.slices):
        padded[..., sy, sx] = tiler.split(x)[k]
    # the columns left of the first longitude are the last longitudes, and vice versa
    np.testing.assert_array_equal(padded[:, top:top + 10, :left], x[:, :, 30 - left:])
    np.testing.assert_array_equal(padded[:, top:top + 10, left + 30:], x[:, :, :right])
    # rows beyond the poles repeat the edge row
    np.testing.assert_array_equal(padded[:, :top, left:left + 30], np.repeat(x[:, :1], top, axis=1))
    np.testing.assert_array_equal(tiler.stitch(tiler.split(x)), x)
