"""`archspec eject`: every shipped spec becomes a module that imports torch only and
lints clean, builds where archspec cannot be imported, has archspec.build's state-dict
keys (in order) and shapes, and gives archspec's outputs bitwise with the same weights.

The ejected modules all run in one `python -I` process (tests/eject_runner.py) that
hides archspec; layouts are compared on the meta device for every spec, outputs on the
smallest networks at small inputs (the network is the same whatever the input size).
"""
import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import archspec
from archspec.cli import _EJECT_EPILOG, main
from archspec.eject import eject
from archspec.ops import REGISTRY, Arg, Example, Op, register_op
from conftest import ROOT, SPECS

ALL_SPECS = sorted(SPECS.glob("*.yaml"))
# CI ejects the family bases (every construct of the zoo is written in one of them)
# and the specs whose outputs it compares; the others, with the slow tests.
FAMILY_BASES = {p.name for p in ALL_SPECS if "\nextends:" not in p.read_text()}
# Spec (or spec with --set values) -> input for an eval forward, and whether to compare
# training mode too (only where no dropout makes it random).
FORWARDS = {
    "resnet18.yaml": ((3, 64, 64), False),
    "googlenet_cifar.yaml": ((3, 32, 32), False),
    "xception.yaml": ((3, 71, 71), False),
}
# The larger ones: `python -m pytest -m slow tests/test_eject.py`.
SLOW_FORWARDS = {
    "resnet50_v1.yaml": ((3, 64, 64), False),
    "googlenet.yaml": ((3, 64, 64), False),
    "inception_v3.yaml": ((3, 75, 75), False),
    "inception_v3_paper.yaml": ((3, 139, 139), False),
}
# With its dropouts at 0, GoogLeNet's training forward (aux heads, batch statistics) is exact too.
NO_DROPOUT = {"dropout": 0.0, "dropout_aux": 0.0}


def scale_by(x, weight):
    """Each channel times its weight (the function of the test op below)."""
    return x * weight.view(1, -1, 1, 1)


class ScaleChannels(Op):
    """An op holding a bare nn.Parameter at its node's name, as torchvision's class_token."""

    name = "scale_channels"
    doc = "multiply each channel by a learned weight"
    examples = (Example({}, ((3, 4, 4),)),)

    def params(self, a, shapes, out):
        return shapes[0][0]

    def module(self, a, shapes, factory):
        return nn.Parameter(torch.ones(shapes[0][0], **factory))

    def function(self, a, shapes, training, inplace):
        return scale_by, {}


class ChannelNorm(nn.GroupNorm):
    """Group norm with one group: a module class that is not torch's but is plain Python over it."""

    def forward(self, x):
        return F.group_norm(x, 1, self.weight, self.bias, self.eps)


class ChannelNormOp(Op):
    name = "channel_norm"
    doc = "normalise over channels and positions together"
    examples = (Example({}, ((3, 4, 4),)),)

    def params(self, a, shapes, out):
        return 2 * shapes[0][0]

    def module(self, a, shapes, factory):
        return ChannelNorm(1, shapes[0][0], eps=1e-3, **factory)


def affine(x, weight, bias):
    """x W^T + b: what Affine's forward calls, so eject copies it with the class."""
    return F.linear(x, weight, bias)


class Affine(nn.Linear):
    """nn.Linear whose constructor names its arguments otherwise than the attributes
    it keeps: its op declares them (`module_source`)."""

    def __init__(self, width_in, width_out):
        super().__init__(width_in, width_out)

    def forward(self, x):
        return affine(x, self.weight, self.bias)


class AffineOp(Op):
    name = "affine"
    doc = "a linear layer built by a class of its own"
    args = {"out": Arg("int")}
    examples = (Example({"out": 3}, ((4,),)),)

    def infer(self, a, shapes):
        return (*shapes[0][:-1], a["out"])

    def params(self, a, shapes, out):
        return shapes[0][-1] * a["out"] + a["out"]

    def module(self, a, shapes, factory):
        return Affine(shapes[0][-1], a["out"]).to(**factory)

    def module_source(self, a, shapes):
        return Affine, (shapes[0][-1], a["out"]), {}


SCALE = 2.0


class Opaque(nn.Module):
    """Reads a global of its module that is not torch's: it cannot be copied into a file."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.weight * SCALE


class OpaqueOp(Op):
    name = "opaque"
    doc = "a module class that is not torch's"
    examples = (Example({}, ((3, 4, 4),)),)

    def params(self, a, shapes, out):
        return 1

    def module(self, a, shapes, factory):
        return Opaque()


FEATURES = """\
archspec: 1
name: features
description: What eject has to handle beyond the zoo.
args:
  width: 8
  classes: 5
