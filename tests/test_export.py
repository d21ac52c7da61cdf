"""`archspec export`: ONNX (checked in onnxruntime) and torch.export's .pt2, with the
dynamic sizes the spec allows. Expected outputs come from torchvision holding the
same weights, or from the eager module that was exported."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torchvision

import archspec
from archspec.cli import main
from archspec.diagnostics import SpecError
from archspec.exporter import export_spec
from conftest import SPECS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# conv -> flatten -> linear: the linear's 4 * 6 * 6 inputs fix the 8x8 input.
FLATTENED = """\
archspec: 1
name: flattened
input: [3, 8, 8]
graph:
  conv: {op: conv, out: 4, k: 3}
  relu: {op: relu}
  flatten: {op: flatten}
  fc: {op: linear, out: 5}
"""
# The same with a global pool before the flatten: any size from 3 up (the conv's kernel).
POOLED = FLATTENED.replace("name: flattened", "name: pooled").replace(
    "  flatten: {op: flatten}", "  pool: {op: adaptive_avgpool, out: 1}\n  flatten: {op: flatten}")


def onnx_dims(path) -> list:
    graph = onnx.load(str(path)).graph
    return [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory):
    """(torchvision's resnet18, the ONNX file exported from the spec with its weights, CLI output)."""
    folder = tmp_path_factory.mktemp("export")
    reference = torchvision.models.resnet18(weights=None).eval()
    torch.save(reference.state_dict(), folder / "resnet18.pth")
    out = folder / "resnet18.onnx"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", str(SPECS / "resnet18.yaml"), "--weights", str(folder / "resnet18.pth"),
                     "-o", str(out)]) == 0
    return reference, out, printed.getvalue()


@pytest.mark.parametrize("batch, size", [(1, 224), (3, 224), (1, 160), (3, 160)])
def test_resnet18_onnx_runs_at_other_batches_and_sizes(resnet18_onnx, batch, size):
    reference, path, _ = resnet18_onnx
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        expected = reference(x).numpy()
    assert np.abs(run_onnx(path, x) - expected).max() < 1e-4


def test_resnet18_onnx_declares_its_dynamic_dims(resnet18_onnx):
    _, path, printed = resnet18_onnx
    assert onnx_dims(path) == ["batch", 3, "height", "width"]
    output = onnx.load(str(path)).graph.output[0]
    assert output.name == "output"
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == ["batch", 1000]
    lines = printed.splitlines()
    assert lines[0].startswith(f"exported resnet18 to {path} (ONNX opset ")
    assert lines[1:4] == ["input  `input` [batch, 3, height, width]", "output `output` [batch, 1000]",
                          # 33 is the least size at which layer4's map (224 / 32 = 7 at 224) is 2x2:
                          # 33 -> 17 (conv1) -> 9 (maxpool) -> 9, 5, 3, 2 (layers 1-4)
                          "dynamic: batch >= 1, height >= 33, width >= 33"]
    assert lines[4] == f"weights: {path.parent / 'resnet18.pth'}"


def test_googlenet_onnx_matches_torchvision(tmp_path):
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    result = export_spec(SPECS / "googlenet.yaml", tmp_path / "googlenet.onnx", weights=reference.state_dict(),
                         aux_logits=False)
    assert result.input == ("batch", 3, "height", "width")
    x = torch.randn(2, 3, 160, 192)
    with torch.no_grad():
        expected = reference(x).numpy()
    assert np.abs(run_onnx(result.path, x) - expected).max() < 1e-4


# Upsampling to another node's size reads that size when it runs, so the size stays dynamic.
UPSAMPLED = """\
archspec: 1
name: upsampled
input: [3, 16, 16]
graph:
  down: {op: conv, out: 4, k: 3, stride: 2, pad: 1}
  up: {op: upsample, from: [down, input], mode: bilinear, align_corners: false}
  head: {op: conv, out: 2, k: 1}
"""


def test_upsampling_to_another_nodes_size_keeps_sizes_dynamic(tmp_path):
    spec = tmp_path / "upsampled.yaml"
    spec.write_text(UPSAMPLED)
    eager = archspec.build(spec).eval()
    result = export_spec(spec, tmp_path / "upsampled.onnx", weights=eager.state_dict())
    assert result.outputs == (("output", ("batch", 2, "height", "width")),)
    assert result.least == {"batch": 1, "height": 3, "width": 3}  # `down` makes 3 -> 2, 2 -> 1
    x = torch.randn(2, 3, 9, 13)  # odd sizes: `down` gives 5x7, `up` must return to 9x13
    with torch.no_grad():
        expected = eager(x).numpy()
    got = run_onnx(result.path, x)
    assert got.shape == (2, 2, 9, 13) and np.abs(got - expected).max() < 1e-4


