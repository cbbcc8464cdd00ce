"""How far a forecast may reach and which values it may give: the decoder-step limit, the
trained horizon and physical bounds, each refused or warned about (a :class:`HorizonWarning`)."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from climode.errors import ClimodeError, HorizonWarning

log = logging.getLogger(__name__)

#: The most decoder steps (of the model's ``decoder_step``) a requested time may lie after the
#: observation before it: the decoder keeps every step's latent state, so memory and run
#: time grow with the lead (3072 h for the bundled model's 3 h step, far past any skill).
MAX_DECODER_STEPS = 1024
#: Leads (after the last observation) beyond this many times the checkpoint's trained ``max_lead``
#: are refused: far past the training horizon the recursion drifts into non-physical fields.
HARD_LIMIT_FACTOR = 8
#: Physical bounds of forecast fields (canonical units); values outside are masked (NaN) with a warning.
PHYSICAL_BOUNDS = {"PSL": (85_000.0, 110_000.0), "U850": (-150.0, 150.0), "V850": (-150.0, 150.0)}


def check_decoder_steps(step: float, obs_hours: np.ndarray, hours: list[float], init_hours: float) -> None:
    """Refuse times more than MAX_DECODER_STEPS decoder steps of ``step`` after the observation before them.

    The decoder recursion (Eq. 2) runs in steps of the model's ``decoder_step``
    from that observation to the requested time and keeps every step.
    """
    if step <= 0:
        return
    req = np.asarray(hours, dtype=np.float64)
    anchor = obs_hours[np.clip(np.searchsorted(obs_hours, req + 1e-6, side="right") - 1, 0, None)]
    steps = np.floor((req - anchor) / step + 1e-6)
    worst = int(np.argmax(steps))
    if steps[worst] > MAX_DECODER_STEPS:
        lead = req[worst] - init_hours
        raise ClimodeError(
            f"requested time {lead:+.10g} h needs {int(steps[worst])} decoder steps of {step:g} h; climode allows "
            f"at most {MAX_DECODER_STEPS} ({MAX_DECODER_STEPS * step:g} h after the observation before it) "
            "because memory and run time grow with every step: ask for earlier times")


def beyond_trained_horizon(max_lead: float | None, hours: list[float], init_hours: float) -> str:
    """Refuse leads past HARD_LIMIT_FACTOR x ``max_lead``; warn about leads past ``max_lead``.

    Returns the warning text ('' when every lead is within the trained horizon or it is unknown).
    """
    if max_lead is None:
        return ""
    leads = np.asarray(hours, dtype=np.float64) - init_hours
    limit = HARD_LIMIT_FACTOR * max_lead
    if leads.max() > limit + 1e-6:
        raise ClimodeError(
            f"lead {leads.max():+.10g} h is past {limit:g} h, {HARD_LIMIT_FACTOR}x the longest lead this model "
            f"was trained on (+{max_lead:g} h): ask for leads up to +{limit:g} h")
    far = leads > max_lead + 1e-6
    if not far.any():
        return ""
    text = (f"{int(far.sum())} requested time(s) (up to {leads.max():+.10g} h) are beyond the longest lead this "
            f"model was trained on (+{max_lead:g} h after the last input): expect little skill there")
    warn(text)
    return text


def mask_non_physical(pred: np.ndarray, variables: list[str]) -> str:
    """Set values outside PHYSICAL_BOUNDS to NaN in ``pred`` [N, K, C, H, W]; warn and describe what was masked."""
    parts = []
    for c, var in enumerate(variables):
        if var not in PHYSICAL_BOUNDS:
            continue
        lo, hi = PHYSICAL_BOUNDS[var]
        field_ = pred[:, :, c]
        bad = np.isfinite(field_) & ((field_ < lo) | (field_ > hi))
        if bad.any():
            field_[bad] = np.nan
            parts.append(f"{var} {int(bad.sum())} cell(s) outside [{lo:g}, {hi:g}]")
    if not parts:
        return ""
    text = "non-physical values masked (NaN): " + ", ".join(parts)
    warn(text)
    return text


def warn(text: str) -> None:
    """A HorizonWarning shown on every call (no once-per-location registry), and logged."""
    warnings.warn_explicit(text, HorizonWarning, __file__, 0, module=__name__, registry=None)
    log.debug("%s", text)
