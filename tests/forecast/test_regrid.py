import numpy as np
import xarray as xr

from climode.forecast.forecaster import regrid


def field(lat, lon):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return xr.Dataset({"PSL": (("time", "lat", "lon"), (100000 + 10 * la + 3 * lo)[None].repeat(2, 0))},
                      coords={"lat": lat, "lon": lon, "time": [0, 1]})


def test_bilinear_is_exact_on_a_linear_field_and_keeps_the_edges():
    src = field(np.arange(20.0, 60.1, 1.25), np.arange(220.0, 307.6, 2.5))
    lat, lon = np.arange(20.0, 61.0, 1.5), np.arange(220.0, 309.0, 1.5)  # reaches past the source
    out = regrid(src, lat, lon)
    la, lo = np.meshgrid(np.minimum(lat, 60.0), np.minimum(lon, 307.5), indexing="ij")
    np.testing.assert_allclose(out["PSL"].values[0], 100000 + 10 * la + 3 * lo, rtol=1e-9)
    assert out["PSL"].dims == ("time", "lat", "lon") and list(out.time.values) == [0, 1]


def test_missing_cells_neither_fray_nor_spread():
    src = field(np.arange(0.0, 20.0, 1.0), np.arange(0.0, 20.0, 1.0))
    src["PSL"][:, 5:10, 5:10] = np.nan
    out = regrid(src, np.arange(0.0, 19.01, 0.5), np.arange(0.0, 19.01, 0.5))
    values = out["PSL"].values[0]
    lat, lon = np.meshgrid(out.lat.values, out.lon.values, indexing="ij")
    inside = (np.rint(lat) >= 5) & (np.rint(lat) <= 9) & (np.rint(lon) >= 5) & (np.rint(lon) <= 9)
    assert np.isnan(values[inside]).all() and np.isfinite(values[~inside]).all()
    back = regrid(out, src.lat.values, src.lon.values, keep_missing=False)
    assert np.isfinite(back["PSL"].values).all()
