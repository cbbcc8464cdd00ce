"""Maps and animations of forecasts (optional extra: ``pip install 'climode[plot]'``).

Works offline: coastlines are Natural Earth's 1:110m coastline shipped with climode
(``climode/mapdata``, public domain; cartopy's own Natural Earth files would be
downloaded on first use), drawn by cartopy with labelled latitude/longitude gridlines.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climode.errors import require
from climode.time import format_time

log = logging.getLogger(__name__)

#: Natural Earth 1:110m coastline (GeoJSON LineStrings, lon -180..180), shipped as package data.
COASTLINE_FILE = Path(__file__).resolve().parent / "mapdata" / "ne_110m_coastline.geojson"


@functools.lru_cache(maxsize=1)
def coastline_geometries() -> tuple:
    """The shipped coastline as shapely LineStrings, read once per process."""
    from shapely.geometry import LineString

    features = json.loads(COASTLINE_FILE.read_text())["features"]
    lines = tuple(LineString(f["geometry"]["coordinates"]) for f in features)
    log.debug("read %d coastlines from %s", len(lines), COASTLINE_FILE)
    return lines


def _coastlines():
    """A cartopy feature of the shipped coastlines."""
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature

    return cfeature.ShapelyFeature(coastline_geometries(), ccrs.PlateCarree(), edgecolor="0.25",
                                   linewidth=0.6, facecolor="none")


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
    ax.add_feature(_coastlines())
    ax.set_extent([float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())], crs=pc)
    grid = ax.gridlines(crs=pc, draw_labels=True, linewidth=0.4, color="0.5", alpha=0.6, linestyle="--")
    grid.top_labels = grid.right_labels = False
    grid.xlabel_style = grid.ylabel_style = {"size": 7}
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
