import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

from climode.errors import DataError
from climode.metrics import fields

LAT2 = np.array([0.0, 60.0])  # cos = 1, 0.5 -> normalised weights 4/3, 2/3


def test_lat_weights_mean_one_and_cosine_shape():
    lat = np.linspace(-87.5, 87.5, 36)
    w = fields.lat_weights(lat)
    assert w.mean() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(w / w[18], np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat[18])))
    np.testing.assert_allclose(fields.lat_weights(LAT2), [4 / 3, 2 / 3])


def test_rmse_mae_bias_match_hand_computation():
    truth = np.zeros((2, 2, 2))
    fc = np.array([[[1.0, -1.0], [2.0, 0.0]], [[3.0, 3.0], [3.0, 3.0]]])
    # frame 0: weighted MSE = (4/3*(1+1) + 2/3*(4+0)) / 4 = 4/3 ; frame 1: 9
    assert fields.mse(fc, truth, LAT2, dims=None) == pytest.approx((4 / 3 + 9) / 2)
    assert fields.rmse(fc, truth, LAT2) == pytest.approx(np.sqrt((4 / 3 + 9) / 2))
    np.testing.assert_allclose(fields.rmse(fc, truth, LAT2, dims=()), [np.sqrt(4 / 3), 3.0])
    # MAE frame 0: (4/3*2 + 2/3*2)/4 = 1 ; bias frame 0: (4/3*0 + 2/3*2)/4 = 1/3
    np.testing.assert_allclose(fields.mae(fc, truth, LAT2, dims=()), [1.0, 3.0])
    np.testing.assert_allclose(fields.bias(fc, truth, LAT2, dims=()), [1 / 3, 3.0])
    np.testing.assert_allclose(fields.bias(truth, fc, LAT2, dims=()), [-1 / 3, -3.0])


def test_nan_cells_are_excluded_and_weights_renormalised():
    truth = np.zeros((1, 2, 2))
    truth[0, 0, 1] = np.nan
    fc = np.array([[[1.0, -1.0], [2.0, 0.0]]])
    # remaining cells: w = 4/3, 2/3, 2/3 ; squared errors 1, 4, 0
    assert fields.mse(fc, truth, LAT2) == pytest.approx((4 / 3 * 1 + 2 / 3 * 4) / (8 / 3))
    fc2 = fc.copy()
    fc2[0, 1, 0] = np.nan  # NaN in the forecast too: only (0,0) and (1,1) remain
    assert fields.mse(fc2, truth, LAT2) == pytest.approx((4 / 3 * 1 + 0) / 2)
    # an all-NaN frame is skipped in the time mean, not propagated
    both = np.concatenate([fc, np.full_like(fc, np.nan)])
    assert fields.mse(both, np.zeros_like(both), LAT2) == pytest.approx(4 / 3)


def test_xarray_dataset_keeps_dims_and_units():
    rng = np.random.default_rng(1)
    lat = np.array([-30.0, 0.0, 30.0])
    lon = np.array([0.0, 90.0, 180.0, 270.0])
    time = np.arange(3)
    data = rng.normal(size=(3, 3, 4))
    truth = xr.Dataset(
        {"PSL": (("time", "lat", "lon"), 1e5 + data, {"units": "Pa"}), "U850": (("time", "lat", "lon"), data)},
        coords={"time": time, "lat": lat, "lon": lon},
    )
    fc = truth + 2.0
    fc["PSL"].attrs["units"] = "Pa"
    out = fields.rmse(fc, truth, dims=[])
    assert set(out.data_vars) == {"PSL", "U850"}
    assert out["PSL"].dims == ("time",)
    np.testing.assert_allclose(out["PSL"].values, 2.0)
    assert out["PSL"].attrs["units"] == "Pa"
    assert float(fields.rmse(fc["U850"], truth["U850"])) == pytest.approx(2.0)
    # lon, lat order does not matter
    r = fields.rmse(fc["U850"].transpose("lon", "time", "lat"), truth["U850"].transpose("lat", "lon", "time"))
    assert float(r) == pytest.approx(2.0)
    with pytest.raises(DataError):
        fields.rmse(fc["U850"], truth["U850"].assign_coords(lat=lat + 1))


def test_numpy_input_needs_lat():
    with pytest.raises(DataError, match="lat="):
        fields.rmse(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))


def _weighted_corr(x, y, w):
    c = np.cov(x.ravel(), y.ravel(), aweights=w.ravel())
    return c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])


def test_acc_perfect_random_and_independent_weighted_correlation():
    rng = np.random.default_rng(0)
    lat = np.linspace(-60, 60, 25)
    clim = rng.normal(size=(25, 40)) * 5
    truth = clim + rng.normal(size=(4, 25, 40))
    assert fields.acc(truth, truth, clim, lat) == pytest.approx(1.0)
    assert fields.acc(2 * truth - clim, truth, clim, lat) == pytest.approx(1.0)  # scaled anomaly
    assert fields.acc(2 * clim - truth, truth, clim, lat) == pytest.approx(-1.0)
    noise = clim + rng.normal(size=truth.shape)
    assert abs(fields.acc(noise, truth, clim, lat)) < 0.1
    # centred ACC = latitude-weighted Pearson correlation of anomalies (np.cov with aweights)
    fc = truth + 0.7 * rng.normal(size=truth.shape) + 0.3
    w = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], (25, 40))
    per = fields.acc(fc, truth, clim, lat, dims=())
    expect = [_weighted_corr(fc[k] - clim, truth[k] - clim, w) for k in range(4)]
    np.testing.assert_allclose(per, expect, rtol=1e-10)
    # uncentred form differs when the anomalies have a non-zero mean
    unc = fields.acc(fc, truth, clim, lat, dims=(), centred=False)
    assert not np.allclose(unc, per)


def test_radial_spectrum_peaks_at_the_wavenumber_of_a_sinusoid():
    y, x = np.mgrid[0:32, 0:64]
    field = np.sin(2 * np.pi * 5 * y / 32)  # 5 cycles over the short side
    k, p = fields.radial_power_spectrum(field)
    assert k[np.argmax(p)] == 5
    assert k[0] == 1 and k[-1] == 16


def test_spectral_distance_zero_for_identical_and_grows_with_blur():
    rng = np.random.default_rng(3)
    truth = gaussian_filter(rng.normal(size=(2, 48, 48)), sigma=(0, 1, 1))
    assert fields.spectral_distance(truth, truth) == 0.0
    blur1 = gaussian_filter(truth, sigma=(0, 1.5, 1.5))
    blur2 = gaussian_filter(truth, sigma=(0, 3, 3))
    d1 = fields.spectral_distance(blur1, truth)
    d2 = fields.spectral_distance(blur2, truth)
    assert 0 < d1 < d2
    # blurred forecast loses power at high wavenumbers: negative log ratio there
    k, r = fields.spectral_log_ratio(blur1, truth)
    assert r[-1] < -1 and abs(r[0]) < r[-1] * -0.5
    # DataArray input works the same way
    da = xr.DataArray(truth, dims=("time", "lat", "lon"), coords={"lat": np.linspace(-10, 10, 48)})
    out = fields.spectral_distance(da, da)
    assert float(out) == 0.0
