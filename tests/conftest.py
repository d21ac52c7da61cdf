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
