"""Models shipped with climode, and how a trained run becomes one.

- ``hurricanes_cpu`` (the default): Vid-ODE trained by ``recipes/hurricanes_cpu.yaml`` on the
  synthetic hurricane world, 1.5 degrees, North Atlantic (docs/model_card.md);
- ``held_suarez_cpu`` (version 2): Vid-ODE trained by ``recipes/held_suarez_cpu.yaml`` on the
  physical world, global at 3.75 degrees, both hemispheres, hourly leads to +24 h
  (docs/model_card_held_suarez.md);
- ``video_rgb_cpu``: the RGB video model (docs/video_model_card.md).

Each is loaded by its name (``--checkpoint held_suarez_cpu``).  Export a run with::

    python -c "from climode.zoo import export; export('runs/hurricanes_cpu', 'hurricanes_cpu')"
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

ZOO = Path(__file__).resolve().parent
DISCLAIMER = "trained on synthetic data; not an operational forecast"


def export(run_dir: str | Path, name: str, description: str = "", disclaimer: str = DISCLAIMER) -> Path:
    """Copy the newest checkpoint of ``run_dir`` into the zoo as ``name`` (weights + sidecar)."""
    from climode.training.checkpoint import load_checkpoint, save_weights

    ckpt = load_checkpoint(run_dir)
    meta = ckpt.meta
    meta = replace(
        meta,
        sha256=None,  # save_weights writes these three anew
        weights=None,
        saved_at=None,
        description=description or meta.description or (
            f"{meta.model or 'vidode'} trained by recipe {meta.recipe.get('name')} "
            f"for {ckpt.step} steps on {meta.trained_on}"),
        disclaimer=disclaimer,
        exported_from=f"{Path(run_dir).name}/{ckpt.path.name}",
    )
    return save_weights(ZOO / f"{name}.safetensors", ckpt.state_dict, meta)
