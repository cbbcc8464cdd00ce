"""Latitude-weighted scores of gridded fields: RMSE, MAE, bias, ACC, spectral distance.

Inputs are xarray DataArrays / Datasets whose last two dims are latitude and
longitude (``lat``/``lon`` or ``latitude``/``longitude``), or numpy arrays
``(..., lat, lon)`` with an explicit ``lat``.  Scores are in the variables'
physical units.

Each score is first computed per frame (one 2-D field) with weights
``cos(lat)`` normalised to mean 1 over the region; cells that are NaN in the
forecast or the truth (or the climatology, for ACC) are left out and the
weights renormalised over the remaining cells.  Per-frame values are then
averaged over ``dims`` (all other dims by default), skipping all-NaN frames.
RMSE is ``sqrt`` of that mean MSE (WeatherBench 2's convention: square root
after averaging over time).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from climode.errors import DataError

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")

Dims = str | int | Sequence[str] | Sequence[int] | None


def lat_weights(lat: Any) -> np.ndarray:
    """``cos(lat)`` normalised to mean 1 over the given latitudes (degrees)."""
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if lat.size == 0 or not np.all(np.isfinite(lat)) or np.any(np.abs(lat) > 90):
        raise DataError("latitudes must be finite degrees within [-90, 90]; check the lat coordinate")
    w = np.clip(np.cos(np.deg2rad(lat)), 0.0, None)
    if w.sum() <= 0:
        raise DataError("all latitudes are at the poles; latitude weights are all zero")
    return w / w.mean()


def weighted_spatial_mean(x: np.ndarray, lat: Any) -> np.ndarray:
    """Per-frame latitude-weighted mean of ``x (..., lat, lon)``, NaN cells skipped."""
    x = np.asarray(x, dtype=np.float64)
    w = lat_weights(lat)
    if x.ndim < 2 or x.shape[-2] != w.size:
        raise DataError(f"field shape {x.shape} does not end in (lat={w.size}, lon); transpose to (..., lat, lon)")
    valid = ~np.isnan(x)
    ww = np.where(valid, w[:, None], 0.0)
    s = np.sum(np.where(valid, x, 0.0) * ww, axis=(-2, -1))
    n = np.sum(ww, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1.0), np.nan)


def _joint(*arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast and set a cell to NaN in every array where any array is NaN."""
    arrs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
    bad = np.zeros(arrs[0].shape, dtype=bool)
    for a in arrs:
        bad |= np.isnan(a)
    return [np.where(bad, np.nan, a) for a in arrs]


# ------------------------------------------------------------------ per-frame kernels


def frame_mse(f: np.ndarray, t: np.ndarray, lat: Any) -> np.ndarray:
    """Per-frame latitude-weighted mean squared error."""
    return weighted_spatial_mean((np.asarray(f, float) - np.asarray(t, float)) ** 2, lat)


def frame_mae(f: np.ndarray, t: np.ndarray, lat: Any) -> np.ndarray:
    """Per-frame latitude-weighted mean absolute error."""
    return weighted_spatial_mean(np.abs(np.asarray(f, float) - np.asarray(t, float)), lat)


def frame_bias(f: np.ndarray, t: np.ndarray, lat: Any) -> np.ndarray:
    """Per-frame latitude-weighted mean of forecast minus truth."""
    return weighted_spatial_mean(np.asarray(f, float) - np.asarray(t, float), lat)