input: [3, 16, 16]
blocks:
  unit:
    doc: A conv and its activation.
    args: {out: ~}
    body:
      conv: {op: conv, out: $out, k: 3, pad: 1, doc: "the unit's only weights"}
      act: {op: relu}
  triple:
    doc: Three branches summed.
    body:
      total:
        add:
          - a: {op: conv, out: $width, k: 1}
          - b: {op: conv, out: $width, k: 3, pad: 1, frozen: true}
          - c: {block: unit, out: $width}
graph:
  stem: {block: unit, out: $width, doc: "the stem, whose conv is also read by `side`"}
  scale: {op: scale_channels}
  norm: {op: channel_norm}
  body: {block: triple}
  twice: {repeat: 2, op: relu}
  side: {op: conv, out: $width, k: 1, from: stem.conv}
  join: {op: concat, from: [twice, side]}
  pool: {op: adaptive_avgpool, out: 1}
  flatten: {op: flatten}
  fc: {op: affine, out: $classes}
"""

CYCLE = """\
archspec: 1
input: [3, 8, 8]
blocks:
  loop:
    body:
      a: {op: conv, out: 4, k: 1}
      b: {op: add, from: [a, p]}
graph:
  blk: {block: loop}
  p: {op: relu, from: blk.a}
  out: {op: add, from: [blk, p]}
