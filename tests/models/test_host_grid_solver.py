"""climode's fixed-step solver on a host time grid gives torchdiffeq's results without reading device tensors."""

import numpy as np
import pytest
import torch
from torchdiffeq import odeint

from climode.models.config import SolverConfig
from climode.models.odefunc import ODEFunc, fixed_grid_odeint, integrate, step_grid
from climode.training.host_syncs import count_host_traffic


@pytest.mark.parametrize("method,step", [("rk4", 0.1), ("euler", 0.125), ("midpoint", 0.125), ("rk4", None)])
@pytest.mark.parametrize("times", [[0.0, 0.3, 0.55, 1.0], [0.1, 0.2, 0.3, 0.4], [0.0, 0.375]])
def test_same_states_gradients_and_evaluations_as_torchdiffeq(method, step, times):
    torch.manual_seed(0)
    func = ODEFunc(4, 8)
    y0 = torch.randn(2, 4, 8, 8, requires_grad=True)
    options = {"grid_constructor": step_grid(step)} if step else None
    func.reset_nfe()
    expected = odeint(func, y0, torch.tensor(times), method=method, options=options)
    expected_nfe = func.nfe
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), y0)
    func.reset_nfe()
    got = fixed_grid_odeint(func, y0, np.array(times), method, step)
    assert func.nfe == expected_nfe
    assert torch.equal(got, expected)
    (grad_got,) = torch.autograd.grad(got.square().sum(), y0)
    assert torch.allclose(grad_got, grad_expected, rtol=1e-5, atol=1e-7)


def test_backward_solves_take_their_steps():
    # torchdiffeq's reversed solve hands the grid constructor decreasing times, so step_grid took one step
    torch.manual_seed(0)
    func = ODEFunc(4, 8)
    y0 = torch.randn(1, 4, 8, 8)
    out = fixed_grid_odeint(func, y0, np.array([0.0, -0.25, -0.4]), "rk4", 0.1)
    assert func.nfe == 4 * 4  # 0 -> -0.4 in steps of 0.1
    fine = fixed_grid_odeint(func, y0, np.array([0.0, -0.25, -0.4]), "rk4", 0.01)
    assert (out - fine).abs().max() < 1e-4  # a converged solution, not one long step


def test_integrate_reads_no_device_tensor_and_keeps_float64_off_the_device():
    torch.manual_seed(0)
    func = ODEFunc(4, 8)
    y0 = torch.randn(1, 4, 8, 8)
    with count_host_traffic() as fixed:
        integrate(func, y0, np.array([0.0, 0.3, 0.55]), SolverConfig(method="rk4", step_size=0.1))
    assert fixed.n_syncs == 0
    with count_host_traffic() as adaptive:
        integrate(func, y0, np.array([0.0, 0.3, 0.55]), SolverConfig(method="dopri5"))
    assert not adaptive.float64  # torchdiffeq's time scalars in float32
    assert adaptive.n_syncs > 0  # its error control reads the device every step: why fixed steps exist
