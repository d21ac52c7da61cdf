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


def _plain_conv1d_resnet(channels=12, width=32, kernel=7, num_classes=5):
    """examples/conv1d_resnet.yaml written by hand with torch.nn's 1-D modules, under
    the names the spec gives its nodes."""
    import torch
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, out, stride):
            super().__init__()
            self.conv1 = nn.Conv1d(cin, out, kernel, stride, kernel // 2, bias=False)
            self.bn1 = nn.BatchNorm1d(out)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv1d(out, out, kernel, 1, kernel // 2, bias=False)
            self.bn2 = nn.BatchNorm1d(out)
            self.downsample = (nn.Sequential(nn.Conv1d(cin, out, 1, stride, bias=False), nn.BatchNorm1d(out))
                               if stride != 1 or cin != out else None)
            self.relu = nn.ReLU()

        def forward(self, x):
            body = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu(body + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(channels, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm1d(width)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool1d(3, 2, 1)
            self.layer1 = nn.Sequential(Basic(width, width, 1), Basic(width, width, 1))
            self.layer2 = nn.Sequential(Basic(width, 2 * width, 2), Basic(2 * width, 2 * width, 1))
            self.layer3 = nn.Sequential(Basic(2 * width, 4 * width, 2), Basic(4 * width, 4 * width, 1))
            self.fc = nn.Linear(4 * width, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool1d(x, 1), 1))

    return Net()


def test_conv1d_example_is_the_plain_torch_network():
    import torch

    from conftest import flop_counter_macs

    path = EXAMPLES / "conv1d_resnet.yaml"
    torch.manual_seed(0)
    plain = _plain_conv1d_resnet().eval()
    ours = archspec.build(path).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in plain.parameters())
    ours.load_state_dict(plain.state_dict(), strict=True)
    plain.load_state_dict(ours.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(plain.state_dict())

    # Inferred shapes against the plain network's own, caught by hooks.
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen[name] = tuple(out.shape)  # returns None: the output is kept
        return hook

    for name in ("maxpool", "layer1", "layer3.0.downsample", "layer3", "fc"):
        plain.get_submodule(name).register_forward_hook(record(name))
    x = torch.randn(2, 12, 1000)
    with torch.no_grad():
        expected = plain(x)
        assert (ours(x) - expected).abs().max().item() <= 1e-5
    rows = {row.name: row.shape for row in archspec.summarize(path, batch=2).rows}
    assert rows["maxpool"] == seen["maxpool"] and rows["layer3.0.downsample"] == seen["layer3.0.downsample"]
    assert rows["layer1.1.relu"] == seen["layer1"] and rows["layer3.1.relu"] == seen["layer3"]
    assert rows["fc"] == seen["fc"] == (2, 5)
    assert archspec.summarize(path).total_macs == flop_counter_macs(_plain_conv1d_resnet(), (12, 1000))
