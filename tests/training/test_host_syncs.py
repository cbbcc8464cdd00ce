"""Host round trips of a training step, counted on the CPU as if its tensors lived on a GPU."""

import pytest
import torch

from climode.training.host_syncs import count_host_traffic, optimizer_host_tensors
from climode.training.recipe import load_recipe
from climode.training.trainer import Trainer, _to_device

#: Device reads a training step may make, and why each one is needed:
#: - step.py, one stacked read of the losses before the backward and one of the gradient norm before the
#:   optimiser step: each decides whether the step is taken at all (and the first is what gets logged);
#:   with discriminators, the same two for their update;
#: - vidode.py's check that the observed input frames are finite (indexed from the host mask, so no boolean-mask
#:   sync): a one-line error naming the bad input
#:   instead of a NaN loss.
#: Fixed-step solvers step on a host grid and read nothing; adaptive solvers (dopri5) read their error
#: estimate every step inside torchdiffeq, which is why the budget is set for the fixed-step recipe.
BUDGET = {False: 3, True: 5}
ALLOWED = ("climode/training/step.py", "climode/models/vidode.py")


def test_the_counter_attributes_device_reads_and_ignores_host_data():
    weight = torch.nn.Parameter(torch.ones(3))
    with count_host_traffic() as traffic:
        plan = torch.tensor([0.0, 1.0, 2.0])  # host data: reading it costs nothing
        assert float(plan.sum()) == 3.0
        moved = plan.to("cpu")
        loss = (weight * moved).sum()
        value = loss.item()
        finite = bool(torch.isfinite(loss))
        positive = weight[weight > 0]  # its size depends on device values
        positive = weight[plan > 0]  # a host mask: known without the device
    assert value == 3.0 and finite and len(positive) == 2
    lines = sorted(traffic.syncs)
    assert len(lines) == 3 and all("tests/training/test_host_syncs.py" in k for k in lines)
    assert {k.split(" ", 1)[1] for k in lines} == {"item", "__bool__", "__getitem__[bool mask]"}
    assert traffic.n_uploads == 1 and traffic.n_syncs == 3


@pytest.mark.parametrize("discriminators", [False, True])
def test_a_training_step_stays_within_its_sync_budget(tiny_recipe, tmp_path, discriminators):
    recipe = load_recipe(tiny_recipe, [f"train.discriminators={str(discriminators).lower()}",
                                       "data.validation_split=null"])
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    trainer._setup()
    batches = iter(trainer._loader(0, 0))
    trainer.step_fn(_to_device(next(batches), trainer.device))  # optimiser state exists from here on
    host = optimizer_host_tensors(trainer.optimizer, trainer.disc.optimizer if trainer.disc else None)
    with count_host_traffic(host) as traffic:
        result = trainer.step_fn(_to_device(next(batches), trainer.device))
    assert traffic.n_syncs <= BUDGET[discriminators], traffic.syncs
    assert all(k.startswith(ALLOWED) for k in traffic.syncs), traffic.syncs
    assert not traffic.float64, traffic.float64  # no float64 arithmetic on the device
    losses = result.losses  # logged from the one stacked read
    assert isinstance(losses["total"], float) and losses["recon"] > 0
    if not discriminators:
        assert losses["total"] == pytest.approx(losses["recon"] + recipe.loss.diff * losses.get("diff", 0.0), rel=1e-5)
