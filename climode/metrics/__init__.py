"""climode.metrics: video, field and cyclone scores, streaming accumulators.

torch is not imported here; only :func:`lpips` imports it when called.
See docs/metrics.md for definitions and how to read the scores together.
"""

from __future__ import annotations

from climode.metrics.cyclones import (
    Centre,
    DetectionParams,
    MatchResult,
    Track,
    TrackParams,
    detect_centres,
    haversine_km,
    match_tracks,
    relative_vorticity,
    track,
)
from climode.metrics.fields import (
    acc,
    bias,
    lat_weights,
    radial_power_spectrum,
    rmse,
    spectral_distance,
    spectral_log_ratio,
    weighted_spatial_mean,
)
from climode.metrics.fields import mae as field_mae
from climode.metrics.fields import mse as field_mse
from climode.metrics.image import lpips, mae, mse, psnr, ssim, to_gray
from climode.metrics.streaming import (
    ExactSum,
    FieldScoreAccumulator,
    ImageScoreAccumulator,
    TrackScoreAccumulator,
    bootstrap_ci,
    score_tracks,
)

__all__ = [
    "Centre",
    "DetectionParams",
    "ExactSum",
    "FieldScoreAccumulator",
    "ImageScoreAccumulator",
    "MatchResult",
    "Track",
    "TrackParams",
    "TrackScoreAccumulator",
    "acc",
    "bias",
    "bootstrap_ci",
    "detect_centres",
    "field_mae",
    "field_mse",
    "haversine_km",
    "lat_weights",
    "lpips",
    "mae",
    "match_tracks",
    "mse",
    "psnr",
    "radial_power_spectrum",
    "relative_vorticity",
    "rmse",
    "score_tracks",
    "spectral_distance",
    "spectral_log_ratio",
    "ssim",
    "to_gray",
    "track",
    "weighted_spatial_mean",
]
