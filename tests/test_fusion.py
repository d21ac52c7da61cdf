"""archspec.fuse: batch norms folded into the layer before them, for inference.

Batch norm statistics and affine parameters are drawn at random before fusing, so each
fold really changes the weights; the unfused network in eval mode (and, where it
exists, torchvision's with the same weights) is the oracle the fused one must follow.
"""
import copy
import textwrap

import pytest
import torch
import torch.nn as nn

import archspec
from archspec import SpecError, prepacked
from archspec.cli import main
from archspec.fusion import Fold
from conftest import SPECS

# Float rounding of a float32 forward, relative to the output's largest value.
TOLERANCE = 1e-4
NORMS = nn.modules.batchnorm._BatchNorm


def packing(count: int) -> str:
    """What describe() adds for `count` 2-D convolutions where oneDNN prepacking is on."""
    return f"; {count} convolution{'s' * (count != 1)} prepacked for oneDNN" if prepacked.available() else ""


def spec(text, **overrides):
    return archspec.loads(textwrap.dedent(text), **overrides)


def randomise_norms(net):
    """Running statistics and affine parameters far from the defaults (mean 0, var 1,
    weight 1, bias 0), so a fold that ignored any of them would show. Unlike
    tests/zoo.py's randomize_batch_norms it also draws the statistics of norms without
    affine terms (`affine: false`), which fold too."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, NORMS):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.3, 2.0)
                if module.weight is not None:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.5, 0.5)
    return net


def relative_difference(want, got):
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    assert len(want) == len(got)
    assert all(a.abs().max() > 0 for a in want), "an output is all zeros: the comparison would test nothing"
    return max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(want, got))


def agree(net, fused, x):
    with torch.no_grad():
        want = net.eval()(x)
        got = fused(x)
    difference = relative_difference(want, got)
    assert difference <= TOLERANCE, f"fused output differs by {difference:.2e} of its scale"
    return difference


def smallest_input(path):
    """The smallest input the spec accepts with every spatial size alike (static
    inference, nothing built): (C, S, S) for images, (C, S, S, S) for video."""
    shape = archspec.load(path).input_shape
    for size in (16, 24, 32, 48, 64, 75, 96, 112, 128, 160, 224, 299):
        candidate = (shape[0], *[size] * (len(shape) - 1))
        try:
            archspec.compile_spec(path, input_shape=candidate, check=False)
            return candidate
        except SpecError:
            continue
    raise AssertionError(f"{path.name} accepts no input up to 299")


def folded_arithmetic(net, fused):
    """The fused network's parameter count worked out from the unfused one's modules:
    each folded batch norm's weight and bias go (none when affine: false), and each
    layer that absorbed norms gains one bias per output channel if it had none."""
    modules = dict(net.named_modules())
    gone = sum(p.numel() for fold in fused.fusion.folded for p in modules[fold.norm].parameters())
    layers = {fold.into for fold in fused.fusion.folded}
    gained = sum(modules[layer].weight.shape[0] for layer in layers if modules[layer].bias is None)
    # Training-only parts (auxiliary heads) are left out of the fused network too.
    eval_only = sum(p.numel() for p in fused.parameters())
    return gone, gained, eval_only


def training_only_params(net):
    needed = set(net._inferred.graph.needed_for(False))
    return sum(p.numel() for name, p in net.named_parameters()
               if not any(name.startswith(f"{node}.") or name == node for node in needed))


# Every shipped spec is checked. The default (CI) run takes one spec of each way batch
# norms are placed: projections (resnet50), depthwise and squeeze-excitation blocks
# (mobilenet, efficientnet, mnasnet), branches and an auxiliary head
# (inception_v3_paper, googlenet_cifar), norms after a concatenation (densenet121),
# channel shuffles (shufflenet), 3-D convolutions (r3d_18), a detection head with
# several outputs (yolov8n) and a decoder (unet_resnet34); the slow run every spec.
CI = {"resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet", "mnasnet1_0", "inception_v3_paper",
      "googlenet_cifar", "densenet121", "shufflenet_v2_x1_0", "r3d_18", "yolov8n", "unet_resnet34"}
SHIPPED = [name if name in CI else pytest.param(name, marks=pytest.mark.slow)
           for name in sorted(p.stem for p in SPECS.glob("*.yaml"))]


@pytest.mark.parametrize("name", SHIPPED)
def test_fused_outputs_agree_for_every_shipped_spec(name):
    path = SPECS / f"{name}.yaml"
    shape = smallest_input(path)
    # PyTorch's default weights, not the spec's init: some references start their
    # classifier at zero (ViT's head), which would leave nothing to compare.
    net = randomise_norms(archspec.build(path, input_shape=shape, check=False, init=False)).eval()
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, *shape))
    # Every batch norm left is reported as kept, with its reason; every folded one is gone.
    left = {name for name, m in fused.named_modules() if isinstance(m, NORMS)}
    assert left == {name for name, _ in fused.fusion.kept}
    assert not any(key.startswith(f"{fold.norm}.") for fold in fused.fusion.folded for key in fused.state_dict())
    # The parameter count drops by exactly the folded norms' parameters, less the biases
    # the layers that absorbed them gained (and what only training computes).
    gone, gained, count = folded_arithmetic(net, fused)
    total = sum(p.numel() for p in net.parameters())
    assert count == total - training_only_params(net) - gone + gained


def test_resnet50_every_batch_norm_is_folded():
    torchvision = pytest.importorskip("torchvision")
    theirs = torchvision.models.resnet50()
    net = archspec.build(SPECS / "resnet50.yaml", device="meta")
    fused = archspec.fuse(net.eval())
    # torchvision's resnet50 has one BatchNorm2d after each of its convolutions.
    norms = [name for name, m in theirs.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert sorted(f.norm for f in fused.fusion.folded) == sorted(norms)
    assert fused.fusion.kept == ()
    keys = set(fused.state_dict())
    assert not any(key.startswith(tuple(f"{n}." for n in norms)) for key in keys)
    assert {"conv1.bias", "layer1.0.downsample.0.bias", "layer4.2.conv3.bias"} <= keys
    # In torchvision's key order, less the norms, each convolution followed by its new bias.
    order = []
    for key in theirs.state_dict():
        if not key.startswith(tuple(f"{n}." for n in norms)):
            order += [key, key[:-len("weight")] + "bias"] if key.endswith("weight") and key != "fc.weight" else [key]
    assert list(fused.state_dict()) == order
    assert "bn" not in fused.code() and "downsample.1" not in fused.code()


def test_densenet121_folds_only_the_norms_that_follow_a_convolution():
    torchvision = pytest.importorskip("torchvision")
    theirs = torchvision.models.densenet121()
    net = archspec.build(SPECS / "densenet121.yaml", device="meta")
    fused = archspec.fuse(net.eval())
    # torchvision's densenet121: norm0 follows conv0 and each dense layer's norm2 its
    # conv1 (6 + 12 + 24 + 16 layers): 59 folds. Each layer's norm1, each transition's
    # norm and norm5 read a concatenation (or a pooling): 58 + 3 + 1 = 62 stay.
    norms = [name for name, m in theirs.named_modules() if isinstance(m, nn.BatchNorm2d)]
    after_conv = [name for name in norms if name.endswith(("norm0", "norm2"))]
    assert len(after_conv) == 1 + 6 + 12 + 24 + 16
    assert [f.norm for f in fused.fusion.folded] == after_conv
    assert sorted(name for name, _ in fused.fusion.kept) == sorted(set(norms) - set(after_conv))
    assert len(fused.fusion.kept) == 58 + 3 + 1


@pytest.mark.parametrize("name, size", [("resnet18", 64), ("mobilenet_v2", 64)])
def test_fused_network_follows_torchvision_with_the_same_weights(name, size):
    torchvision = pytest.importorskip("torchvision")
    theirs = randomise_norms(getattr(torchvision.models, name)()).eval()
    net = archspec.build(SPECS / f"{name}.yaml")
    net.load_state_dict(theirs.state_dict())
    fused = archspec.fuse(net.eval())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert relative_difference(theirs(x), fused(x)) <= TOLERANCE


def test_conv_without_bias_gains_one_and_the_norm_keys_go():
    net = randomise_norms(archspec.build(spec("""
        input: [3, 8, 8]
        graph:
          conv: {op: conv, out: 4, k: 3, bias: false}
          bn: {op: bn, eps: 0.001}
          relu: {op: relu}
          flatten: {op: flatten}
          fc: {op: linear, out: 5}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(3, 3, 8, 8))
    assert fused.fusion.folded == (Fold("bn", "conv"),)
    assert list(fused.state_dict()) == ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]
    # conv: 4*3*3*3 weights + 4 new biases; fc: 4*6*6*5 + 5
    assert sum(p.numel() for p in fused.parameters()) == 108 + 4 + 725
    assert "bn" not in fused.code() and "relu(conv, inplace = True)" in fused.code()


