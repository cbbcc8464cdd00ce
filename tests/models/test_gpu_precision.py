"""Precision as docs/model.md promises it on GPUs, checked on the CPU: float32 state, float32 ODE, native bf16 only."""

import logging

import torch

import climode
from climode.forecast.checkpoint import set_precision
from climode.models import precision
from climode.models.config import ModelConfig
from climode.models.convgru import ConvGRUCell
from climode.models.odefunc import ODEFunc
from climode.models.vidode import VidODE


def test_convgru_blends_the_state_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    cell = ConvGRUCell(4, 4)
    h, x = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cell(h, x)
    assert out.dtype == torch.float32
    # a bf16 blend would round every value to 8 bits of mantissa
    assert (out != out.bfloat16().float()).float().mean() > 0.9
    reference = cell(h, x)
    assert (out - reference).abs().max() < 0.05


def test_ode_function_convolutions_run_without_tf32():
    func = ODEFunc(4, 8)
    seen = []
    func.net[0].register_forward_pre_hook(lambda *_: seen.append(torch.backends.cudnn.conv.fp32_precision))
    before = torch.backends.cudnn.conv.fp32_precision
    func(torch.zeros(()), torch.randn(1, 4, 8, 8))
    assert seen == ["ieee"]
    assert torch.backends.cudnn.conv.fp32_precision == before  # restored for the rest of the model


def test_bf16_autocast_only_on_gpus_with_native_bf16(monkeypatch, caplog):
    cfg = ModelConfig.tiny(amp=True)
    gpu = torch.device("cuda", 0)
    precision._warn_emulated_bf16.cache_clear()
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4
    with caplog.at_level(logging.WARNING, logger="climode.models.precision"):
        assert precision.autocast_dtype(cfg, gpu) is None
    assert "cuda:0 has no native bf16 (compute capability below 8.0): running in float32" in caplog.text
    assert precision.precision_name(cfg, gpu) == "float32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # A100
    assert precision.autocast_dtype(cfg, gpu) == torch.bfloat16
    assert precision.precision_name(cfg, gpu) == "bfloat16"
    assert precision.precision_name(cfg, torch.device("cpu")) == "float32"  # amp_cpu is off


def test_forecasts_run_in_the_recorded_training_precision():
    bundled = climode.load_model(device="cpu")
    assert not bundled.model.config.amp and not bundled.model.config.amp_cpu  # trained in float32
    model = VidODE(ModelConfig.tiny(amp=False, amp_cpu=False))
    set_precision(model, "bfloat16")  # recorded at training: bf16 on GPUs, the CPU keeps float32
    assert model.config.amp and not model.config.amp_cpu
    set_precision(model, "bfloat16", asked=True)
    assert model.config.amp_cpu
    set_precision(model, "float32")
    assert not model.config.amp and not model.config.amp_cpu
