"""A forecast model from a checkpoint: its network, sidecar, device and precision, checked before use.

torch is imported only when a model is loaded (it is heavy; the forecast
package's output checks and time formatting do without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from climode.errors import CheckpointError, ClimodeError
from climode.models.checkpoint_meta import CheckpointMeta

if TYPE_CHECKING:
    import torch

ZOO = Path(__file__).resolve().parent.parent / "zoo"
BUNDLED = ZOO / "hurricanes_cpu.json"  # climode/zoo, see climode.zoo
PRECISIONS = ("float32", "bfloat16")


@dataclass
class LoadedCheckpoint:
    """The network (weights loaded, on ``device``) and the sidecar it was built from."""

    model: torch.nn.Module
    meta: CheckpointMeta
    path: Path
    device: torch.device


def load_checkpoint_model(path: str | Path | None = None, device: str | None = "auto", *, video: bool = False,
                          precision: str | None = None) -> LoadedCheckpoint:
    """Load a checkpoint (the bundled model for None); ``video=True`` also accepts models of video frames.

    The model runs in the precision it was trained in (the sidecar's
    ``training.precision``) unless ``precision`` ("float32" or "bfloat16") says otherwise.
    """
    from climode.models.registry import get_model
    from climode.training.checkpoint import checkpoint_path, load_checkpoint

    source = checkpoint_path(path) if path is not None else BUNDLED  # a file, run directory or shipped name
    if path is None and not BUNDLED.exists():
        raise CheckpointError("the bundled model is missing from this installation; pass --checkpoint")
    if not any(p.exists() for p in (source, source.with_suffix(".json"), source.with_suffix(".safetensors"))):
        raise CheckpointError(f"checkpoint {source} not found: give a model .json/.safetensors file or a run "
                              "directory, or omit --checkpoint for the bundled model")
    ckpt = load_checkpoint(source)
    meta = ckpt.meta
    missing = meta.missing("model", "config", "variables", "normalization")
    if missing:
        raise CheckpointError(f"checkpoint {ckpt.path} has no {missing[0]!r} in its sidecar; it is not a climode "
                              "forecast model")
    if not (video and meta.is_video):
        check_variables(meta.variables, ckpt.path, meta.is_video)
    torch_device = resolve_device(device)
    model = get_model(meta.model, meta.config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {ckpt.path} does not match its own config: {str(exc).splitlines()[0]}") from exc
    set_precision(model, precision or meta.precision, asked=precision is not None)
    model.to(torch_device)
    return LoadedCheckpoint(model, meta, ckpt.path, torch_device)


def resolve_device(name: str | None) -> torch.device:
    """The torch device ``name`` ("auto" or None: CUDA when there is one, else the CPU)."""
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClimodeError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def set_precision(model, precision: str | None, *, asked: bool = False) -> None:
    """Run ``model`` in ``precision``: "float32", or "bfloat16" autocast (None: as its config says).

    A precision the user ``asked`` for applies on every device; one recorded at
    training time turns bf16 on for GPUs only (``amp``), and the CPU keeps its
    ``amp_cpu`` switch.  A checkpoint without a recorded precision keeps its config.
    """
    config = getattr(model, "config", None)
    if precision is None or config is None:
        return
    if precision not in PRECISIONS:
        raise ClimodeError(f"precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    bf16 = precision == "bfloat16"
    if hasattr(config, "amp"):
        config.amp = bf16
    if hasattr(config, "amp_cpu") and (asked or not bf16):
        config.amp_cpu = bf16


def check_variables(variables: list[str], path, video: bool = False) -> None:
    """A checkpoint whose variables climode cannot read from data is refused at load time."""
    from climode.data.lexicon import CANONICAL

    unsupported = [v for v in variables if v not in CANONICAL]
    if unsupported and video:
        raise CheckpointError(f"checkpoint {path} is a video model (frames, not {', '.join(CANONICAL)}): score it "
                              "with climode evaluate --data <video benchmark>, or use a climate checkpoint")
    if unsupported:
        raise CheckpointError(
            f"checkpoint {path} forecasts {', '.join(variables)}, but climode reads only {', '.join(CANONICAL)} "
            f"from data ({', '.join(unsupported)} not supported): use a checkpoint trained on those, or omit "
            "--checkpoint for the bundled model")
