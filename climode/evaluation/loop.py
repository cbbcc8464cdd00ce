"""The one evaluation loop: held-out windows, the systems scored on them, their forecasts batch by batch.

Every system (the model and the baselines) forecasts exactly the same windows,
drawn with a fixed seed and batched in a fixed order.  :func:`forecast_windows`
yields each batch with every system's frames; the scorers of
:mod:`climode.evaluation.scorers` take it from there.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from climode.data.loader import WindowDataset, make_loader
from climode.models.baselines.reference import WindAdvection
from climode.models.inference import deterministic_forecast
from climode.models.periodic import periodic_longitude
from climode.models.registry import get_model

#: baseline names accepted by ``climode evaluate`` and the registry model each one is
BASELINE_ALIASES = {"persistence": "persistence", "advection": "wind_advection", "wind_advection": "wind_advection",
                    "pysteps": "pysteps_lk", "pysteps_lk": "pysteps_lk", "pysteps_vet": "pysteps_vet",
                    "blend": "frame_blend", "flow": "flow_interpolation"}

#: what one batch's forecasts are: frames [B, K, C, H, W] (as the systems give them) by system name
Predictions = dict[str, np.ndarray]


def held_out_windows(sequences: Any, variables: list[str] | None, protocol: Any, normalizer: Any, *, seed: int,
                     windows: int, static: Any = None) -> WindowDataset:
    """``windows`` windows of ``protocol`` drawn with ``seed`` from ``sequences`` (datasets or video clips)."""
    return WindowDataset(sequences, variables, protocol, normalizer, seed=seed, samples_per_epoch=windows,
                         static=static)


def baseline_systems(names: list[str], channels: int, *, normalizer: Any = None, lat: Any = None,
                     lon: Any = None) -> dict[str, torch.nn.Module]:
    """The baselines ``names`` (keys of :data:`BASELINE_ALIASES`); advection needs the normalizer and grid."""
    systems: dict[str, torch.nn.Module] = {}
    for name in names:
        key = BASELINE_ALIASES[name]
        if key == "wind_advection":
            systems[name] = WindAdvection.from_normalizer(normalizer, lat, lon)
        else:
            systems[name] = get_model(key, {"in_channels": channels})
    return systems


def build_systems(forecaster: Any, names: list[str], *, lat: Any = None, lon: Any = None,
                  model_systems: dict[str, torch.nn.Module] | None = None) -> dict[str, torch.nn.Module]:
    """``{"model": forecaster.model}`` (or ``model_systems``, e.g. two runs of it), then the baselines ``names``."""
    systems = dict(model_systems) if model_systems is not None else {"model": forecaster.model}
    systems.update(baseline_systems(names, len(forecaster.variables), normalizer=forecaster.normalizer,
                                    lat=lat, lon=lon))
    return systems


def window_leads(batch: dict[str, Any]) -> np.ndarray:
    """Lead hours (frames for video) [B, K] of every target of every window, after its own last input."""
    lead = batch["target_times"] - batch["input_times"].max(dim=1, keepdim=True).values
    return np.round(lead.numpy(), 6)


def forecast_windows(dataset: WindowDataset, systems: dict[str, torch.nn.Module], *, batch_size: int, seed: int,
                     device: torch.device, periodic: bool = False, progress: bool = False,
                     ) -> Iterator[tuple[dict[str, Any], Predictions]]:
    """Every batch of ``dataset``'s windows, in order, with every system's forecast of it.

    Frames come back as float32 numpy arrays in the units the systems forecast
    (normalised for climate models).  Static channels go to ``"model"`` only;
    ``periodic`` wraps the systems' spatial layers in longitude (a global grid).
    """
    loader = make_loader(dataset, batch_size, seed=seed, epoch=0)  # every window once, in order
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), desc="evaluate", unit="window")
    for batch in loader:
        inputs = batch["inputs"].to(device)
        mask = batch["input_mask"].to(device)
        static = batch.get("static")
        predictions: Predictions = {}
        for name, system in systems.items():
            with torch.no_grad(), periodic_longitude(system, periodic):
                out = deterministic_forecast(system, inputs, batch["input_times"], batch["target_times"], mask,
                                             static.to(device) if static is not None and name == "model" else None)
            predictions[name] = out.frames.float().cpu().numpy()
        yield batch, predictions
        if bar is not None:
            bar.update(len(inputs))
    if bar is not None:
        bar.close()
