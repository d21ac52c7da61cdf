"""`build --weights FILE` and `weights=`: trained weights load strictly, safely, and
a checkpoint that does not fit says which keys, in which block, at which line.

Expected outputs come from torchvision's own modules holding the same state dict."""
from __future__ import annotations

import os
import pickle

import pytest
import torch
import torchvision

import archspec
import archspec.builder as builder
from archspec.cli import main
from archspec.diagnostics import SpecError
from conftest import SPECS

R18 = str(SPECS / "resnet18.yaml")
SMALL_INPUT = (3, 64, 64)  # resnet18 runs at any size from 32 up; smaller is faster


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    r18 = torchvision.models.resnet18(weights=None).eval()
    r34 = torchvision.models.resnet34(weights=None)
    files = {
        "r18": folder / "resnet18.pt",
        "wrapped": folder / "resnet18-module.pt",
        "epoch": folder / "resnet18-epoch.pt",
        "r34": folder / "resnet34.pt",
    }
    state = r18.state_dict()
    torch.save(state, files["r18"])
    torch.save({"module." + k: v for k, v in state.items()}, files["wrapped"])
    torch.save({"model": state, "epoch": 3, "optimizer": {"lr": 0.1}}, files["epoch"])
    torch.save(r34.state_dict(), files["r34"])
    return r18, files


def torchvision_agrees(net, reference):
    x = torch.randn(2, *SMALL_INPUT)
    with torch.no_grad():
        return torch.allclose(net.eval()(x), reference(x), atol=1e-5)


def test_torchvision_state_dict_gives_torchvision_outputs(checkpoints, capsys):
    reference, files = checkpoints
    net = archspec.build(R18, weights=files["r18"], input_shape=SMALL_INPUT)
    assert torchvision_agrees(net, reference)
    assert main(["build", R18, "--weights", str(files["r18"])]) == 0
    # resnet18's state dict: 62 parameters and 60 batch-norm buffers (20 bn x 3).
    assert f"weights: every key of {files['r18']} loaded (122 tensors)" in capsys.readouterr().out


def test_a_training_checkpoint_holds_the_state_dict_under_model(checkpoints):
    reference, files = checkpoints
    net = archspec.build(R18, weights=files["epoch"], input_shape=SMALL_INPUT)
    assert torchvision_agrees(net, reference)
    in_memory = archspec.build(R18, weights={"state_dict": reference.state_dict(), "epoch": 3},
                               input_shape=SMALL_INPUT)
    assert torchvision_agrees(in_memory, reference)


def test_a_prefix_map_renames_a_wrappers_keys(checkpoints, capsys):
    reference, files = checkpoints
    assert main(["build", R18, "--weights", str(files["wrapped"])]) == 2
    err = capsys.readouterr().err
    # resnet18's 122 keys, every one under `module.`: none matches, and the hint names the fix.
    assert f"error[E0904]: the weights in {files['wrapped']} do not fit resnet18: none of its 122 keys" in err
    assert "= hint: every key in the file starts with `module.`: load it with `--weights-map module.=`" in err
    net = archspec.build(R18, weights=files["wrapped"], weights_map=["module.="], input_shape=SMALL_INPUT)
    assert torchvision_agrees(net, reference)
    again = archspec.build(R18, weights=files["wrapped"], weights_map={"module.": ""}, input_shape=SMALL_INPUT)
    assert torchvision_agrees(again, reference)


