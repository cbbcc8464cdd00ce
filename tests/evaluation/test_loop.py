"""The one evaluation loop: the same windows, in order, for every system."""

import numpy as np
import torch

from climode.data.sampling import get_protocol
from climode.evaluation.loop import (
    BASELINE_ALIASES,
    baseline_systems,
    forecast_windows,
    held_out_windows,
    window_leads,
)


def test_leads_count_from_each_windows_own_last_input():
    batch = {"input_times": torch.tensor([[0.0, 3.0, 6.0], [0.0, 3.0, 9.0]]),
             "target_times": torch.tensor([[9.0, 12.0], [12.0, 15.0]])}
    np.testing.assert_array_equal(window_leads(batch), [[3.0, 6.0], [3.0, 6.0]])


def test_every_system_forecasts_every_window_once_in_order():
    rng = np.random.default_rng(0)
    clips = rng.random((3, 8, 1, 6, 6)).astype(np.float32)  # [clip, time, C, H, W]
    protocol = get_protocol("extrapolation", n_inputs=3, n_targets=2)
    dataset = held_out_windows(clips, None, protocol, None, seed=0, windows=5)
    systems = baseline_systems(["persistence", "pysteps"], 1)
    assert list(systems) == ["persistence", "pysteps"] and BASELINE_ALIASES["pysteps"] == "pysteps_lk"
    seen = []
    for batch, predictions in forecast_windows(dataset, {"model": systems["persistence"], **systems},
                                               batch_size=2, seed=0, device=torch.device("cpu")):
        assert list(predictions) == ["model", "persistence", "pysteps"]
        last = batch["inputs"][:, -1].numpy()
        for name in ("model", "persistence"):
            assert predictions[name].shape == batch["targets"].shape and predictions[name].dtype == np.float32
            np.testing.assert_array_equal(predictions[name], np.repeat(last[:, None], 2, axis=1))
        seen += batch["sample_index"].tolist()
    assert seen == list(range(5))
