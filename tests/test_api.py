"""The Python API: it checks what the command line checks, its values are immutable,
and the generated forward reads like the spec."""
import pytest

import archspec
from archspec.expand import expand
from conftest import SPECS

RESNET18 = SPECS / "resnet18.yaml"


def test_two_loads_of_one_file_cannot_change_each_other():
    first = archspec.load(RESNET18)
    with pytest.raises(TypeError, match="read-only"):
        first.document["graph"].clear()
    with pytest.raises(TypeError, match="read-only"):
        first.document["args"]["layers"].append(9)
    assert archspec.summarize(RESNET18).total_params == 11_689_512  # REFERENCE.md


@pytest.mark.parametrize("keywords, message", [
    ({"batch": -2}, "batch must be a whole number of at least 1, got -2"),
    ({"batch": 1.5}, "batch must be a whole number of at least 1, got 1.5"),
    ({"dtype": "int8"}, "dtype must be one of float32, float16, bfloat16, float64, got 'int8'"),
    ({"depth": -1}, "depth must be a whole number of at least 1, got -1"),
    ({"depth": 0}, "depth must be a whole number of at least 1, got 0"),
    ({"max_params": -5}, "max_params must be a whole number of at least 0, got -5"),
])
def test_summarize_checks_its_arguments(keywords, message):
    with pytest.raises(archspec.SpecError) as err:
        archspec.summarize(RESNET18, **keywords)
    assert err.value.code == "E0604" and message in str(err.value)


def test_expansion_reports_errors_and_the_sound_part_as_a_result():
    spec = archspec.loads("input: [3, 8, 8]\ngraph:\n  a: {op: conv, out: 4, k: 3}\n  b: {op: relu, from: nowhere}\n"
                          "  c: {op: conv, out: 2, k: 9, from: a}\n")
    expansion = expand(spec)
    assert expansion.graph is None
    assert [d.code for d in expansion.errors] == ["E0305"]
    assert list(expansion.sound_part.nodes) == ["a", "c"]
    # The API reports both: the bad reference, and c's kernel on the sound part.
    with pytest.raises(archspec.SpecError) as err:
        archspec.compile_spec(spec)
    assert [d.code for d in err.value.diagnostics] == ["E0305", "E0404"]


def test_generated_forward_names_values_after_spec_nodes():
    net = archspec.build(RESNET18)
    code = net.code(training=False)
    for name in ("conv1", "bn1", "layer1_0_conv1", "layer1_0_relu1", "layer4_1_relu", "fc"):
        assert f"\n    {name} = " in code, name
    assert "layer4_1_residual = " in code  # the residual sum, in place: `bn2 += x; residual = bn2`
    assert 'layer1_0_conv1 = getattr(self.layer1, "0").conv1(maxpool)' in code


def test_build_compiled_uses_a_compiled_spec_once():
    compiled = archspec.compile_spec(RESNET18)
    # params, macs, output and five shapes, as specs/resnet18.yaml writes them
    assert compiled.expect.checked == 3 + 5 and compiled.expect.skipped == 0
    net = archspec.build_compiled(compiled, device="meta")
    assert sum(p.numel() for p in net.parameters()) == 11_689_512  # REFERENCE.md
