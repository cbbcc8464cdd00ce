"""A checkpoint scored on data of another time step: finer data thinned, coarser data drawn on their own step."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from climode.errors import ConfigError
from climode.evaluation.runner import on_data_time_steps


def hourly(step_hours: float, n: int = 25) -> xr.Dataset:
    time = pd.date_range("2000-01-01", periods=n, freq=f"{int(step_hours * 60)}min")
    return xr.Dataset({"PSL": (("time", "lat", "lon"), np.arange(n, dtype=float)[:, None, None] * np.ones((1, 2, 3)))},
                      coords={"time": time, "lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})


def test_finer_data_are_thinned_to_the_protocol_step():
    seqs, protocol, note = on_data_time_steps([hourly(1.0)], {"name": "cam5", "step_hours": 3.0})
    assert protocol["step_hours"] == 3.0 and "thinned to one in 3" in note
    assert seqs[0].sizes["time"] == 9 and (np.diff(seqs[0]["PSL"].values[:, 0, 0]) == 3).all()


def test_coarser_data_keep_their_step_and_the_protocol_draws_on_it():
    protocol = {"name": "cam5", "step_hours": 1.0, "max_lead_hours": 24.0}
    seqs, out, note = on_data_time_steps([hourly(3.0)], protocol)
    assert out == {**protocol, "step_hours": 3.0} and protocol["step_hours"] == 1.0  # the checkpoint's is untouched
    assert seqs[0].sizes["time"] == 25 and "multiples of 3 h" in note


def test_same_step_changes_nothing_and_incommensurate_steps_are_an_error():
    ds = hourly(3.0)
    seqs, protocol, note = on_data_time_steps([ds], {"step_hours": 3.0})
    assert seqs[0] is ds and note is None
    with pytest.raises(ConfigError, match="not multiples of one another"):
        on_data_time_steps([hourly(2.0)], {"step_hours": 3.0})
