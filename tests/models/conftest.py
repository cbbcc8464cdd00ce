import pytest
import torch

from climode.models.config import ModelConfig
from climode.models.vidode import VidODE


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return VidODE(ModelConfig.tiny()).eval()


@pytest.fixture
def frames():
    torch.manual_seed(1)
    return torch.rand(3, 5, 3, 8, 8)
