"""Tilings: the Vid-ODE paper's global basins and generic grid-cell tiles.

- :func:`paper_tiles` cuts the globe into ``lat_size x lon_size`` degree
  :class:`~climode.basins.boxes.Region` boxes, overlapping evenly where the
  sizes do not divide 180/360 (60 x 160: 3 rows, 3 columns 120 degrees apart,
  so each neighbouring pair overlaps by 40 degrees, the last across 0/360).
- :class:`Tiler` splits arrays into fixed-size tiles (grid cells) with
  optional overlap, padding the edges (``edge`` replication or ``reflect``)
  so nothing is dropped, and :meth:`Tiler.stitch` blends them back with a
  cosine taper onto the original grid.  NaNs are skipped while blending: a
  cell is NaN only where every tile covering it is NaN.
- :func:`pad_to_multiple` is the one-tile case: pad a basin so its size is
  divisible by the model stride, and crop a forecast back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from climode.basins.boxes import LAT_NAMES, LON_NAMES, Region
from climode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: "periodic": longitude wraps around (a global grid), latitude is edge-padded
PAD_MODES = ("edge", "reflect", "periodic")


# --------------------------------------------------------------------------- paper tiling


def _starts(extent: float, size: float, periodic: bool) -> list[float]:
    """Evenly spaced starts of the fewest ``size`` tiles covering ``extent``."""
    n = max(1, math.ceil(extent / size - 1e-9))
    if periodic:
        step = extent / n  # overlap size - step between every neighbouring pair, seam included
    else:
        step = (extent - size) / (n - 1) if n > 1 else 0.0
    return [i * step for i in range(n)]


def paper_tiles(lat_size: float = 60.0, lon_size: float = 160.0, lon_start: float = 0.0) -> list[Region]:
    """Regions tiling the globe (Vid-ODE paper: 60 x 160 degrees), south-west first.

    Columns are ``ceil(360 / lon_size)`` tiles spaced ``360 / n`` apart from
    ``lon_start``, with wrap-around, so the overlap ``lon_size - 360 / n`` is the
    same between every neighbouring pair (40 degrees for 160).  Rows are
    ``ceil(180 / lat_size)`` tiles from -90 to 90, overlapping evenly if needed.
    """
    if not 0 < lat_size <= 180:
        raise ConfigError(f"paper_tiles: lat_size must be in (0, 180] degrees, got {lat_size}")
    if not 0 < lon_size <= 360:
        raise ConfigError(f"paper_tiles: lon_size must be in (0, 360] degrees, got {lon_size}")
    tiles = []
    lat_starts = _starts(180.0, lat_size, periodic=False)
    lon_starts = _starts(360.0, lon_size, periodic=True)
    for i, y0 in enumerate(lat_starts):
        lat_min = -90.0 + y0
        lat_max = min(90.0, lat_min + lat_size)
        for j, x0 in enumerate(lon_starts):
            lon_min = (lon_start + x0) % 360.0
            lon_max = lon_min + lon_size
            if lon_size < 360.0 and lon_max > 360.0:
                lon_max -= 360.0  # wraps across the seam
            tiles.append(
                Region(
                    f"paper_r{i}c{j}",
                    lat_min,
                    lat_max,
                    lon_min,
                    lon_max,
                    f"paper tile row {i} col {j} ({lat_size:g} x {lon_size:g} deg)",
                )
            )
    return tiles


# --------------------------------------------------------------------------- grid tiling


@dataclass(frozen=True)
class AxisPlan:
    """Tiles along one axis: padding and start indices in the padded axis."""

    n: int
    tile: int
    overlap: int
    pad_before: int
    pad_after: int
    starts: tuple[int, ...]

    @property
    def padded(self) -> int:
        return self.n + self.pad_before + self.pad_after

    def taper(self, k: int) -> np.ndarray:
        """Weights of tile ``k``: 1 inside, a sin^2 ramp over each shared overlap."""
        w = np.ones(self.tile)
        o = self.overlap
        if o == 0:
            return w
        ramp = np.sin(np.pi * (np.arange(o) + 0.5) / (2 * o)) ** 2  # ramp + reversed ramp == 1
        if k > 0:
            w[:o] *= ramp
        if k < len(self.starts) - 1:
            w[-o:] *= ramp[::-1]
        return w


def _plan_axis(n: int, tile: int, overlap: int) -> AxisPlan:
    if n <= tile:
        k, length = 1, tile
    else:
        stride = tile - overlap
        k = math.ceil((n - overlap) / stride)
        length = (k - 1) * stride + tile
    pad = length - n
    before = pad // 2
    return AxisPlan(n, tile, overlap, before, pad - before, tuple(i * (tile - overlap) for i in range(k)))


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of an ``(ny, nx)`` grid go; indices refer to the padded grid."""

    y: AxisPlan
    x: AxisPlan

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y.n, self.x.n)

    @property
    def padded_shape(self) -> tuple[int, int]:
        return (self.y.padded, self.x.padded)

    @property
    def tile_size(self) -> tuple[int, int]:
        return (self.y.tile, self.x.tile)

    @property
    def pad(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) cells added by padding."""
        return ((self.y.pad_before, self.y.pad_after), (self.x.pad_before, self.x.pad_after))

    @property
    def n_tiles(self) -> int:
        return len(self.y.starts) * len(self.x.starts)

    @property
    def grid(self) -> tuple[int, int]:
        """Number of tile rows and columns."""
        return (len(self.y.starts), len(self.x.starts))

    @property
    def slices(self) -> list[tuple[slice, slice]]:
        """Row-major tile slices into the padded grid."""
        return [
            (slice(y0, y0 + self.y.tile), slice(x0, x0 + self.x.tile)) for y0 in self.y.starts for x0 in self.x.starts
        ]

    @property
    def origins(self) -> list[tuple[int, int]]:
        """Row-major (row, col) of each tile's first cell on the original grid (negative in padding)."""
        return [(y0 - self.y.pad_before, x0 - self.x.pad_before) for y0 in self.y.starts for x0 in self.x.starts]

    def weights(self) -> np.ndarray:
        """Taper weights ``(n_tiles, ty, tx)``; they sum to 1 where at most two tiles meet per axis."""
        out = np.empty((self.n_tiles, self.y.tile, self.x.tile))
        t = 0
        for i in range(len(self.y.starts)):
            wy = self.y.taper(i)
            for j in range(len(self.x.starts)):
                out[t] = wy[:, None] * self.x.taper(j)[None, :]
                t += 1
        return out

    def coverage(self) -> np.ndarray:
        """How many tiles cover each cell of the original grid."""
        count = np.zeros(self.padded_shape, dtype=int)
        for sy, sx in self.slices:
            count[sy, sx] += 1
        (t, _), (l, _) = self.pad
        return count[t : t + self.y.n, l : l + self.x.n]


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{what} must be an int or a pair of ints (rows, cols), got {value!r}")
    return int(value[0]), int(value[1])


