"""The examples run and keep the figures they print."""
import runpy

import archspec
from conftest import ROOT

EXAMPLES = ROOT / "examples"


def test_googlenet_variant_walkthrough():
    summary = archspec.summarize(EXAMPLES / "googlenet_c100_64px.yaml")
    # torchvision googlenet 13,004,888 (REFERENCE.md) less 3 * 900 * (1024 + 1).
    assert summary.total_params == 13_004_888 - 3 * 900 * 1025
    assert summary.outputs == {"logits": (1, 100), "aux2": (1, 100), "aux1": (1, 100)}
    archspec.build(EXAMPLES / "googlenet_c100_64px.yaml", verify=True, device="meta")


def test_training_step_example_updates_weights():
    module = runpy.run_path(str(EXAMPLES / "train_step.py"))
    import torch

    net = archspec.build(module["SPEC"])
    first = next(net.parameters()).detach().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    main_loss, total = module["training_step"](net, optimizer, images, labels)
    assert total > main_loss > 0  # the aux terms are added, weighted 0.3 each
    assert not torch.equal(first, next(net.parameters()))