"""


@pytest.fixture(scope="module")
def extra_ops():
    ops = [register_op(op, replace=True) for op in (ScaleChannels, ChannelNormOp, AffineOp, OpaqueOp)]
    yield
    for op in ops:
        REGISTRY.remove(op.name)


def eject_and_run(work, cases: dict, forwards: dict, seeded: dict | None = None) -> dict:
    """Eject each case (name -> (path, overrides)) into `work`, lint the modules, and
    run them in one process that cannot import archspec; for the cases in `forwards`,
    with archspec's weights on an input, beside archspec's own outputs; for the cases in
    `seeded` (name -> [build() keyword arguments]), built after torch.manual_seed(0)."""
    jobs, results = [], {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forwards: threads cost more than they give on a small CI machine
    for i, (case, (path, overrides)) in enumerate(cases.items()):
        module = work / f"ejected_{i}.py"
        source = eject(path, **overrides).source
        module.write_text(source)
        job = {"module": str(module), "out": str(work / f"result_{i}.pt"), "seeded": (seeded or {}).get(case, [])}
        expected = None
        if case in forwards:
            shape, train = forwards[case]
            torch.manual_seed(i)
            reference = archspec.build(path, check=False, **overrides)
            x = torch.randn(2, *shape)
            torch.save(reference.state_dict(), work / f"weights_{i}.pt")
            torch.save(x, work / f"input_{i}.pt")
            job.update(weights=str(work / f"weights_{i}.pt"), input=str(work / f"input_{i}.pt"), train=train)
            with torch.no_grad():
                expected = {"eval": reference.eval()(x)}
                if train:
                    expected["train"] = reference.train()(x)
        jobs.append(job)
        results[case] = {"path": path, "overrides": overrides, "source": source, "module": module, "job": job,
                         "expected": expected}
    torch.set_num_threads(threads)
    (work / "jobs.json").write_text(json.dumps(jobs))
    run = subprocess.run([sys.executable, "-I", str(ROOT / "tests" / "eject_runner.py"), str(work / "jobs.json")],
                         capture_output=True, text=True, cwd=work, timeout=600)
    assert run.returncode == 0, run.stderr
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache",
                           "--output-format", "concise", *(str(r["module"]) for r in results.values())],
                          capture_output=True, text=True, cwd=work, timeout=120)
    assert lint.returncode in (0, 1), lint.stderr  # 1: it found something, reported per module below
    for r in results.values():
        r["ran"] = torch.load(r["job"]["out"])
        r["lint"] = [line for line in lint.stdout.splitlines() if line.startswith(str(r["module"]))]
    return results


def check_outputs(r) -> None:
    expected, ran = r["expected"], r["ran"]
    assert torch.equal(ran["eval"], expected["eval"])  # bitwise
    if "train" in expected:
        want, got = expected["train"], ran["train"]
        assert isinstance(want, tuple) == isinstance(got, tuple)
        for w, g in (zip(want, got) if isinstance(want, tuple) else [(want, got)]):
            assert torch.equal(g, w)


@pytest.fixture(scope="module")
def ejected(request, tmp_path_factory, extra_ops):
    """The cases this run selected (and the variant and test spec above), ejected,
    linted and run."""
    selected = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is request.module and "case" in params:
            selected.add(params["case"])
    work = tmp_path_factory.mktemp("ejected")
    features = work / "features.yaml"
    features.write_text(FEATURES)
    cases = {path.name: (path, {}) for path in ALL_SPECS if path.name in selected | set(FORWARDS) | {"resnet50.yaml"}}
    cases["googlenet_cifar.yaml no dropout"] = (SPECS / "googlenet_cifar.yaml", NO_DROPOUT)
    cases["features"] = (features, {})
    forwards = {**FORWARDS, "googlenet_cifar.yaml no dropout": ((3, 32, 32), True), "features": ((3, 16, 16), True)}
    return eject_and_run(work, cases, forwards, {"resnet18.yaml": RESNET18_SEEDED})


CASES = [name if name in FAMILY_BASES or name in FORWARDS else pytest.param(name, marks=pytest.mark.slow)
         for name in (p.name for p in ALL_SPECS)] + ["googlenet_cifar.yaml no dropout", "features"]


@pytest.mark.parametrize("case", CASES)
def test_ejected_module_imports_torch_only_and_lints_clean(ejected, case):
    r = ejected[case]
    imports = [line for line in r["source"].splitlines() if line.startswith(("import ", "from "))]
    # torch, and Python's math where an init: argument is worked out from the fans
    assert imports and all(line.split()[1].split(".")[0] in ("torch", "math") for line in imports), imports
    assert "archspec" not in "\n".join(imports)
    assert r["lint"] == []


@pytest.mark.parametrize("case", CASES)
def test_same_state_dict_layout_as_archspec_build(ejected, case):
    r = ejected[case]
    reference = archspec.build(r["path"], device="meta", check=False, **r["overrides"])
    assert r["ran"]["layout"] == [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]


@pytest.mark.parametrize("case", [*FORWARDS, "googlenet_cifar.yaml no dropout", "features"])
def test_same_outputs_with_the_same_weights(ejected, case):
    check_outputs(ejected[case])


RESNET18_SEEDED = [{}, {"num_classes": 7, "width": 32}]
# Specs whose init: the ejected init_weights must draw as archspec.build does: torchvision's
# ResNet scheme (kaiming, ones, zeros, zero_init_residual baked), RegNet's N(0, 2 / fan_out)
# and EfficientNet's U(+-1 / sqrt(fan_out)) (fan-reading lambdas, so num_classes stays an
# argument), ViT's trunc_normal of the patch projection and its position embedding drawn
# in the constructor (the op's declared parameter_draw).
SEEDED = {"resnet50.yaml": [{}], "regnet_y_400mf.yaml": [{}, {"num_classes": 10}],
          "efficientnet.yaml": [{"num_classes": 10}], "vit_b_16.yaml": [{"num_classes": 10}]}


@pytest.mark.slow
def test_ejected_init_weights_draw_what_archspec_build_draws(tmp_path):
    results = eject_and_run(tmp_path, {name: (SPECS / name, {}) for name in SEEDED}, {}, SEEDED)
    for name, runs in SEEDED.items():
        assert "def init_weights(net):" in results[name]["source"]
        for kwargs, got in zip(runs, results[name]["ran"]["seeded"], strict=True):
            torch.manual_seed(0)
            expected = archspec.build(SPECS / name, check=False, **kwargs).state_dict()
            assert list(got) == list(expected)
            differ = [key for key in expected if not torch.equal(got[key], expected[key])]
            assert not differ, (name, kwargs, differ[:3])


def test_ejected_resnet18_starts_as_archspec_build_does(ejected):
    # At its own sizes and at others build() takes: kaiming_normal reads the fans itself.
    r = ejected["resnet18.yaml"]
    for kwargs, got in zip(RESNET18_SEEDED, r["ran"]["seeded"], strict=True):
        torch.manual_seed(0)
        expected = archspec.build(SPECS / "resnet18.yaml", check=False, **kwargs).state_dict()
        assert list(got) == list(expected)
        assert all(torch.equal(got[key], expected[key]) for key in expected), kwargs
    # zero_init_residual changes which tensors init: sets, so it is baked, and said so.
    doc = " ".join(r["source"].split('"""')[1].split())
    assert "written into the classes as ejected: layers=[2, 2, 2, 2], block='basic', zero_init_residual=False" \
        in doc
    assert "'kaiming_normal_', {'mode': 'fan_out', 'nonlinearity': 'relu'}" in r["source"]


