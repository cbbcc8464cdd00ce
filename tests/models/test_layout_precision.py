"""Memory layout and mixed precision change how the model computes, never what."""

import pytest
import torch

from climode.models.config import ModelConfig
from climode.models.decoder import ConvDecoder
from climode.models.layout import like_weight
from climode.models.precision import autocast, cpu_has_native_bf16
from climode.models.vidode import VidODE

TIMES = [0.0, 1.0, 2.0, 3.0, 4.0]
QUERIES = [4.5, 5.0, 6.0]


def _pair(**overrides):
    torch.manual_seed(0)
    a = VidODE(ModelConfig.tiny(channels_last=False, **overrides))
    b = VidODE(ModelConfig.tiny(channels_last=True, **overrides))
    b.load_state_dict(a.state_dict())
    return a, b


def test_like_weight_follows_the_weight_layout():
    x = torch.randn(2, 4, 5, 5)
    nhwc = torch.nn.Conv2d(4, 3, 3).to(memory_format=torch.channels_last)
    nchw = torch.nn.Conv2d(4, 3, 3)
    assert like_weight(x, nhwc.weight).is_contiguous(memory_format=torch.channels_last)
    assert not like_weight(x, nhwc.weight).is_contiguous()
    assert like_weight(x, nchw.weight) is x
    assert torch.equal(like_weight(x, nhwc.weight), x)


def test_decoder_G_runs_channels_last_on_contiguous_inputs():
    """Inputs rebuilt by cat/stack arrive NCHW; G must still upsample and convolve channels-last."""
    g = ConvDecoder(8, 3, 2).to(memory_format=torch.channels_last)
    seen = []
    g.net[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    h = torch.randn(2, 8, 4, 4)
    assert h.is_contiguous()
    g(h, h)
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()


def test_channels_last_model_gives_the_same_forecast_and_gradients(frames):
    plain, nhwc = _pair()
    grads = []
    outs = []
    for model in (plain, nhwc):
        model.train()
        out = model(frames, TIMES, QUERIES)
        out.frames.square().mean().backward()
        outs.append(out.frames.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-3)


def test_amp_cpu_runs_convolutions_in_bf16_and_stays_close_to_float32(frames):
    torch.manual_seed(0)
    fp32 = VidODE(ModelConfig.tiny()).eval()
    bf16 = VidODE(ModelConfig.tiny(amp_cpu=True)).eval()
    bf16.load_state_dict(fp32.state_dict())
    dtypes = []
    bf16.decoder.net[1].register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    with torch.no_grad():
        ref = fp32(frames, TIMES, QUERIES).frames
        got = bf16(frames, TIMES, QUERIES).frames
    assert dtypes and dtypes[0] == torch.bfloat16  # G's convolution ran in bf16
    assert got.dtype == torch.float32  # frames come back in float32
    assert not torch.equal(got, ref)  # bf16 really changed the arithmetic
    # bf16 has 8 mantissa bits: frames of order 1 agree to a few 1e-3
    torch.testing.assert_close(got, ref, atol=3e-2, rtol=0)


def test_amp_cpu_off_by_default_and_amp_alone_leaves_the_cpu_in_float32():
    cfg = ModelConfig.tiny()
    assert cfg.amp and not cfg.amp_cpu
    with autocast(cfg, torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(ModelConfig.tiny(amp_cpu=True), torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_native_bf16_detection_answers():
    assert isinstance(cpu_has_native_bf16(), bool)


@pytest.mark.parametrize("memory_saving", [False, True])
def test_amp_cpu_trains(frames, memory_saving):
    torch.manual_seed(0)
    model = VidODE(ModelConfig.tiny(amp_cpu=True, memory_saving=memory_saving)).train()
    out = model(frames, TIMES, QUERIES)
    out.frames.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.dtype == torch.float32 for g in grads)
