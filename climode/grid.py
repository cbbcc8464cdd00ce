"""Latitude-longitude grids: whether longitude goes round the globe, and regridding between grids.

:func:`is_global_lon` is the one test of a periodic longitude axis (the
forecaster's regridding, the models' periodic padding, cyclone detection and
basin conventions all ask it); :func:`regrid` moves fields onto another grid,
bilinearly (SciPy) or conservatively (xarray-regrid, :func:`regrid_conservative`).

This module sits on the bottom floor: it imports nothing from climode but
:mod:`climode.errors`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr
from scipy import ndimage

from climode.errors import ClimodeError, require

FloatArray = npt.NDArray[np.float64]

#: How :func:`regrid` can move fields between grids.
REGRID_METHODS = ("bilinear", "conservative")
#: How far (relative) the steps of an "evenly spaced" longitude axis may differ from its median step.
STEP_TOLERANCE = 1e-3


def is_global_lon(lon: Any) -> bool:
    """True for an evenly spaced longitude axis whose cells go once round the globe (n * step = 360).

    The step is the median of the absolute steps, and every step must lie
    within :data:`STEP_TOLERANCE` of it, all in one direction (ascending or
    descending).  The median, not the mean: the step of an axis with one wrong
    step is still its step, so the axis is refused for being uneven rather
    than accepted or refused by how far the odd step pulls a mean; on an
    evenly spaced axis the two agree.  Fewer than 3 longitudes are never global.
    """
    values = np.asarray(lon, dtype=np.float64).ravel()
    if values.size < 3:
        return False
    steps = np.diff(values)
    step = float(np.median(np.abs(steps)))
    if step == 0.0 or not (np.all(steps > 0) or np.all(steps < 0)):
        return False
    even = bool(np.allclose(np.abs(steps), step, rtol=STEP_TOLERANCE))
    return even and abs(values.size * step - 360.0) < 0.5 * step


def _wrap_lon(values: npt.NDArray[Any], lon: FloatArray) -> tuple[npt.NDArray[Any], FloatArray]:
    """Extend a global field (ascending ``lon``) by half its width of wrapped columns on each side."""
    pad = max(1, lon.size // 2)
    widths = [(0, 0)] * (values.ndim - 1) + [(pad, pad)]
    ext_lon = np.concatenate([lon[-pad:] - 360.0, lon, lon[:pad] + 360.0])
    return np.pad(values, widths, mode="wrap"), ext_lon


def check_regrid_method(method: str) -> None:
    """A ClimodeError unless ``method`` is one of :data:`REGRID_METHODS`."""
    if method not in REGRID_METHODS:
        raise ClimodeError(f"regrid method {method!r} is unknown; use {' or '.join(REGRID_METHODS)}")


def _fill_nearest(values: npt.NDArray[Any]) -> FloatArray:
    """Fill NaN cells of the last two axes with their nearest finite neighbour (scipy.ndimage)."""
    out = np.array(values, dtype=np.float64, copy=True)
    flat = out.reshape(-1, *out.shape[-2:])
    for field_ in flat:
        bad = ~np.isfinite(field_)
        if bad.any() and not bad.all():
            _, (iy, ix) = ndimage.distance_transform_edt(bad, return_indices=True)
            field_[bad] = field_[iy[bad], ix[bad]]
    return out


def regrid(ds: xr.Dataset, lat: npt.ArrayLike, lon: npt.ArrayLike, keep_missing: bool = True,
           method: str = "bilinear") -> xr.Dataset:
    """Regrid every (..., lat, lon) variable of ``ds`` onto ``lat`` x ``lon``, bilinearly or conservatively.

    ``bilinear`` (scipy): values are extended into missing cells by nearest
    neighbours (``scipy.ndimage.distance_transform_edt``), so missing cells do
    not fray the field, and interpolated bilinearly (``scipy.ndimage.map_coordinates``,
    order 1, on the fractional cell indices of the target coordinates); target
    cells beyond the source grid take the edge values.  On a global grid
    (longitudes going once round, see :func:`is_global_lon`) longitude is
    periodic: the seam is interpolated across and target longitudes are taken
    modulo 360.  With ``keep_missing`` a target cell is missing where its
    nearest source cell is.

    ``conservative``: first-order conservative (area-weighted) regridding by
    xarray-regrid (``pip install 'climode[regrid]'``), see :func:`regrid_conservative`.
    """
    check_regrid_method(method)
    if method == "conservative":
        return regrid_conservative(ds, lat, lon, keep_missing)
    lat, lon = np.asarray(lat), np.asarray(lon)
    src_lat, src_lon = ds["lat"].values.astype(np.float64), ds["lon"].values.astype(np.float64)
    periodic = is_global_lon(src_lon)
    ext_lon = _wrap_lon(np.zeros(src_lon.size), src_lon)[1] if periodic else src_lon
    query_lon = src_lon[0] + np.mod(np.asarray(lon, dtype=np.float64) - src_lon[0], 360.0) if periodic else lon
    iy = np.interp(lat, src_lat, np.arange(len(src_lat)))
    ix = np.interp(query_lon, ext_lon, np.arange(len(ext_lon)))
    gy, gx = np.meshgrid(iy, ix, indexing="ij")
    ny_idx, nx_idx = np.rint(gy).astype(int), np.rint(gx).astype(int)
    out = {}
    for name, da in ds.data_vars.items():
        if "lat" not in da.dims or "lon" not in da.dims:
            continue
        da = da.transpose(..., "lat", "lon")
        raw = _wrap_lon(da.values, src_lon)[0] if periodic else da.values
        filled = _fill_nearest(raw)
        flat = filled.reshape(-1, *filled.shape[-2:])
        result = np.stack([ndimage.map_coordinates(f, [gy, gx], order=1, mode="nearest") for f in flat])
        result = result.reshape(*filled.shape[:-2], len(lat), len(lon))
        if keep_missing:
            missing = np.isnan(raw)[..., ny_idx, nx_idx]
            result = np.where(missing, np.nan, result)
        coords: dict[Any, Any] = {d: da[d].values for d in da.dims[:-2] if d in da.coords}
        coords.update(lat=lat, lon=lon)
        out[name] = xr.DataArray(result.astype(da.dtype), dims=da.dims, coords=coords, attrs=da.attrs)
    return xr.Dataset(out, attrs=ds.attrs)


def regrid_conservative(ds: xr.Dataset, lat: npt.ArrayLike, lon: npt.ArrayLike,
                        keep_missing: bool = True) -> xr.Dataset:  # noqa: ARG001 - always kept, see below
    """First-order conservative regridding with xarray-regrid: each target cell is the area-weighted
    (cos-latitude) mean of the source cells it overlaps, missing cells skipped.

    Longitude is periodic on global grids.  A target cell is missing only when
    none of its area has data (``keep_missing`` is implied: a mean over the cells
    that have data is never made up).  As in the bilinear method, target cells
    beyond the source grid take the edge values (the source is extended by
    repeating its edge cells).  Going to a finer grid gives each target cell the
    value of the source cell it lies in.
    """
    require("xarray_regrid", "regrid")  # registers the ds.regrid accessor
    names = [v for v in ds.data_vars if "lat" in ds[v].dims and "lon" in ds[v].dims]
    target = xr.Dataset(coords={"lat": np.asarray(lat, dtype=np.float64), "lon": np.asarray(lon, dtype=np.float64)})
    source = _extend_to_cover(ds[names].astype(np.float64), target["lat"].values, target["lon"].values)
    out = source.regrid.conservative(target, latitude_coord="lat", skipna=True, nan_threshold=1.0)
    result = {}
    for name in names:
        da = out[name].transpose(*ds[name].dims).astype(ds[name].dtype)
        da.attrs = ds[name].attrs
        result[name] = da.assign_coords(lat=target["lat"].values, lon=target["lon"].values)
    return xr.Dataset(result, attrs=ds.attrs)


def _extend_to_cover(ds: xr.Dataset, lat: FloatArray, lon: FloatArray) -> xr.Dataset:
    """Repeat the edge cells of ``ds`` until its cell centres span ``lat`` and ``lon`` (not a periodic lon)."""
    pads = {}
    for dim, target in (("lat", lat), ("lon", lon)):
        coord = ds[dim].values.astype(np.float64)
        if coord.size < 2 or (dim == "lon" and is_global_lon(coord)):
            continue
        step = abs(float(coord[1] - coord[0]))
        low, high = sorted((coord[0], coord[-1]))
        before = int(np.ceil(max(0.0, low - float(np.min(target))) / step - 1e-9))
        after = int(np.ceil(max(0.0, float(np.max(target)) - high) / step - 1e-9))
        if before or after:
            pads[dim] = (before, after) if coord[0] < coord[-1] else (after, before)
    if not pads:
        return ds
    out: xr.Dataset = ds.pad(pads, mode="edge")
    for dim, (before, after) in pads.items():
        coord = ds[dim].values.astype(np.float64)
        step = float(coord[1] - coord[0])
        out = out.assign_coords({dim: np.concatenate([coord[0] - step * np.arange(before, 0, -1), coord,
                                                      coord[-1] + step * np.arange(1, after + 1)])})
    return out


__all__ = ["REGRID_METHODS", "check_regrid_method", "is_global_lon", "regrid", "regrid_conservative"]