@pytest.mark.slow
def test_same_outputs_of_the_larger_networks(tmp_path):
    results = eject_and_run(tmp_path, {name: (SPECS / name, {}) for name in SLOW_FORWARDS}, SLOW_FORWARDS)
    for r in results.values():
        check_outputs(r)


def test_resnet_blocks_are_one_class_with_constructor_arguments(ejected):
    source = ejected["resnet50.yaml"]["source"]
    assert source.count("\nclass ") == 2
    assert "class Bottleneck(nn.Module):" in source
    assert "def __init__(self, in_channels, planes, stride=1, downsample=False):" in source
    assert "self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)" in source
    # torchvision's layer3: one downsampling block, then five equal ones
    assert "*(Bottleneck(1024, planes=256) for _ in range(5))" in source
    # The bottleneck's inner width is int(planes * (width_per_group / 64)) * groups (the
    # ResNeXt form), which no constructor argument follows: width is baked in, and said so.
    assert "def build(num_classes=1000):" in source
    assert "layers=[3, 4, 6, 3], block='bottleneck', width=64" in " ".join(source.split())
    # The basic block's widths are plain multiples of `width`: resnet18 takes it.
    assert "def build(num_classes=1000, width=64):" in ejected["resnet18.yaml"]["source"]


def test_build_takes_the_args_that_only_change_sizes(ejected):
    namespace = {}
    exec(compile(ejected["resnet18.yaml"]["source"], "resnet18_ejected", "exec"), namespace)
    for kwargs in ({"num_classes": 10}, {"width": 32, "num_classes": 7}):
        with torch.device("meta"):
            ours = namespace["build"](**kwargs)
        reference = archspec.build(SPECS / "resnet18.yaml", device="meta", check=False, **kwargs)
        assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
            [(k, v.shape) for k, v in reference.state_dict().items()]


def test_docs_helpers_frozen_and_bare_parameters_are_written(ejected):
    source = ejected["features"]["source"]
    assert "A conv and its activation." in source and "Three branches summed." in source  # block docs
    assert "        # the stem, whose conv is also read by `side`\n" in source  # instantiating node's doc
    assert "        # the unit's only weights\n" in source  # node doc
    assert "def add_all(first, *rest):" in source and "def scale_by(x, weight):" in source
    assert ".requires_grad_(False)" in source
    assert "self.scale = nn.Parameter(torch.full((width,), 1.0))" in source  # the op's torch.ones(width)
    assert "class ChannelNorm(nn.GroupNorm):" in source and "self.norm = ChannelNorm(1, width, eps=0.001)" in source
    assert "self.a = nn.Conv2d(in_channels, width, 1)" in source  # the block reads the file-level arg
    # a class of the op's own, built as the op declares, copied with the function it calls
    assert "class Affine(nn.Linear):" in source and "def affine(x, weight, bias):" in source
    assert "self.fc = Affine(width * 2, classes)" in source


def test_eject_errors(tmp_path, extra_ops, capsys):
    opaque = tmp_path / "opaque.yaml"
    opaque.write_text("archspec: 1\ninput: [3, 8, 8]\ngraph:\n  odd: {op: opaque}\n")
    with pytest.raises(archspec.SpecError) as err:
        eject(opaque)
    assert err.value.code == "E0615"
    assert "test_eject.Opaque, which is not torch.nn's and cannot be copied into the file: `Opaque.forward` " \
           "reads the global `SCALE`" in str(err.value)
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(CYCLE)
    assert main(["eject", str(cycle)]) == 2
    assert "error[E0616]" in capsys.readouterr().err


def test_cli_writes_through_a_temporary_file(tmp_path, capsys):
    target = tmp_path / "model.py"
    target.write_text("precious")
    assert main(["eject", str(tmp_path / "missing.yaml"), "-o", str(target)]) == 2
    assert target.read_text() == "precious" and list(tmp_path.iterdir()) == [target]
    assert main(["eject", str(SPECS / "resnet18.yaml"), "--set", "num_classes=10", "-o", str(target)]) == 0
    assert "def build(num_classes=10, width=64):" in target.read_text()
    assert "build(num_classes=10, width=64) returns Resnet18" in capsys.readouterr().out
    assert main(["eject", str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "no" / "model.py")]) == 2
    assert "error[E0605]" in capsys.readouterr().err


def test_help_examples_run_as_written(tmp_path, monkeypatch, capsys):
    import re

    monkeypatch.chdir(ROOT)
    examples = re.findall(r"^  archspec (eject .*)$", _EJECT_EPILOG, re.M)
    assert len(examples) >= 2
    for line in examples:
        argv = [str(tmp_path / a) if a.endswith(".py") else a for a in line.split()]
        assert main(argv) == 0, line
