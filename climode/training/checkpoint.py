"""Checkpoints: safetensors weights plus a JSON sidecar, and a separate training state.

Layout of a run directory::

    model-00001200.safetensors   weights (tensors only)
    model-00001200.json          sidecar (a CheckpointMeta): model name and config, variables,
                                 units, grid, normalisation, recipe, seed, step, version, sha256
    state-00001200.safetensors   optimiser / scheduler tensors and RNG states
    state-00001200.json          their non-tensor parts and the data position

Every file is written atomically, the sidecar last, so a crash never leaves a
checkpoint that looks complete but is not.  Loading reads safetensors and JSON
only: nothing is ever unpickled.  The newest checkpoint is found by step number.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from climode._version import __version__
from climode.errors import CheckpointError
from climode.io import atomic_path, atomic_write_text
from climode.models.checkpoint_meta import CheckpointMeta

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_NAME = re.compile(r"^model-(\d+)\.json$")
#: where the shipped models' files live (the climode.zoo package writes them there)
ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


@dataclass
class Checkpoint:
    """A loaded inference checkpoint: weights and sidecar metadata."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: CheckpointMeta

    @property
    def step(self) -> int:
        return self.meta.step


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_json(value: Any) -> Any:
    """Make dataclasses, numpy values and paths JSON-serialisable."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_json(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def _as_meta(meta: CheckpointMeta | Mapping[str, Any]) -> CheckpointMeta:
    """``meta`` as a record of JSON values (numpy values, paths and dataclasses converted)."""
    plain = meta.to_dict() if isinstance(meta, CheckpointMeta) else dict(meta)
    return CheckpointMeta.from_dict(_to_json(plain))


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], meta: CheckpointMeta | Mapping[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar atomically; return the sidecar path."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    record = _as_meta(meta)
    record = replace(
        record,
        schema_version=SCHEMA_VERSION,
        climode_version=__version__,
        weights=path.name,
        sha256=_sha256(path),
        saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        uuid=record.uuid or str(uuid.uuid4()),
    )
    sidecar = path.with_suffix(".json")
    atomic_write_text(sidecar, json.dumps(record.to_dict(), indent=2, sort_keys=True))
    return sidecar


def save_checkpoint(directory: str | Path, model: torch.nn.Module, step: int,
                    meta: CheckpointMeta | Mapping[str, Any]) -> Path:
    """Save the model's weights at ``step`` into run ``directory``; return the sidecar path."""
    directory = Path(directory)
    record = replace(_as_meta(meta), step=int(step))
    return save_weights(directory / f"model-{step:08d}.safetensors", model.state_dict(), record)


def load_checkpoint(path: str | Path, *, verify: bool = True) -> Checkpoint:
    """Load a checkpoint from its .safetensors or .json path, or from a run directory (newest)."""
    path = Path(path)
    if path.is_dir():
        newest = latest_checkpoint(path)
        if newest is None:
            raise CheckpointError(f"no complete checkpoint (model-*.json + .safetensors) in {path}")
        path = newest
    sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
    weights = sidecar.with_suffix(".safetensors")
    if not sidecar.exists() or not weights.exists():
        raise CheckpointError(f"checkpoint {path} is incomplete: need both {weights.name} and {sidecar.name}")
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint sidecar {sidecar} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint sidecar {sidecar} is not a JSON object")
    try:
        meta = CheckpointMeta.from_dict(data)
    except (TypeError, ValueError) as exc:  # a step or max_lead that is not a number
        raise CheckpointError(f"checkpoint sidecar {sidecar} has a bad value: {exc}") from exc
    if int(meta.schema_version if meta.schema_version is not None else -1) > SCHEMA_VERSION:
        raise CheckpointError(
            f"checkpoint {sidecar} has schema version {meta.schema_version}, newer than this climode "
            f"understands ({SCHEMA_VERSION}); upgrade climode"
        )
    if verify and meta.sha256 and _sha256(weights) != meta.sha256:
        raise CheckpointError(f"checkpoint weights {weights} do not match the hash in {sidecar.name}; the file is corrupt")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read checkpoint weights {weights}: {exc}") from exc
    return Checkpoint(path=weights, state_dict=plain_keys(state), meta=meta)


