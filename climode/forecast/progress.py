"""A progress bar over a forecast: its stages and the decoder's steps."""

from __future__ import annotations

import contextlib
import os

import numpy as np


class ForecastProgress:
    """A tqdm bar over a forecast: its stages (regridding, regridding back) and the decoder's steps
    (forward calls of its Conv-Decoder G), counted by a forward hook.

    ``progress`` False: none; None: only when stderr is a terminal.  The bar shows only once
    the forecast has run ``$CLIMODE_PROGRESS_DELAY`` seconds (default 2), so short forecasts
    stay silent.
    """

    def __init__(self, model, hours, obs_hours, progress: bool | None):
        self.model = model
        self.bar = None
        if progress is False or not hasattr(getattr(model, "decoder", None), "register_forward_hook"):
            return
        from tqdm.auto import tqdm

        step = float(getattr(getattr(model, "config", None), "decoder_step", 0.0) or 0.0)
        total = int(np.ceil((max(hours) - min(obs_hours)) / step)) + len(hours) if step > 0 else None
        self.bar = tqdm(total=total, desc="climode forecast", unit="step", leave=False,
                        delay=float(os.environ.get("CLIMODE_PROGRESS_DELAY", "2")),
                        disable=None if progress is None else False)

    def stage(self, text: str) -> None:
        """Name the stage now running (shown if the bar is, once its delay has passed)."""
        if self.bar is not None:
            self.bar.set_description_str(f"climode forecast: {text}", refresh=False)
            if not self.bar.disable and self.bar.format_dict["elapsed"] >= self.bar.delay:
                self.bar.refresh()

    @contextlib.contextmanager
    def decoding(self):
        """Count the decoder's steps while the block runs."""
        bar = self.bar
        if bar is None:
            yield
            return
        self.stage("encoding and decoding")

        def count(*_) -> None:  # a forward hook's return value would replace the module's output
            bar.update(1)

        handle = self.model.decoder.register_forward_hook(count)
        try:
            yield
        finally:
            handle.remove()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