def test_a_wrong_architecture_is_reported_by_block_and_nothing_is_written(checkpoints, tmp_path, capsys,
                                                                          monkeypatch):
    _, files = checkpoints
    target = tmp_path / "r18.pt"
    target.write_bytes(b"previous build")
    built_on = []
    real_build_module = builder.build_module
    monkeypatch.setattr(builder, "build_module",
                        lambda *a, **k: built_on.append(k.get("device")) or real_build_module(*a, **k))

    rc = main(["build", R18, "--weights", str(files["r34"]), "-o", str(target)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert target.read_bytes() == b"previous build"
    assert built_on == ["meta"]  # compared on the meta device: no real weight was allocated
    # resnet34 has [3, 4, 6, 3] basic blocks, resnet18 [2, 2, 2, 2]: 1 + 2 + 4 + 1 = 8 blocks of
    # 12 keys (two convs, two batch norms of 5 tensors each) are not in resnet18.
    assert f"error[E0904]: the weights in {files['r34']} do not fit resnet18: 96 unexpected keys" in err
    lines = err.splitlines()
    # Grouped under the repeat that lacks them, at the line that instantiates it.
    layer3 = next(i for i, line in enumerate(lines) if line.startswith("  block `layer3` (repeat x2)"))
    assert "instantiated at specs/resnet50.yaml:" in lines[layer3] or "resnet50.yaml:" in lines[layer3]
    assert [line.split()[1] for line in lines[layer3 + 1:layer3 + 5]] == [
        "layer3.2.*", "layer3.3.*", "layer3.4.*", "layer3.5.*"]
    assert "(12 keys, not in the spec: `layer3` has no `2`)" in lines[layer3 + 1]


def test_missing_and_reshaped_keys_name_the_line_of_their_node(checkpoints):
    reference, files = checkpoints
    state = dict(reference.state_dict())
    del state["layer2.0.downsample.1.running_var"]
    with pytest.raises(SpecError) as exc:
        archspec.build(R18, weights=state, num_classes=10, device="meta")
    message = exc.value.diagnostics[0].message
    assert exc.value.code == "E0904"
    assert "1 missing, 2 reshaped keys" in message
    compiled = archspec.compile_spec(R18, num_classes=10)
    fc, downsample = (compiled.inferred.graph.nodes[n].pos for n in ("fc", "layer2.0.downsample"))
    assert f"reshaped    fc.weight [1000, 512] in the file, [10, 512] in the spec  ({fc})" in message
    assert f"missing     layer2.0.downsample.1.running_var [128]  ({downsample})" in message
    assert "block `layer2.0` (basic)" in message


def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Malicious:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    payloads = {"torch.save": tmp_path / "evil.pt", "pickle 2": tmp_path / "evil-2.pkl",
                "pickle 4": tmp_path / "evil-4.pkl"}
    torch.save({"conv1.weight": torch.zeros(1), "x": Malicious()}, payloads["torch.save"])
    for protocol in (2, 4):
        with open(payloads[f"pickle {protocol}"], "wb") as f:
            pickle.dump({"x": Malicious()}, f, protocol=protocol)
    for path in payloads.values():
        rc = main(["build", R18, "--weights", str(path)])
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err, err
        assert f"archspec: error[E0901]: {path} was refused" in err and "nothing in it was run" in err
        assert not marker.exists()
    assert "it names `posix.system`" in main_err(["build", R18, "--weights", str(payloads["pickle 2"])], capsys)


def main_err(argv, capsys) -> str:
    main(argv)
    return capsys.readouterr().err


def test_files_that_hold_no_state_dict(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listed)
    hyper = tmp_path / "hyper.pt"
    torch.save({"epoch": 3, "lr": 0.1}, hyper)
    assert "error[E0902]: " + str(text) + " is not a PyTorch checkpoint" in main_err(
        ["build", R18, "--weights", str(text)], capsys)
    assert f"error[E0903]: {listed} holds a list, not a state dict" in main_err(
        ["build", R18, "--weights", str(listed)], capsys)
    err = main_err(["build", R18, "--weights", str(hyper)], capsys)
    assert f"error[E0903]: {hyper} holds no state dict: 'epoch' maps to int" in err
    assert "this one holds `epoch`, `lr`" in err
    assert f"error[E0106]: no such file: {tmp_path / 'absent.pt'}" in main_err(
        ["build", R18, "--weights", str(tmp_path / "absent.pt")], capsys)


def test_weights_map_mistakes(checkpoints, capsys):
    _, files = checkpoints
    err = main_err(["build", R18, "--weights", str(files["r18"]), "--weights-map", "module"], capsys)
    assert "archspec: error[E0623]: --weights-map expects OLD=NEW, got `module`" in err
    err = main_err(["build", R18, "--weights-map", "module.="], capsys)
    assert "error[E0623]: --weights-map renames the keys of --weights FILE, which is not given" in err
    err = main_err(["build", R18, "--weights", str(files["r18"]), "--weights-map", "modul.="], capsys)
    assert f"error[E0905]: --weights-map `modul.=`: no key of {files['r18']} starts with `modul.`" in err
    # layer1.0. -> layer1.1. collides with the file's own layer1.1 keys.
    with pytest.raises(SpecError) as exc:
        archspec.build(R18, weights=files["r18"], weights_map={"layer1.0.": "layer1.1."}, device="meta")
    assert exc.value.code == "E0905" and "to `layer1.1.conv1.weight`" in str(exc.value)