def _pad_coord(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """Extend a 1-D coordinate by its (mean) spacing on both sides."""
    values = np.asarray(values)
    if before == 0 and after == 0:
        return values
    if not np.issubdtype(values.dtype, np.number):
        return np.pad(values, (before, after), mode="edge")
    step = (values[-1] - values[0]) / (values.size - 1) if values.size > 1 else 1.0
    head = values[0] - step * np.arange(before, 0, -1)
    tail = values[-1] + step * np.arange(1, after + 1)
    return np.concatenate([head, values, tail]).astype(np.result_type(values.dtype, float))


def _spatial_dims(da: xr.DataArray, dims: tuple[str, str] | None) -> tuple[str, str]:
    if dims is not None:
        missing = [d for d in dims if d not in da.dims]
        if missing:
            raise DataError(f"dims {missing} are not in the data (dims {list(da.dims)}); pass dims=(y_dim, x_dim)")
        return dims
    y = next((n for n in LAT_NAMES if n in da.dims), None)
    x = next((n for n in LON_NAMES if n in da.dims), None)
    if y and x:
        return (y, x)
    if da.ndim < 2:
        raise DataError(f"tiling needs at least 2 dims, got {list(da.dims)}; pass a (..., lat, lon) array")
    return (da.dims[-2], da.dims[-1])


def _as_dataarray(obj) -> xr.DataArray | np.ndarray:
    if isinstance(obj, xr.Dataset):
        raise DataError("tiling takes a DataArray or numpy array; stack a Dataset first with ds.to_dataarray('variable')")
    if isinstance(obj, xr.DataArray):
        return obj
    arr = np.asarray(obj)
    if arr.ndim < 2:
        raise DataError(f"tiling needs an array of at least 2 dims (..., y, x), got shape {arr.shape}")
    return arr


@dataclass
class Tiler:
    """Split ``(..., y, x)`` arrays into fixed-size tiles and stitch them back.

    ``tile_size`` and ``overlap`` are in grid cells (rows, cols); every tile
    size must be a multiple of ``multiple`` (the model stride, e.g. 4 for two
    downsamplings).  The grid is padded (``edge``, ``reflect``, or ``periodic``:
    columns wrap around as longitude does on a global grid, rows are edge-padded)
    by the fewest cells that make the tiles fit, split evenly before and after.
    """

    tile_size: tuple[int, int]
    overlap: tuple[int, int] = (0, 0)
    multiple: int = 1
    pad_mode: str = "edge"
    _last: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.tile_size = _pair(self.tile_size, "tile_size")
        self.overlap = _pair(self.overlap, "overlap")
        if not isinstance(self.multiple, (int, np.integer)) or self.multiple < 1:
            raise ConfigError(f"multiple must be a positive int (the model stride), got {self.multiple!r}")
        for t, o, axis in zip(self.tile_size, self.overlap, ("rows", "cols")):
            if t < 1:
                raise ConfigError(f"tile_size {self.tile_size} must be positive")
            if t % self.multiple:
                good = tuple(-(-s // self.multiple) * self.multiple for s in self.tile_size)
                raise ConfigError(
                    f"tile_size {self.tile_size} must be multiples of {self.multiple} (the model stride); use e.g. {good}"
                )
            if not 0 <= o < t:
                raise ConfigError(f"overlap {self.overlap} must be >= 0 and smaller than tile_size {self.tile_size} ({axis})")
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode {self.pad_mode!r} is unknown; use one of {', '.join(PAD_MODES)}")

    def plan(self, ny: int, nx: int) -> TilePlan:
        """Tile layout for a ``ny x nx`` grid."""
        if ny < 1 or nx < 1:
            raise DataError(f"cannot tile an empty grid of shape ({ny}, {nx})")
        plan = TilePlan(_plan_axis(int(ny), self.tile_size[0], self.overlap[0]),
                        _plan_axis(int(nx), self.tile_size[1], self.overlap[1]))
        if any(p for pair in plan.pad for p in pair):
            log.debug("tiling %s into %s tiles of %s, padding %s (%s)", plan.shape, plan.grid, plan.tile_size, plan.pad, self.pad_mode)
        return plan

    # ---------------------------------------------------------------- split

    def split(self, data, dims: tuple[str, str] | None = None):
        """Tiles of ``data``: numpy ``(n_tiles, ..., ty, tx)`` or a DataArray with a leading ``tile`` dim.

        A DataArray keeps its spatial dim names (``lat``/``lon`` if present,
        else the last two) moved last; per-tile coordinates ``tile_<dim>`` (tile,
        dim) hold the (padded, extrapolated) lat/lon of every tile, ``tile_row0``
        and ``tile_col0`` the tile origins on the original grid.
        """
        data = _as_dataarray(data)
        if isinstance(data, np.ndarray):
            plan = self.plan(*data.shape[-2:])
            self._last = (plan, None)
            return self._split_array(data, plan)

        ydim, xdim = _spatial_dims(data, dims)
        lead = [d for d in data.dims if d not in (ydim, xdim)]
        data = data.transpose(*lead, ydim, xdim)
        plan = self.plan(data.sizes[ydim], data.sizes[xdim])
        tiles = self._split_array(np.asarray(data.values), plan)

        coords: dict = {"tile": np.arange(plan.n_tiles)}
        for name, c in data.coords.items():
            if ydim not in c.dims and xdim not in c.dims:
                coords[name] = c
        (t, b), (l, r) = plan.pad
        origins = np.array(plan.origins).reshape(-1, 2)
        for dim, (before, after), idx, axis in ((ydim, (t, b), 0, plan.y), (xdim, (l, r), 1, plan.x)):
            values = data[dim].values if dim in data.coords else np.arange(data.sizes[dim])
            padded = _pad_coord(values, before, after)
            starts = axis.starts
            per_tile = np.stack([padded[s : s + axis.tile] for s in starts])
            rows = [per_tile[k // plan.grid[1]] if idx == 0 else per_tile[k % plan.grid[1]] for k in range(plan.n_tiles)]
            coords[f"tile_{dim}"] = (("tile", dim), np.stack(rows))
        coords["tile_row0"] = ("tile", origins[:, 0])
        coords["tile_col0"] = ("tile", origins[:, 1])
        out = xr.DataArray(tiles, dims=("tile", *lead, ydim, xdim), coords=coords, name=data.name, attrs=dict(data.attrs))
        out.attrs["climode_tile_grid"] = [plan.y.n, plan.x.n]
        out.attrs["climode_tile_dims"] = [ydim, xdim]
        self._last = (plan, (ydim, xdim, data.coords[ydim] if ydim in data.coords else None,
                             data.coords[xdim] if xdim in data.coords else None))
        return out

    def _split_array(self, arr: np.ndarray, plan: TilePlan) -> np.ndarray:
        lead = arr.ndim - 2
        if self.pad_mode == "periodic":
            if max(plan.pad[1]) > arr.shape[-1]:
                raise DataError(f"periodic padding of {max(plan.pad[1])} columns needs at least that many columns, "
                                f"got {arr.shape[-1]}; use smaller tiles or pad_mode='edge'")
            padded = np.pad(arr, [(0, 0)] * lead + [plan.pad[0], (0, 0)], mode="edge")
            padded = np.pad(padded, [(0, 0)] * (lead + 1) + [plan.pad[1]], mode="wrap")
        else:
            padded = np.pad(arr, [(0, 0)] * lead + list(plan.pad), mode=self.pad_mode)
        return np.stack([padded[(..., sy, sx)] for sy, sx in plan.slices])

    # ---------------------------------------------------------------- stitch

    def stitch(self, tiles, plan: TilePlan | None = None):
        """Blend tiles back onto the original grid (inverse of :meth:`split`).

        Overlaps are blended with the plan's cosine-taper weights, renormalised
        over the tiles that are not NaN at each cell.  The plan comes from
        ``plan``, else the tiles' attributes, else the last :meth:`split`.
        """
        if isinstance(tiles, xr.Dataset):
            raise DataError("stitch takes the DataArray or numpy array returned by split, got a Dataset")
        if isinstance(tiles, xr.DataArray):
            return self._stitch_dataarray(tiles, plan)
        arr = np.asarray(tiles)
        plan = plan or self._plan_from_last()
        if arr.ndim < 3 or arr.shape[0] != plan.n_tiles or arr.shape[-2:] != plan.tile_size:
            raise DataError(
                f"tiles of shape {arr.shape} do not fit the plan ({plan.n_tiles} tiles of {plan.tile_size}); "
                "pass the (n_tiles, ..., ty, tx) array from split and its plan"
            )
        return self._stitch_array(arr, plan)

    def _plan_from_last(self) -> TilePlan:
        if self._last is None:
            raise ConfigError("stitch needs a plan: pass plan=tiler.plan(ny, nx) or split with this Tiler first")
        return self._last[0]

    def _stitch_array(self, arr: np.ndarray, plan: TilePlan) -> np.ndarray:
        weights = plan.weights()
        lead = arr.shape[1:-2]
        num = np.zeros(lead + plan.padded_shape, dtype=np.result_type(arr.dtype, np.float64))
        den = np.zeros_like(num)
        for k, (sy, sx) in enumerate(plan.slices):
            tile = arr[k]
            valid = ~np.isnan(tile) if np.issubdtype(tile.dtype, np.floating) else np.ones(tile.shape, bool)
            w = np.where(valid, weights[k], 0.0)
            num[(..., sy, sx)] += np.where(valid, tile, 0.0) * w
            den[(..., sy, sx)] += w
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        (t, _), (l, _) = plan.pad
        out = out[(..., slice(t, t + plan.y.n), slice(l, l + plan.x.n))]
        if np.issubdtype(arr.dtype, np.floating):
            out = out.astype(arr.dtype, copy=False)
        return out

    def _stitch_dataarray(self, tiles: xr.DataArray, plan: TilePlan | None) -> xr.DataArray:
        if "tile" not in tiles.dims:
            raise DataError(f"tiles have no 'tile' dim (dims {list(tiles.dims)}); pass the output of Tiler.split")
        if "climode_tile_dims" in tiles.attrs:
            ydim, xdim = (str(d) for d in tiles.attrs["climode_tile_dims"])
        else:
            ydim, xdim = [d for d in tiles.dims if d != "tile"][-2:]
        if plan is None:
            grid = tiles.attrs.get("climode_tile_grid")
            plan = self.plan(int(grid[0]), int(grid[1])) if grid is not None else self._plan_from_last()
        lead = [d for d in tiles.dims if d not in ("tile", ydim, xdim)]
        tiles = tiles.transpose("tile", *lead, ydim, xdim)
        if tiles.sizes["tile"] != plan.n_tiles or (tiles.sizes[ydim], tiles.sizes[xdim]) != plan.tile_size:
            raise DataError(
                f"tiles ({tiles.sizes['tile']} of {tiles.sizes[ydim]}x{tiles.sizes[xdim]}) do not fit the plan "
                f"({plan.n_tiles} of {plan.tile_size}); stitch with the Tiler and plan used to split"
            )
        values = self._stitch_array(np.asarray(tiles.values), plan)
        coords = {n: c for n, c in tiles.coords.items() if "tile" not in c.dims and ydim not in c.dims and xdim not in c.dims}
        for dim, axis, n_pos in ((ydim, plan.y, 0), (xdim, plan.x, 1)):
            name = f"tile_{dim}"
            if name in tiles.coords:
                coords[dim] = self._recover_coord(tiles[name].values, plan, n_pos)
        out = xr.DataArray(values, dims=(*lead, ydim, xdim), coords=coords, name=tiles.name, attrs=dict(tiles.attrs))
        out.attrs.pop("climode_tile_grid", None)
        out.attrs.pop("climode_tile_dims", None)
        if self._last is not None and self._last[1] is not None and self._last[0] == plan:
            _, (ly, lx, cy, cx) = self._last
            for dim, c in ((ly, cy), (lx, cx)):
                if c is not None and dim in out.dims and np.array_equal(c.values, out[dim].values):
                    out = out.assign_coords({dim: c})  # keep the original attrs and dtype
        return out

    @staticmethod
    def _recover_coord(per_tile: np.ndarray, plan: TilePlan, axis: int) -> np.ndarray:
        """Original 1-D coordinate from the per-tile (padded) coordinates."""
        ax = plan.y if axis == 0 else plan.x
        out = np.empty(ax.n, dtype=per_tile.dtype)
        ncols = plan.grid[1]
        for k, start in enumerate(ax.starts):
            t = k * ncols if axis == 0 else k
            lo = max(start, ax.pad_before)
            hi = min(start + ax.tile, ax.pad_before + ax.n)
            if hi > lo:
                out[lo - ax.pad_before : hi - ax.pad_before] = per_tile[t, lo - start : hi - start]
        return out


# --------------------------------------------------------------------------- one tile


def pad_to_multiple(
    data, multiple: int | tuple[int, int], pad_mode: str = "edge", dims: tuple[str, str] | None = None
) -> tuple:
    """Pad the last two (or lat/lon) dims so their sizes divide by ``multiple``.

    Returns ``(padded, unpad)``; ``unpad(x)`` crops any array or DataArray with
    the padded spatial shape (e.g. a forecast with other leading dims) back to
    the original grid, restoring the original coordinates of a DataArray.
    """
    my, mx = _pair(multiple, "multiple")
    if my < 1 or mx < 1:
        raise ConfigError(f"multiple must be positive, got {multiple!r}")
    if pad_mode not in PAD_MODES:
        raise ConfigError(f"pad_mode {pad_mode!r} is unknown; use one of {', '.join(PAD_MODES)}")
    data = _as_dataarray(data)
    if isinstance(data, np.ndarray):
        ny, nx = data.shape[-2:]
        ydim = xdim = None
    else:
        ydim, xdim = _spatial_dims(data, dims)
        ny, nx = data.sizes[ydim], data.sizes[xdim]
    pads = []
    for n, m in ((ny, my), (nx, mx)):
        total = -(-n // m) * m - n
        pads.append((total // 2, total - total // 2))
    (t, b), (l, r) = pads
    crop_y, crop_x = slice(t, t + ny), slice(l, l + nx)

    if isinstance(data, np.ndarray):
        padded = np.pad(data, [(0, 0)] * (data.ndim - 2) + pads, mode=pad_mode)
    else:
        orig_y = data.coords[ydim] if ydim in data.coords else None
        orig_x = data.coords[xdim] if xdim in data.coords else None
        padded = data.pad({ydim: (t, b), xdim: (l, r)}, mode=pad_mode)
        new = {}
        for dim, c, (before, after) in ((ydim, orig_y, (t, b)), (xdim, orig_x, (l, r))):
            if c is not None:
                new[dim] = (dim, _pad_coord(c.values, before, after), c.attrs)
        padded = padded.assign_coords(new)

    def unpad(x):
        """Crop padded data back to the original grid."""
        if isinstance(x, xr.DataArray) and ydim is not None:
            if x.sizes.get(ydim) != ny + t + b or x.sizes.get(xdim) != nx + l + r:
                raise DataError(f"unpad expects {ydim}x{xdim} of {ny + t + b}x{nx + l + r}, got sizes {dict(x.sizes)}")
            out = x.isel({ydim: crop_y, xdim: crop_x})
            restore = {d: c for d, c in ((ydim, orig_y), (xdim, orig_x)) if c is not None}
            return out.assign_coords(restore)
        arr = x.values if isinstance(x, xr.DataArray) else np.asarray(x)
        if arr.shape[-2:] != (ny + t + b, nx + l + r):
            raise DataError(f"unpad expects a (..., {ny + t + b}, {nx + l + r}) array, got shape {arr.shape}")
        return arr[..., crop_y, crop_x]

    return padded, unpad


def pad_dataset_with_nan(ds, multiple: int, dims: tuple[str, str] = ("lat", "lon")):
    """Pad a Dataset's ``dims`` at their ends with NaN cells so both sizes divide by ``multiple``.

    The coordinates are extended at their own spacing, so derived inputs (cos
    latitude) stay meaningful; the NaN cells count as missing everywhere (never
    in a loss, NaN in a forecast).  Returns ``(padded, crop)`` where ``crop(obj)``
    selects the original cells again.
    """
    pads = {}
    for dim in dims:
        n = ds.sizes[dim]
        pads[dim] = (-n) % multiple
    if not any(pads.values()):
        return ds, lambda obj: obj
    original = {dim: ds[dim].values for dim in dims}
    padded = ds.pad({d: (0, p) for d, p in pads.items() if p}, mode="constant")
    for dim, p in pads.items():
        if p:
            values = np.asarray(original[dim], dtype=np.float64)
            step = values[-1] - values[-2] if len(values) > 1 else 1.0
            extended = np.concatenate([values, values[-1] + step * np.arange(1, p + 1)])
            padded = padded.assign_coords({dim: (dim, extended, ds[dim].attrs)})

    def crop(obj):
        return obj.isel({dim: slice(0, len(original[dim])) for dim in dims if dim in obj.dims})

    return padded, crop
