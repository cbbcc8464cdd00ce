"""Maps and animations of forecasts (optional extra: ``pip install 'climode[plot]'``).

Works offline: coastlines come from the GSHHS shapefiles of Debian's
``python-cartopy-data`` (cartopy's Natural Earth coastlines would try to
download).  With no map data at all the maps still draw, without coastlines,
and say so once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode.errors import require
from climode.forecast.forecaster import format_time

log = logging.getLogger(__name__)

MAP_DATA_DIRS = ("/usr/share/cartopy/data",)
_warned = False


@contextlib.contextmanager
def _quiet_pyshp():
    """Silence pyshp's warnings about GSHHS's two hole-only rings (harmless; as climode.data.synthetic.landsea)."""
    pyshp_log = logging.getLogger("shapefile")
    level = pyshp_log.level
    pyshp_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pyshp_log.setLevel(level)


@functools.lru_cache(maxsize=4)
def _coastline_geometries(shp: str) -> tuple:
    """The polygons of a GSHHS shapefile, read once per process."""
    import cartopy.io.shapereader as shpreader

    with _quiet_pyshp():
        geoms = tuple(shpreader.Reader(shp).geometries())
    log.debug("read %d coastline polygons from %s", len(geoms), shp)
    return geoms


def _coastline_file() -> Path | None:
    """The local GSHHS level-1 shapefile (low resolution, else crude), or None."""
    for directory in (os.environ.get("CLIMODE_MAP_DATA", ""), *MAP_DATA_DIRS):
        for scale in ("l", "c"):
            shp = Path(directory) / "shapefiles" / "gshhs" / scale / f"GSHHS_{scale}_L1.shp"
            if directory and shp.exists():
                return shp
    return None


def _coastlines():
    """A cartopy feature of the local GSHHS coastlines (read once), or None (warned about once)."""
    global _warned
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature

    shp = _coastline_file()
    if shp is not None:
        return cfeature.ShapelyFeature(_coastline_geometries(str(shp)), ccrs.PlateCarree(), edgecolor="0.3",
                                       linewidth=0.6, facecolor="none")
    if not _warned:
        log.warning("no local coastline data (install Debian's python-cartopy-data or set CLIMODE_MAP_DATA): "
                    "maps are drawn without coastlines")
        _warned = True
    return None


def draw_map(ax, frame: xr.Dataset, centres=None, truth_track: list[tuple[float, float]] | None = None,
             title: str = "") -> None:
    """One forecast time on ``ax`` (a cartopy GeoAxes): wind speed shading, PSL contours, vectors, storms."""
    import cartopy.crs as ccrs

    lon, lat = frame["lon"].values, frame["lat"].values
    pc = ccrs.PlateCarree()
    if "U850" in frame and "V850" in frame:
        speed = np.hypot(frame["U850"].values, frame["V850"].values)
        mesh = ax.pcolormesh(lon, lat, speed, cmap="YlOrRd", vmin=0, vmax=max(30.0, float(np.nanmax(speed) or 0)),
                             shading="auto", transform=pc)
        ax.figure.colorbar(mesh, ax=ax, shrink=0.7, label="850 hPa wind speed (m/s)")
        step = max(1, len(lon) // 20)
        ax.quiver(lon[::step], lat[::step], frame["U850"].values[::step, ::step], frame["V850"].values[::step, ::step],
                  transform=pc, scale=600, width=0.002, color="0.2")
    if "PSL" in frame:
        levels = np.arange(940, 1040, 4)
        cs = ax.contour(lon, lat, frame["PSL"].values / 100.0, levels=levels, colors="k", linewidths=0.6, transform=pc)
        ax.clabel(cs, fontsize=6, fmt="%d")
    for c in centres or []:
        ax.plot(c.lon, c.lat, marker="x", color="blue", markersize=8, mew=2, transform=pc)
    if truth_track:
        tl = np.array(truth_track)
        ax.plot(tl[:, 1], tl[:, 0], "--", color="green", linewidth=1.2, transform=pc, label="truth track")
    feature = _coastlines()
    if feature is not None:
        ax.add_feature(feature)
    ax.set_extent([float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())], crs=pc)
    ax.set_title(title, fontsize=9)


def _figure(frame: xr.Dataset):
    plt = require("matplotlib.pyplot", "plot")
    ccrs = require("cartopy.crs", "plot")
    lon_span = float(frame["lon"].max() - frame["lon"].min()) or 1.0
    lat_span = float(frame["lat"].max() - frame["lat"].min()) or 1.0
    fig = plt.figure(figsize=(8, 8 * lat_span / lon_span + 1))
    central = float(frame["lon"].mean())
    ax = fig.add_subplot(1, 1, 1, projection=ccrs.PlateCarree(central_longitude=central if central > 180 else 0))
    return plt, fig, ax


def _title(ds: xr.Dataset, t: int) -> str:
    lead = ""
    if "forecast_period" in ds.coords:
        lead = f" ({ds['forecast_period'].values[t] / np.timedelta64(1, 'h'):+g} h)"
    return f"climode forecast valid {format_time(ds['time'].values[t])}{lead}"


def _maps(ds: xr.Dataset, centres, truth):
    """Yield (time index, figure) with one drawn map per valid time; closes each figure after use."""
    for t in range(ds.sizes["time"]):
        frame = ds.isel(time=t)
        if "member" in frame.dims:
            frame = frame.mean("member")
        plt, fig, ax = _figure(frame)
        draw_map(ax, frame, centres[t] if centres else None, truth, _title(ds, t))
        yield t, fig
        plt.close(fig)


def plot_forecast(ds: xr.Dataset, path: str | Path, centres=None, truth: Any = None) -> list[Path]:
    """One PNG per valid time: ``map.png`` becomes ``map_000.png``, ``map_001.png``... (one time: ``map.png``)."""
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    from climode.io import atomic_path

    path = Path(path)
    written = []
    for t, fig in _maps(ds, centres, truth):
        target = path if ds.sizes["time"] == 1 else path.with_name(f"{path.stem}_{t:03d}{path.suffix or '.png'}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
        written.append(target)
    return written


def frame_ms(fps: float) -> int:
    """Milliseconds per GIF frame at ``fps`` frames per second (GIFs store hundredths of a second)."""
    return int(round(100.0 / fps)) * 10


def animate_forecast(ds: xr.Dataset, path: str | Path, centres=None, truth: Any = None, fps: float = 2.0) -> Path:
    """A looping GIF of the forecast maps, one frame per valid time, each shown 1/fps seconds."""
    require("matplotlib", "plot")
    imageio = require("imageio.v2", "plot")
    import matplotlib

    matplotlib.use("Agg")
    from climode.io import atomic_path

    frames = []
    for _, fig in _maps(ds, centres, truth):
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    shape = frames[0].shape
    frames = [f[: shape[0], : shape[1]] for f in frames]
    path = Path(path)
    with atomic_path(path) as tmp:
        # imageio's GIF writer (pillow plugin) takes the frame duration in milliseconds
        imageio.mimsave(tmp, frames, format="GIF", duration=frame_ms(fps), loop=0)
    return path