@pytest.mark.parametrize("conv, shape", [
    ({"out": 8, "k": 3, "groups": 2, "stride": 2}, (4, 16)),           # 1-D, grouped
    ({"k": 3, "depthwise": True, "pad": 1}, (6, 9, 9)),                # 2-D, depthwise
    ({"out": 6, "k": [1, 7], "pad": [0, 3], "dilation": 2}, (3, 9, 9)),  # 2-D, asymmetric, dilated
    ({"out": 4, "k": [3, 1, 1], "pad": [1, 0, 0], "groups": 1}, (2, 4, 6, 6)),  # 3-D
], ids=["1d-grouped", "depthwise", "asymmetric", "3d"])
def test_every_kind_of_convolution_folds(conv, shape):
    args = ", ".join(f"{k}: {v}" for k, v in conv.items()).replace("True", "true")
    net = randomise_norms(archspec.build(spec(f"""
        input: {list(shape)}
        graph:
          conv: {{op: conv, {args}}}
          bn: {{op: bn}}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, *shape))
    assert fused.fusion.folded == (Fold("bn", "conv"),)


def test_batch_norm_after_a_linear_layer_folds_into_it():
    net = randomise_norms(archspec.build(spec("""
        input: [12]
        graph:
          fc1: {op: linear, out: 6, bias: false}
          bn1: {op: bn, affine: false}
          fc2: {op: linear, out: 3}
          bn2: {op: bn}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(4, 12))
    assert fused.fusion.folded == (Fold("bn1", "fc1", linear=True), Fold("bn2", "fc2", linear=True))
    assert fused.fusion.describe() == "folded 2 batch norms into 2 linear layers"


def test_batch_norm_over_other_than_a_linear_layers_features_stays():
    # A linear layer maps the last dimension (8 -> 5); batch norm of (C, L) normalises C.
    net = randomise_norms(archspec.build(spec("""
        input: [4, 8]
        graph:
          fc: {op: linear, out: 5}
          bn: {op: bn}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(3, 4, 8))
    assert fused.fusion.kept == (("bn", "normalises other than the linear layer's features"),)


def test_no_fold_across_a_branch_point():
    # conv's output is read by the batch norm and by the sum: folding would change the sum.
    net = randomise_norms(archspec.build(spec("""
        input: [3, 6, 6]
        graph:
          conv: {op: conv, out: 3, k: 1}
          bn: {op: bn}
          both: {op: add, from: [bn, conv]}
          conv2: {op: conv, out: 3, k: 1}
          bn2: {op: bn}
        outputs: {y: bn2, side: both}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, 3, 6, 6))
    assert fused.fusion.folded == (Fold("bn2", "conv2"),)
    assert fused.fusion.kept == (("bn", "its input is also read elsewhere"),)
    assert fused.fusion.describe() == \
        "folded 1 batch norm into 1 convolution; kept 1 (its input is also read elsewhere)" + packing(2)


def test_a_layer_that_is_an_output_keeps_its_norm():
    net = randomise_norms(archspec.build(spec("""
        input: [3, 6, 6]
        graph:
          conv: {op: conv, out: 3, k: 1}
          bn: {op: bn}
        outputs: {y: bn, features: conv}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, 3, 6, 6))
    assert fused.fusion.folded == ()


def test_a_training_only_reader_does_not_stop_the_fold():
    # In eval mode the auxiliary head is not computed, and the fused network is eval-only.
    net = randomise_norms(archspec.build(spec("""
        input: [3, 6, 6]
        graph:
          conv: {op: conv, out: 4, k: 3}
          bn: {op: bn}
          pool: {op: adaptive_avgpool, out: 1}
          flatten: {op: flatten}
          fc: {op: linear, out: 2}
          aux: {op: conv, out: 2, k: 1, from: conv}
        outputs:
          y: fc
          aux: {from: aux, train_only: true}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, 3, 6, 6))
    assert fused.fusion.folded == (Fold("bn", "conv"),)
    assert fused.output_names() == ("y",)
    assert not any(key.startswith("aux.") for key in fused.state_dict())
    assert fused.fusion.describe() == \
        "folded 1 batch norm into 1 convolution; left out the training-only output aux" + packing(1)


def test_norms_in_a_row_and_passes_between_fold_into_one_layer():
    net = randomise_norms(archspec.build(spec("""
        input: [3, 6, 6]
        graph:
          conv: {op: conv, out: 4, k: 3}
          drop: {op: dropout, p: 0.3}
          same: {op: identity}
          bn1: {op: bn}
          bn2: {op: bn}
          relu: {op: relu}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, 3, 6, 6))
    assert fused.fusion.folded == (Fold("bn1", "conv"), Fold("bn2", "conv"))
    assert fused.fusion.removed == ("drop", "same")
    assert list(fused.state_dict()) == ["conv.weight", "conv.bias"]


def test_norms_that_follow_no_layer_stay():
    net = randomise_norms(archspec.build(spec("""
        input: [3, 6, 6]
        graph:
          bn0: {op: bn}
          cat:
            concat:
              - a: {op: conv, out: 2, k: 1}
              - b: {op: conv, out: 2, k: 1}
          bn: {op: bn}
    """)))
    fused = archspec.fuse(net.eval())
    agree(net, fused, torch.randn(2, 3, 6, 6))
    assert fused.fusion.kept == (("bn0", "not after a convolution or linear layer"),
                                 ("bn", "not after a convolution or linear layer"))


def test_the_original_is_untouched_and_the_copy_is_eval_only():
    net = randomise_norms(archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = archspec.fuse(net.eval())
    net.train()  # the original still trains: its batch norms and gradients are its own
    assert all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.code() != fused.code() and "bn1" in net.code()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert not fused.training and not any(p.requires_grad for p in fused.parameters())
    with pytest.raises(SpecError, match="fused for inference") as caught:
        fused.train()
    assert caught.value.code == "E0632" and "fuse it again" in caught.value.diagnostics[0].hint
    fused.eval()
    # Its parameters need no gradients: called outside no_grad it records no graph.
    assert not fused(torch.randn(1, 3, 32, 32)).requires_grad
    # Fusing again finds nothing more to fold.
    again = archspec.fuse(fused)
    assert again.fusion.folded == () and again.code() == fused.code()


def test_channels_last_weights_change_only_the_layout():
    net = randomise_norms(archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32)))
    fast, plain = archspec.fuse(net.eval()), archspec.fuse(net.eval(), channels_last=False)
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast.conv1.weight.is_contiguous() and plain.conv1.weight.is_contiguous()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative_difference(plain(x), fast(x)) <= TOLERANCE
    agree(net, fast, x)


def test_a_deep_copy_of_a_network_fuses_alike():
    net = randomise_norms(archspec.build(SPECS / "googlenet_cifar.yaml"))
    twin = copy.deepcopy(net)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(archspec.fuse(net.eval())(x), archspec.fuse(twin.eval())(x))


def test_fuse_takes_only_archspec_networks():
    module = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).eval()
    with pytest.raises(TypeError, match="archspec.build") as caught:
        archspec.fuse(module)
    # A TypeError as Python's own functions raise, and a SpecError with its code.
    assert isinstance(caught.value, SpecError) and caught.value.code == "E0630"
    assert "torch.nn.modules.container.Sequential" in str(caught.value)
    assert "torch.fx.experimental.optimization.fuse" in caught.value.diagnostics[0].hint


def test_fusing_a_network_in_training_mode_is_refused():
    # Training mode normalises with the batch's statistics, which no fold can reproduce.
    net = archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32))
    with pytest.raises(SpecError, match="training mode") as caught:
        archspec.fuse(net)
    assert caught.value.code == "E0631" and "archspec.fuse(net.eval())" in caught.value.diagnostics[0].hint
    assert net.training  # nothing was changed


def test_build_fuse_writes_a_fused_build_that_load_built_reads(tmp_path, capsys):
    # torchvision's resnet18 with random statistics, through the command line and back.
    torchvision = pytest.importorskip("torchvision")
    theirs = randomise_norms(torchvision.models.resnet18()).eval()
    weights, out = tmp_path / "r18.pt", tmp_path / "r18_fused.pt"
    torch.save(theirs.state_dict(), weights)
    assert main(["build", str(SPECS / "resnet18.yaml"), "--weights", str(weights), "--fuse", "-o", str(out)]) == 0
    assert f"wrote {out} (fused for inference)" in capsys.readouterr().out
    loaded = archspec.load_built(out)
    assert isinstance(loaded, archspec.fusion.FusedNetwork) and not loaded.training
    assert not any(isinstance(m, NORMS) for m in loaded.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_difference(theirs(x), loaded(x)) <= TOLERANCE
    # Its weights are no checkpoint for the spec's (unfused) network: E0632, exit 2.
    assert main(["build", str(SPECS / "resnet18.yaml"), "--weights", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error[E0632]" in err and "holds a fused network" in err and "Traceback" not in err


def test_a_fused_build_with_a_norm_put_back_is_damaged(tmp_path):
    net = randomise_norms(archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32))).eval()
    fused = archspec.fuse(net)
    archspec.save_built(archspec.load(SPECS / "resnet18.yaml", input_shape=(3, 32, 32)), fused, tmp_path / "f.pt")
    payload = torch.load(tmp_path / "f.pt", weights_only=True)
    payload["state_dict"]["bn1.weight"] = torch.ones(64)
    torch.save(payload, tmp_path / "f.pt")
    with pytest.raises(SpecError, match="do not fit its fused spec: unexpected key `bn1.weight`") as caught:
        archspec.load_built(tmp_path / "f.pt")
    assert caught.value.code == "E0107"


def test_export_fuse_writes_the_fused_program(tmp_path, capsys):
    net = randomise_norms(archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32))).eval()
    weights, out = tmp_path / "w.pt", tmp_path / "r18.pt2"
    torch.save(net.state_dict(), weights)
    assert main(["export", str(SPECS / "resnet18.yaml"), "--input", "3x32x32", "--weights", str(weights),
                 "--fuse", "-o", str(out)]) == 0
    assert "fused: folded 20 batch norms into 20 convolutions" in capsys.readouterr().out
    program = torch.export.load(out)
    assert not any("batch_norm" in str(n.target) for n in program.graph.nodes)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert relative_difference(net(x), program.module()(x)) <= TOLERANCE


def test_build_fuse_on_the_command_line(capsys):
    assert main(["build", str(SPECS / "resnet18.yaml"), "--fuse", "--print-code"]) == 0
    out = capsys.readouterr().out
    # torchvision resnet18: 20 BatchNorm2d, each after a convolution without bias: the
    # stem's, four per stage, and one in each of three projections. Each of the norms'
    # channels loses a weight and a bias and gives its convolution one bias: 11,689,512
    # params (REFERENCE.md) less one per channel.
    channels = 64 + 4 * 64 + (4 * 128 + 128) + (4 * 256 + 256) + (4 * 512 + 512)
    assert f"fused: folded 20 batch norms into 20 convolutions{packing(20)}; {11_689_512 - channels:,} params" in out
    assert "fused: outputs agree with the unfused network's to" in out
    code = out.split("random input\n", 1)[1]
    assert "def forward" in code and ".bn" not in code and "downsample" in code


@pytest.mark.parametrize("command, words", [
    ("build", ["--fuse", "each batch norm folded into the convolution or linear layer before it",
               "-o writes the fused network", "load_built returns it"]),
    ("export", ["--fuse", "export what archspec.fuse makes of the network"]),
])
def test_help_explains_fuse(command, words, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for phrase in words:
        assert phrase in text
