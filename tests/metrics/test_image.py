import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from climode.errors import CheckpointError, DataError, MissingDependencyError
from climode.metrics import image


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(2, 3, 3, 24, 24))
    x = np.clip(y + rng.normal(scale=0.05, size=y.shape), 0, 1)
    x[1, 2] = np.clip(y[1, 2] + 0.2, 0, 1)  # one much worse frame
    return x, y


def _gray(f):
    return 0.2989 * f[0] + 0.5870 * f[1] + 0.1140 * f[2]


def test_ssim_matches_skimage_on_bt601_gray_per_frame(frames):
    x, y = frames
    per = image.ssim(x, y, reduction="none")
    assert per.shape == (2, 3)
    for i in range(2):
        for t in range(3):
            ref = structural_similarity(
                _gray(x[i, t]), _gray(y[i, t]), data_range=1.0, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False,
            )
            assert per[i, t] == pytest.approx(ref, abs=1e-12)
    assert image.ssim(x, y) == pytest.approx(per.mean())
    assert image.ssim(y, y) == pytest.approx(1.0)


def test_psnr_is_averaged_per_frame_not_from_mean_mse(frames):
    x, y = frames
    per = image.psnr(x, y, reduction="none")
    for i in range(2):
        for t in range(3):
            assert per[i, t] == pytest.approx(peak_signal_noise_ratio(y[i, t], x[i, t], data_range=1.0))
            assert per[i, t] == pytest.approx(10 * np.log10(1 / np.mean((x[i, t] - y[i, t]) ** 2)))
    mean_psnr = image.psnr(x, y)
    assert mean_psnr == pytest.approx(per.mean())
    from_mean_mse = 10 * np.log10(1 / np.mean((x - y) ** 2))
    assert abs(mean_psnr - from_mean_mse) > 0.5  # the published code's number differs
    assert image.psnr(y, y) == np.inf
    assert image.psnr(y, y, max_db=60.0) == 60.0


def test_mse_mae_by_hand_and_torch_input(frames):
    x, y = frames
    assert image.mse(x, y) == pytest.approx(np.mean((x - y) ** 2))
    assert image.mae(x, y) == pytest.approx(np.mean(np.abs(x - y)))
    np.testing.assert_allclose(image.mse(x, y, reduction="none"), ((x - y) ** 2).mean(axis=(2, 3, 4)))
    assert image.mse(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(image.mse(x, y))


def test_bad_inputs_are_data_errors(frames):
    x, y = frames
    with pytest.raises(DataError, match="rescale"):
        image.mse(x * 255, y)
    with pytest.raises(DataError, match="differs"):
        image.mse(x[:1], y)
    with pytest.raises(DataError, match="C = 1 or 3"):
        image.mse(x[..., :2, :, :], y[..., :2, :, :])
    with pytest.raises(DataError, match="11x11"):
        image.ssim(x[..., :8, :8], y[..., :8, :8])


# ------------------------------------------------------------------ LPIPS


def test_lpips_without_weights_raises_with_instructions(monkeypatch):
    monkeypatch.delenv(image.LPIPS_WEIGHTS_ENV, raising=False)
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(MissingDependencyError, match=image.LPIPS_WEIGHTS_ENV):
        image.lpips(x, x)


def test_lpips_missing_or_bad_file(tmp_path):
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(CheckpointError, match="does not exist"):
        image.lpips(x, x, tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        image.lpips(x, x, bad)


@pytest.fixture
def random_weights(tmp_path):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, shape in image.lpips_weight_shapes().items():
        t = torch.randn(shape, generator=g) * 0.1
        tensors[name] = t.abs() if name.startswith("lin") else t
    path = tmp_path / "lpips_alex.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def _reference_lpips(x, y, tensors):
    """LPIPS via a torchvision-layout AlexNet Sequential (state-dict keys features.N.*)."""
    nn = torch.nn
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )
    features.load_state_dict({k[len("features."):]: v for k, v in tensors.items() if k.startswith("features.")})
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(im):
        h = (im * 2 - 1 - shift) / scale
        out = []
        for i, layer in enumerate(features[:12]):  # the last max-pool is not an LPIPS tap
            h = layer(h)
            if i in (1, 4, 7, 9, 11):
                out.append(h)
        return out

    with torch.no_grad():
        total = 0
        for k, (a, b) in enumerate(zip(taps(x), taps(y))):
            a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
            b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
            w = tensors[f"lin{k}.model.1.weight"]
            total = total + ((a - b) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean(dim=(1, 2))
    return total.numpy()


def test_lpips_with_random_local_weights(random_weights, monkeypatch):
    path, tensors = random_weights
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 3, 40, 36))
    y = np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1)
    assert image.lpips(x, x, path) == pytest.approx(0.0, abs=1e-7)
    per = image.lpips(x, y, path, reduction="none")
    assert per.shape == (2,) and np.all(per > 0)
    ref = _reference_lpips(torch.from_numpy(x).float(), torch.from_numpy(y).float(), tensors)
    np.testing.assert_allclose(per, ref, rtol=1e-4)
    monkeypatch.setenv(image.LPIPS_WEIGHTS_ENV, str(path))
    assert image.lpips(x, y) == pytest.approx(per.mean())
    with pytest.raises(DataError, match="at least 31"):
        image.lpips(x[..., :20, :20], y[..., :20, :20])
