from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def outputs_agree(ours, theirs, atol=1e-5):
    """Max abs difference of two eval outputs, for assertion messages."""
    return (ours - theirs).abs().max().item()


def flop_counter_macs(model, input_shape, training=False):
    """What torch's FlopCounterMode counts for one forward of `model` on one sample,
    halved (a multiply-accumulate is two flops). Runs on the meta device: no memory,
    no arithmetic. This is archspec's definition of MACs."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.to("meta").train(training)
    x = torch.empty(1 if not training else 2, *input_shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2 // (2 if training else 1)


def within(value, reference, fraction=0.01):
    """`value` is within `fraction` of `reference` (REFERENCE.md's torchinfo column)."""
    return abs(value - reference) <= fraction * reference