def test_flatten_into_linear_keeps_the_spatial_size_fixed(tmp_path, capsys):
    spec = tmp_path / "flattened.yaml"
    spec.write_text(FLATTENED)
    out = tmp_path / "flattened.onnx"
    assert main(["export", str(spec), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert onnx_dims(out) == ["batch", 3, 8, 8]
    # fc: 5 * (4 * 6 * 6) + 5 = 725 at 8x8; at 16x8 the map is 14x6: 5 * (4 * 14 * 6) + 5 = 1,685.
    assert ("fixed: height and width: `fc` (linear) has 725 parameters at input 3x8x8 and 1,685 at 3x16x8: "
            f"its weights fix the height ({spec}:8:7) (the width likewise)") in printed
    assert run_onnx(out, torch.randn(4, 3, 8, 8)).shape == (4, 5)  # the batch stays dynamic

    out.write_bytes(b"kept")
    assert main(["export", str(spec), "--dynamic", "spatial", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:8:7: error[E0621]: flattened cannot take another height and width: `fc` (linear)" in err
    assert out.read_bytes() == b"kept"  # refused before anything was written


def test_pt2_loads_and_runs_at_two_batch_sizes_and_another_size(tmp_path, capsys):
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED)
    eager = archspec.build(spec).eval()
    out = tmp_path / "pooled.pt2"
    result = export_spec(spec, out, weights=eager.state_dict())
    assert result.format == "pt2" and result.input == ("batch", 3, "height", "width")
    assert result.least == {"batch": 1, "height": 4, "width": 4}  # the 3x3 conv leaves 2x2 at 4x4
    program = torch.export.load(str(out))
    for shape in [(1, 3, 8, 8), (5, 3, 8, 8), (2, 3, 11, 6)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.allclose(program.module()(x), eager(x), atol=1e-6), shape


def test_dynamic_none_and_batch(tmp_path):
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED)
    assert export_spec(spec, tmp_path / "a.pt2", dynamic="none").input == (1, 3, 8, 8)
    assert export_spec(spec, tmp_path / "b.pt2", dynamic="batch").input == ("batch", 3, 8, 8)
    program = torch.export.load(str(tmp_path / "b.pt2"))
    with pytest.raises(Exception):  # its spatial size was declared fixed
        program.module()(torch.randn(1, 3, 9, 9))


def test_onnx_without_the_export_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now fails
    out = tmp_path / "r18.onnx"
    assert main(["export", str(SPECS / "resnet18.yaml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "archspec: error[E0620]: --format onnx needs the package onnxscript, which is not installed" in err
    assert "pip install 'archspec-nn[export]'" in err
    assert not out.exists()


def test_format_from_the_file_name_and_never_over_the_spec(tmp_path, capsys):
    assert main(["export", str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "r18.bin")]) == 2
    assert "error[E0604]: cannot tell the export format from" in capsys.readouterr().err
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED)
    assert main(["export", str(spec), "--format", "pt2", "-o", str(spec)]) == 2
    assert "error[E0605]: cannot write" in capsys.readouterr().err
    assert spec.read_text() == POOLED


def test_torch_export_refusals_are_diagnostics(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED)
    real_export = torch.export.export

    def refuses_spatial(net, args, dynamic_shapes=None, strict=False):
        if dynamic_shapes and len(dynamic_shapes[0]) > 1:
            raise RuntimeError("Constraints violated (height)!\nmore detail")
        return real_export(net, args, dynamic_shapes=dynamic_shapes, strict=strict)

    monkeypatch.setattr(torch.export, "export", refuses_spatial)
    # By default the spatial sizes fall back to fixed, and the output says why.
    assert main(["export", str(spec), "-o", str(tmp_path / "p.pt2")]) == 0
    printed = capsys.readouterr().out
    assert "dynamic: batch >= 1\n" in printed
    assert ("fixed: the spatial sizes, which torch.export refused as dynamic: "
            "RuntimeError: Constraints violated (height)!") in printed
    # Asked for explicitly, they are an error.
    assert main(["export", str(spec), "--dynamic", "spatial", "-o", str(tmp_path / "q.pt2")]) == 2
    err = capsys.readouterr().err
    assert ("archspec: error[E0622]: torch.export could not export pooled with batch, height, width dynamic: "
            "RuntimeError: Constraints violated (height)!") in err
    assert not (tmp_path / "q.pt2").exists()


def test_an_onnx_model_over_2_gib_is_refused(tmp_path, monkeypatch):
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED)

    class TooLarge:
        opset_import = ()

        class graph:
            input = output = value_info = ()

        def SerializeToString(self):
            raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB: 2400000000")

    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: type("P", (), {"model_proto": TooLarge()})())
    with pytest.raises(SpecError) as exc:
        export_spec(spec, tmp_path / "big.onnx")
    assert exc.value.code == "E0624" and "too large for one ONNX file" in str(exc.value)
    assert not (tmp_path / "big.onnx").exists()
