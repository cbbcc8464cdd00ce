"""Models shipped with climode, and how a trained run becomes one.

``hurricanes_cpu``: Vid-ODE trained by ``recipes/hurricanes_cpu.yaml`` on the
synthetic hurricane world (see docs/model_card.md).  Export a run with::

    python -c "from climode.zoo import export; export('runs/hurricanes_cpu', 'hurricanes_cpu')"
"""

from __future__ import annotations

from pathlib import Path

ZOO = Path(__file__).resolve().parent
DISCLAIMER = "trained on synthetic data; not an operational forecast"


def export(run_dir: str | Path, name: str, description: str = "", disclaimer: str = DISCLAIMER) -> Path:
    """Copy the newest checkpoint of ``run_dir`` into the zoo as ``name`` (weights + sidecar)."""
    from climode.training.checkpoint import load_checkpoint, save_weights

    ckpt = load_checkpoint(run_dir)
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("sha256", "weights", "saved_at")}
    meta["description"] = description or meta.get("description") or (
        f"{meta.get('model', 'vidode')} trained by recipe {meta.get('recipe', {}).get('name')} "
        f"for {ckpt.step} steps on {meta.get('trained_on')}")
    meta["disclaimer"] = disclaimer
    meta["exported_from"] = f"{Path(run_dir).name}/{ckpt.path.name}"
    return save_weights(ZOO / f"{name}.safetensors", ckpt.state_dict, meta)
