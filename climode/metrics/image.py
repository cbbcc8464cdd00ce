"""Video-frame metrics: SSIM, PSNR, MSE, MAE and (with local weights) LPIPS.

Frames are floats in [0, 1] with shape ``(..., C, H, W)`` (C = 1 or 3); numpy
arrays and torch tensors are accepted.  Every metric is computed per frame and
then averaged over all leading axes (``reduction="mean"``), or returned per
frame with shape ``(...)`` (``reduction="none"``).

- SSIM follows Wang et al. (2004): RGB is converted to luma with the ITU-R
  BT.601 weights (as MATLAB's ``rgb2gray``), 11x11 Gaussian window with
  sigma 1.5, population covariances, K1 = 0.01, K2 = 0.03, data range 1.
- PSNR is computed per frame, ``10 log10(1 / MSE_frame)``, and then averaged.
  (The published Vid-ODE code took the PSNR of the dataset-mean MSE instead,
  which is not the same number.)  An identical frame has PSNR = inf; pass
  ``max_db`` to cap it.
- LPIPS (AlexNet, v0.1) runs only with weights the user provides as a local
  safetensors file; nothing is ever downloaded.

torch is imported only by :func:`lpips`.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from climode.errors import CheckpointError, ConfigError, DataError, MissingDependencyError, require

log = logging.getLogger(__name__)

LPIPS_WEIGHTS_ENV = "CLIMODE_LPIPS_WEIGHTS"

#: ITU-R BT.601 luma weights (MATLAB rgb2gray), used for SSIM as in Wang et al. 2004.
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)

_REDUCTIONS = ("mean", "none")


def _to_numpy(x: Any) -> np.ndarray:
    """Convert a numpy array or torch tensor to a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_frames(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _to_numpy(x), _to_numpy(y)
    if x.shape != y.shape:
        raise DataError(
            f"prediction shape {x.shape} differs from target shape {y.shape}; pass frames of equal shape"
        )
    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise DataError(
            f"frames must have shape (..., C, H, W) with C = 1 or 3, got {x.shape}; "
            "move the channel axis before height and width"
        )
    for name, a in (("prediction", x), ("target", y)):
        if not np.all(np.isfinite(a)):
            raise DataError(f"{name} frames contain NaN or inf; fill or drop those frames first")
        if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
            raise DataError(
                f"{name} frames have values in [{a.min():.4g}, {a.max():.4g}], expected [0, 1]; "
                "rescale (e.g. divide 8-bit frames by 255) or clip them"
            )
    return np.clip(x, 0.0, 1.0), np.clip(y, 0.0, 1.0)


def _reduce(per_frame: np.ndarray, reduction: str) -> float | np.ndarray:
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"reduction={reduction!r} is not allowed; use one of {_REDUCTIONS}")
    if reduction == "none":
        return per_frame
    return float(np.mean(per_frame)) if per_frame.size else float("nan")


def to_gray(frames: Any) -> np.ndarray:
    """Luma of frames ``(..., C, H, W)`` as ``(..., H, W)`` (BT.601 weights for RGB)."""
    f = _to_numpy(frames)
    if f.shape[-3] == 1:
        return f[..., 0, :, :]
    w = np.asarray(LUMA_WEIGHTS)
    return np.tensordot(w, np.moveaxis(f, -3, 0), axes=1)