def frame_acc(f: np.ndarray, t: np.ndarray, clim: np.ndarray, lat: Any, centred: bool = True) -> np.ndarray:
    """Per-frame latitude-weighted anomaly correlation against a climatology."""
    f, t, c = _joint(f, t, clim)
    fa, ta = f - c, t - c
    if centred:
        fa = fa - weighted_spatial_mean(fa, lat)[..., None, None]
        ta = ta - weighted_spatial_mean(ta, lat)[..., None, None]
    num = weighted_spatial_mean(fa * ta, lat)
    den = np.sqrt(weighted_spatial_mean(fa**2, lat) * weighted_spatial_mean(ta**2, lat))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def radial_power_spectrum(field: np.ndarray, *, window: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged 2-D power spectrum of ``field (..., ny, nx)``.

    Returns integer wavenumbers ``k = 1 .. min(ny, nx) // 2`` (cycles per
    domain along the shorter side's scale) and the mean ``|FFT|^2`` in each
    annulus ``k - 0.5 <= |k| < k + 0.5``, shape ``(..., nk)``.  NaN cells are
    filled with the frame's mean first; the frame mean (k = 0) is dropped.
    With ``window=True`` (default) the anomaly is tapered with a 2-D Hann
    window, as fields on a regional tile are not periodic.  The grid is
    treated as planar (index space), which suits basin tiles.
    """
    x = np.asarray(field, dtype=np.float64)
    if x.ndim < 2 or min(x.shape[-2:]) < 4:
        raise DataError(f"power spectra need frames of at least 4x4 cells, got shape {x.shape}")
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isnan(x), np.nan, x), axis=(-2, -1), keepdims=True)
    x = np.where(np.isnan(x), np.nan_to_num(mean), x)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    ny, nx = x.shape[-2:]
    if window:
        # A Hann taper stops the jump between opposite (non-periodic) edges from
        # leaking power into every wavenumber and hiding missing small scales.
        x = x * np.outer(np.hanning(ny), np.hanning(nx))
    power = np.abs(np.fft.fft2(x)) ** 2 / (ny * nx)
    ky = np.fft.fftfreq(ny) * ny
    kx = np.fft.fftfreq(nx) * nx
    # Scale both axes to the shorter side so annuli are circles in physical-index space.
    n = min(ny, nx)
    kr = np.sqrt((ky[:, None] * n / ny) ** 2 + (kx[None, :] * n / nx) ** 2)
    bins = np.rint(kr).astype(int)
    nk = n // 2
    ks = np.arange(1, nk + 1)
    flat = power.reshape(-1, ny * nx)
    b = bins.ravel()
    out = np.empty((flat.shape[0], nk))
    counts = np.bincount(b, minlength=nk + 1)[1 : nk + 1]
    for i, row in enumerate(flat):
        out[i] = np.bincount(b, weights=row, minlength=nk + 1)[1 : nk + 1] / counts
    return ks, out.reshape(*x.shape[:-2], nk)


def frame_spectral_distance(f: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-frame mean over wavenumbers of ``|log10 P_f(k) - log10 P_t(k)|``."""
    f, t = np.broadcast_arrays(np.asarray(f, float), np.asarray(t, float))
    _, pf = radial_power_spectrum(f)
    _, pt = radial_power_spectrum(t)
    eps = 1e-12 * np.maximum(pt.mean(axis=-1, keepdims=True), pf.mean(axis=-1, keepdims=True))
    eps = np.maximum(eps, np.finfo(np.float64).tiny)
    return np.mean(np.abs(np.log10(pf + eps) - np.log10(pt + eps)), axis=-1)


# ------------------------------------------------------------------ xarray / numpy front end


def _find(names: Sequence[str], dims: Sequence[str]) -> str | None:
    return next((d for d in dims if d in names), None)


def _reduce(per_frame: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(per_frame, dtype=np.float64)
    if not axes:
        return v
    valid = ~np.isnan(v)
    n = valid.sum(axis=axes)
    s = np.where(valid, v, 0.0).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


def _numpy_axes(ndim_lead: int, dims: Dims) -> tuple[int, ...]:
    if dims is None:
        return tuple(range(ndim_lead))
    items = [dims] if isinstance(dims, (int, str)) else list(dims)
    axes = []
    for d in items:
        if not isinstance(d, (int, np.integer)) or not -ndim_lead <= d < ndim_lead:
            raise DataError(
                f"dims={dims!r}: for numpy input give leading axis numbers in [0, {ndim_lead}); "
                "the last two axes are (lat, lon)"
            )
        axes.append(int(d) % ndim_lead)
    return tuple(sorted(set(axes)))


def _score(
    kernel: Callable[..., np.ndarray],
    forecast: Any,
    truth: Any,
    *extra: Any,
    lat: Any = None,
    dims: Dims = None,
    post: Callable[[np.ndarray], np.ndarray] | None = None,
    keep_units: bool = True,
    needs_lat: bool = True,
    kwargs: dict | None = None,
):
    kwargs = kwargs or {}
    if isinstance(forecast, xr.Dataset):
        if not isinstance(truth, xr.Dataset):
            raise DataError("forecast is a Dataset, so truth must be a Dataset with the same variables")
        out = {}
        for name in forecast.data_vars:
            if name not in truth:
                raise DataError(f"variable {name!r} is in the forecast but not in the truth dataset")
            ex = [e[name] if isinstance(e, xr.Dataset) else e for e in extra]
            out[name] = _score(
                kernel, forecast[name], truth[name], *ex, lat=lat, dims=dims, post=post,
                keep_units=keep_units, needs_lat=needs_lat, kwargs=kwargs,
            )
        return xr.Dataset(out)
    if isinstance(forecast, xr.DataArray):
        return _score_dataarray(kernel, forecast, truth, extra, lat, dims, post, keep_units, needs_lat, kwargs)
    f = np.asarray(forecast.detach().cpu().numpy() if hasattr(forecast, "detach") else forecast, float)
    t = np.asarray(truth.detach().cpu().numpy() if hasattr(truth, "detach") else truth, float)
    if f.shape != t.shape:
        raise DataError(f"forecast shape {f.shape} differs from truth shape {t.shape}")
    if f.ndim < 2:
        raise DataError(f"fields must have shape (..., lat, lon), got {f.shape}")
    if needs_lat:
        if lat is None:
            raise DataError("numpy fields need lat=: pass the latitude values (degrees) of axis -2")
        if np.size(lat) != f.shape[-2]:
            raise DataError(f"lat has {np.size(lat)} values but the fields have {f.shape[-2]} latitudes")
        per = kernel(f, t, *[np.asarray(e, float) for e in extra], lat, **kwargs)
    else:
        per = kernel(f, t, *[np.asarray(e, float) for e in extra], **kwargs)
    res = _reduce(per, _numpy_axes(f.ndim - 2, dims))
    if post is not None:
        res = post(res)
    return float(res) if res.ndim == 0 else res


def _score_dataarray(kernel, forecast, truth, extra, lat, dims, post, keep_units, needs_lat, kwargs):
    if not isinstance(truth, xr.DataArray):
        raise DataError("forecast is a DataArray, so truth must be a DataArray too")
    latd, lond = _find(LAT_NAMES, forecast.dims), _find(LON_NAMES, forecast.dims)
    if latd is None or lond is None:
        raise DataError(
            f"forecast dims {forecast.dims} lack a latitude/longitude dim; name them lat/lon or latitude/longitude"
        )
    try:
        forecast, truth = xr.align(forecast, truth, join="exact")
    except ValueError as exc:
        raise DataError(f"forecast and truth coordinates differ; select matching times and grids first ({exc})") from exc
    order = [d for d in forecast.dims if d not in (latd, lond)] + [latd, lond]
    forecast = forecast.transpose(*order)
    truth = truth.transpose(*order)
    ex = []
    for e in extra:
        if isinstance(e, xr.DataArray):
            e = e.broadcast_like(forecast).transpose(*order).values
        ex.append(np.asarray(e, float))
    latv = forecast[latd].values if lat is None else np.asarray(lat)
    if needs_lat:
        per = kernel(forecast.values, truth.values, *ex, latv, **kwargs)
    else:
        per = kernel(forecast.values, truth.values, *ex, **kwargs)
    lead = order[:-2]
    if dims is None:
        red = tuple(lead)
    else:
        red = (dims,) if isinstance(dims, str) else tuple(dims)
        unknown = [d for d in red if d not in lead]
        if unknown:
            raise DataError(f"dims {unknown} are not leading dims of the forecast {tuple(lead)}")
    axes = tuple(lead.index(d) for d in red)
    res = _reduce(per, axes)
    if post is not None:
        res = post(res)
    kept = [d for d in lead if d not in red]
    coords = {k: v for k, v in forecast.coords.items() if set(v.dims) <= set(kept)}
    out = xr.DataArray(res, dims=kept, coords=coords, name=forecast.name)
    if keep_units and "units" in forecast.attrs:
        out.attrs["units"] = forecast.attrs["units"]
    return out


def rmse(forecast: Any, truth: Any, lat: Any = None, *, dims: Dims = None):
    """Latitude-weighted RMSE: ``sqrt`` of the per-frame weighted MSE averaged over ``dims``."""
    return _score(frame_mse, forecast, truth, lat=lat, dims=dims, post=np.sqrt)


def mse(forecast: Any, truth: Any, lat: Any = None, *, dims: Dims = None):
    """Latitude-weighted mean squared error (units squared; ``units`` attr not kept)."""
    return _score(frame_mse, forecast, truth, lat=lat, dims=dims, keep_units=False)


def mae(forecast: Any, truth: Any, lat: Any = None, *, dims: Dims = None):
    """Latitude-weighted mean absolute error."""
    return _score(frame_mae, forecast, truth, lat=lat, dims=dims)


def bias(forecast: Any, truth: Any, lat: Any = None, *, dims: Dims = None):
    """Latitude-weighted mean of forecast minus truth."""
    return _score(frame_bias, forecast, truth, lat=lat, dims=dims)


def acc(forecast: Any, truth: Any, climatology: Any, lat: Any = None, *, dims: Dims = None, centred: bool = True):
    """Latitude-weighted anomaly correlation coefficient, per frame then averaged.

    ``climatology`` must broadcast against the forecast (same variables for a
    Dataset).  ``centred=True`` subtracts each frame's weighted mean anomaly
    before correlating; ``centred=False`` gives the uncentred form.
    """
    return _score(
        frame_acc, forecast, truth, climatology, lat=lat, dims=dims, keep_units=False,
        kwargs={"centred": centred},
    )


def spectral_distance(forecast: Any, truth: Any, *, dims: Dims = None):
    """Mean ``|log10 P_f(k) - log10 P_t(k)|`` of radially averaged power spectra.

    0 for identical spectra; a blurred forecast loses power at high ``k`` and
    scores higher.  Dimensionless (decades of power).
    """
    return _score(frame_spectral_distance, forecast, truth, dims=dims, keep_units=False, needs_lat=False)


def spectral_log_ratio(forecast: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Wavenumbers and mean signed ``log10(P_f / P_t)`` per wavenumber over all frames.

    Negative values at high ``k`` mean the forecast is too smooth.
    """
    f = np.asarray(forecast.values if isinstance(forecast, xr.DataArray) else forecast, float)
    t = np.asarray(truth.values if isinstance(truth, xr.DataArray) else truth, float)
    k, pf = radial_power_spectrum(f)
    _, pt = radial_power_spectrum(t)
    tiny = np.finfo(np.float64).tiny
    r = np.log10(pf + tiny) - np.log10(pt + tiny)
    return k, r.reshape(-1, k.size).mean(axis=0)