def checkpoint_path(spec: str | Path) -> Path:
    """A checkpoint file or run directory as given, or the sidecar of the shipped model of that name."""
    path = Path(spec)
    if not path.exists() and not path.with_suffix(".json").exists() and (ZOO_DIR / f"{path.name}.json").exists():
        return ZOO_DIR / f"{path.name}.json"
    return path


def plain_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State-dict keys without torch.compile's ``_orig_mod.`` wrapper segment.

    Runs that compiled submodules by replacing them (before climode compiled in
    place) saved ``encoder._orig_mod.*``; the plain model expects ``encoder.*``.
    """
    return {k.replace("._orig_mod.", ".").removeprefix("_orig_mod."): v for k, v in state.items()}


def checkpoint_steps(directory: str | Path) -> list[int]:
    """Steps of the complete checkpoints in ``directory``, ascending."""
    directory = Path(directory)
    steps = []
    if directory.is_dir():
        for p in directory.iterdir():
            m = _NAME.match(p.name)
            if m and p.with_suffix(".safetensors").exists():
                steps.append(int(m.group(1)))
    return sorted(steps)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The sidecar of the newest complete checkpoint, by step number (not directory order)."""
    steps = checkpoint_steps(directory)
    return Path(directory) / f"model-{steps[-1]:08d}.json" if steps else None


# ---------------------------------------------------------------- training state
def _flatten(prefix: str, value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; return the JSON remainder."""
    if isinstance(value, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[_to_json(k), _flatten(f"{prefix}.{k}", v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    return _to_json(value)


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
        if "__list__" in value:
            items = [_unflatten(v, tensors) for v in value["__list__"]]
            return tuple(items) if value.get("tuple") else items
        return {k: _unflatten(v, tensors) for k, v in value.items()}
    return value


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """The state of every random generator a training run uses; of CUDA, only ``device``'s (this rank's GPU)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(legacy=False), "python": random.getstate()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def cuda_rng_to_restore(saved: Any, device_index: int) -> torch.Tensor | None:
    """The saved CUDA generator state for GPU ``device_index``, or None when there is none.

    New checkpoints hold one state (the saving rank's GPU); older ones held a list
    with one state per GPU visible then, which may be longer or shorter than what
    this machine has: entry ``device_index`` is used when it exists.
    """
    if isinstance(saved, torch.Tensor):
        return saved
    if isinstance(saved, (list, tuple)) and 0 <= device_index < len(saved):
        return saved[device_index]
    return None


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore ``rng_state``'s generators; the CUDA one onto ``device`` (this rank's GPU)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and device is not None and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        cuda_state = cuda_rng_to_restore(state["cuda"], index)
        if cuda_state is None:
            log.warning("the checkpoint holds no CUDA random state for GPU %d; its generator keeps its seed", index)
        else:
            torch.cuda.set_rng_state(cuda_state, device)


def save_training_state(directory: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Save optimiser/scheduler/RNG/data-position state (nested dicts of tensors and plain values)."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten("state", state, tensors)
    weights = directory / f"state-{step:08d}.safetensors"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    sidecar = weights.with_suffix(".json")
    atomic_write_text(sidecar, json.dumps({"step": int(step), "schema_version": SCHEMA_VERSION, "state": skeleton}))
    return sidecar


def load_training_state(directory: str | Path, step: int) -> dict[str, Any]:
    directory = Path(directory)
    sidecar = directory / f"state-{step:08d}.json"
    weights = sidecar.with_suffix(".safetensors")
    if not sidecar.exists() or not weights.exists():
        raise CheckpointError(f"no training state for step {step} in {directory}; cannot resume exactly")
    skeleton = json.loads(sidecar.read_text())["state"]
    return _unflatten(skeleton, load_file(str(weights)))


def prune(directory: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (and their training states)."""
    steps = checkpoint_steps(directory)
    for step in steps[:-keep] if keep > 0 else []:
        for name in (f"model-{step:08d}", f"state-{step:08d}"):
            for suffix in (".json", ".safetensors"):
                (Path(directory) / f"{name}{suffix}").unlink(missing_ok=True)