def ssim(pred: Any, target: Any, *, reduction: str = "mean") -> float | np.ndarray:
    """Structural similarity (Wang et al. 2004) per grayscale frame, then averaged."""
    x, y = _check_frames(pred, target)
    skm = require("skimage.metrics", "metrics")
    gx, gy = to_gray(x), to_gray(y)
    lead = gx.shape[:-2]
    if min(gx.shape[-2:]) < 11:
        raise DataError(
            f"SSIM with an 11x11 Gaussian window needs frames of at least 11x11 pixels, got {gx.shape[-2:]}"
        )
    fx = gx.reshape(-1, *gx.shape[-2:])
    fy = gy.reshape(-1, *gy.shape[-2:])
    vals = np.array(
        [
            skm.structural_similarity(
                a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for a, b in zip(fx, fy)
        ],
        dtype=np.float64,
    )
    return _reduce(vals.reshape(lead), reduction)


def psnr(
    pred: Any, target: Any, *, reduction: str = "mean", max_db: float | None = None
) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB (data range 1) per frame, then averaged.

    Identical frames give inf; ``max_db`` caps each frame's value before averaging.
    """
    x, y = _check_frames(pred, target)
    skm = require("skimage.metrics", "metrics")
    lead = x.shape[:-3]
    fx = x.reshape(-1, *x.shape[-3:])
    fy = y.reshape(-1, *y.shape[-3:])
    vals = np.empty(fx.shape[0])
    with np.errstate(divide="ignore"):
        for i, (a, b) in enumerate(zip(fx, fy)):
            vals[i] = np.inf if np.array_equal(a, b) else skm.peak_signal_noise_ratio(b, a, data_range=1.0)
    if max_db is not None:
        vals = np.minimum(vals, float(max_db))
    return _reduce(vals.reshape(lead), reduction)


def mse(pred: Any, target: Any, *, reduction: str = "mean") -> float | np.ndarray:
    """Mean squared error per frame (over C, H, W), then averaged."""
    x, y = _check_frames(pred, target)
    return _reduce(np.mean((x - y) ** 2, axis=(-3, -2, -1)), reduction)


def mae(pred: Any, target: Any, *, reduction: str = "mean") -> float | np.ndarray:
    """Mean absolute error per frame (over C, H, W), then averaged."""
    x, y = _check_frames(pred, target)
    return _reduce(np.mean(np.abs(x - y), axis=(-3, -2, -1)), reduction)


# --------------------------------------------------------------------------- LPIPS

#: AlexNet ``features`` convolutions: (index in torchvision's Sequential, in, out, kernel, stride, pad).
ALEXNET_CONVS = (
    (0, 3, 64, 11, 4, 2),
    (3, 64, 192, 5, 1, 2),
    (6, 192, 384, 3, 1, 1),
    (8, 384, 256, 3, 1, 1),
    (10, 256, 256, 3, 1, 1),
)
#: LPIPS v0.1 ScalingLayer constants for inputs in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
#: The smallest frame side AlexNet's five LPIPS taps accept.
LPIPS_MIN_SIZE = 31

_NOWEIGHTS_MSG = (
    "LPIPS needs local AlexNet+LPIPS weights and climode never downloads them; "
    f"set {LPIPS_WEIGHTS_ENV}=/path/to/lpips_alex.safetensors or pass weights_path= "
    "(a safetensors file with keys features.{{0,3,6,8,10}}.weight/bias and lin{{0..4}}.model.1.weight; "
    "see docs/metrics.md for a conversion recipe)"
)


def lpips_weight_shapes() -> dict[str, tuple[int, ...]]:
    """The tensors (name -> shape) a LPIPS-AlexNet safetensors file must hold."""
    shapes: dict[str, tuple[int, ...]] = {}
    for idx, cin, cout, k, _, _ in ALEXNET_CONVS:
        shapes[f"features.{idx}.weight"] = (cout, cin, k, k)
        shapes[f"features.{idx}.bias"] = (cout,)
    for i, (_, _, cout, _, _, _) in enumerate(ALEXNET_CONVS):
        shapes[f"lin{i}.model.1.weight"] = (1, cout, 1, 1)
    return shapes


_LPIPS_SLICE_KEYS = {  # names used by the ``lpips`` package's full state dict
    f"net.slice{s}.{idx}.": f"features.{idx}." for s, idx in zip(range(1, 6), (0, 3, 6, 8, 10))
}


def _rename_lpips_key(key: str) -> str:
    for old, new in _LPIPS_SLICE_KEYS.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _resolve_weights(weights_path: str | os.PathLike | None) -> Path:
    path = weights_path if weights_path is not None else os.environ.get(LPIPS_WEIGHTS_ENV)
    if not path:
        raise MissingDependencyError(_NOWEIGHTS_MSG)
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(
            f"LPIPS weights file {str(p)!r} does not exist; fix weights_path or {LPIPS_WEIGHTS_ENV}"
        )
    return p


@lru_cache(maxsize=2)
def _load_lpips(path: str, mtime: float):
    """Build the LPIPS-AlexNet network from a safetensors file (cached by path and mtime)."""
    torch = require("torch", "metrics")
    st = require("safetensors.torch", "metrics")
    try:
        raw = st.load_file(path, device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read LPIPS weights {path!r} as safetensors: {exc}") from exc
    tensors = {_rename_lpips_key(k): v for k, v in raw.items()}
    expected = lpips_weight_shapes()
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise CheckpointError(
            f"LPIPS weights {path!r} lack {len(missing)} tensors (e.g. {missing[0]}); "
            "the file must hold AlexNet features.* and LPIPS lin*.model.1.weight tensors"
        )
    for k, shape in expected.items():
        if tuple(tensors[k].shape) != shape:
            raise CheckpointError(
                f"LPIPS weight {k} in {path!r} has shape {tuple(tensors[k].shape)}, expected {shape}"
            )
    net = _LpipsAlex(torch)
    net.load({k: tensors[k].to(torch.float32) for k in expected})
    return net


class _LpipsAlex:
    """LPIPS v0.1 with an AlexNet trunk in plain torch (no torchvision)."""

    def __init__(self, torch):
        self.torch = torch
        nn = torch.nn
        self.convs = nn.ModuleList(
            [nn.Conv2d(cin, cout, k, stride=s, padding=p) for _, cin, cout, k, s, p in ALEXNET_CONVS]
        )
        self.lins = nn.ModuleList([nn.Conv2d(c[2], 1, 1, bias=False) for c in ALEXNET_CONVS])
        self.shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
        self.scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
        self.convs.eval()
        self.lins.eval()

    def load(self, tensors: dict) -> None:
        with self.torch.no_grad():
            for conv, (idx, *_rest) in zip(self.convs, ALEXNET_CONVS):
                conv.weight.copy_(tensors[f"features.{idx}.weight"])
                conv.bias.copy_(tensors[f"features.{idx}.bias"])
            for i, lin in enumerate(self.lins):
                lin.weight.copy_(tensors[f"lin{i}.model.1.weight"])

    def features(self, x):
        """relu1..relu5 of AlexNet's features (the LPIPS taps)."""
        F = self.torch.nn.functional
        x = (x - self.shift) / self.scale
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max-pool after relu1 and relu2
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats

    def __call__(self, x, y):
        """Per-image LPIPS distance for x, y in [-1, 1] with shape (N, 3, H, W)."""
        torch = self.torch
        with torch.no_grad():
            total = torch.zeros(x.shape[0], dtype=torch.float32)
            for fx, fy, lin in zip(self.features(x), self.features(y), self.lins):
                nx = fx / (torch.sqrt(torch.sum(fx**2, dim=1, keepdim=True)) + 1e-10)
                ny = fy / (torch.sqrt(torch.sum(fy**2, dim=1, keepdim=True)) + 1e-10)
                total += lin((nx - ny) ** 2).mean(dim=(2, 3)).flatten()
        return total


def lpips(
    pred: Any,
    target: Any,
    weights_path: str | os.PathLike | None = None,
    *,
    reduction: str = "mean",
    batch_size: int = 64,
) -> float | np.ndarray:
    """LPIPS (AlexNet) distance per frame, then averaged; needs local weights.

    The weights come from ``weights_path`` or the ``CLIMODE_LPIPS_WEIGHTS``
    environment variable; without them this raises MissingDependencyError.
    Grayscale frames are repeated to three channels.
    """
    path = _resolve_weights(weights_path)
    x, y = _check_frames(pred, target)
    if min(x.shape[-2:]) < LPIPS_MIN_SIZE:
        raise DataError(
            f"LPIPS-AlexNet needs frames of at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE} pixels, "
            f"got {x.shape[-2:]}; upsample the frames or skip LPIPS"
        )
    net = _load_lpips(str(path), path.stat().st_mtime)
    torch = net.torch
    lead = x.shape[:-3]
    fx = x.reshape(-1, *x.shape[-3:])
    fy = y.reshape(-1, *y.shape[-3:])
    if fx.shape[1] == 1:
        fx, fy = np.repeat(fx, 3, axis=1), np.repeat(fy, 3, axis=1)
    out = []
    for i in range(0, fx.shape[0], max(1, int(batch_size))):
        a = torch.from_numpy(fx[i : i + batch_size]).float() * 2 - 1
        b = torch.from_numpy(fy[i : i + batch_size]).float() * 2 - 1
        out.append(net(a, b).numpy().astype(np.float64))
    vals = np.concatenate(out) if out else np.zeros(0)
    return _reduce(vals.reshape(lead), reduction)
