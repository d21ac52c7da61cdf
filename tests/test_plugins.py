"""Ops from the user's own package: examples/custom_op installed with pip, and broken
plugins that must fail only the specs that use them.

The plugin is installed with pip into a temporary folder (`pip install --target`),
which writes the same dist-info and entry points as any install; the commands then
run in a subprocess with that folder on PYTHONPATH, so archspec finds the op through
`importlib.metadata`, exactly as it would after `pip install ./examples/custom_op`.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import archspec
from archspec.ops import REGISTRY
from conftest import ROOT
from op_examples import check_example

PLUGIN = ROOT / "examples" / "custom_op"
SPEC = PLUGIN / "spec.yaml"


def run(args, *paths, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    return subprocess.run([sys.executable, "-m", "archspec", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    assert (target / "archspec_gated_linear-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def test_plugin_op_builds_and_summarises(installed):
    built = run(["build", str(SPEC)], installed)
    assert built.returncode == 0, built.stderr
    # mix1 64*256 + 256, norm1 2*128, mix2 128*256 + 256, head 128*10 + 10 (the spec's arithmetic)
    assert "built gated_mlp: 51,210 params" in built.stdout
    assert "expect: all figures hold" in built.stdout
    summary = run(["summary", str(SPEC)], installed)
    assert summary.returncode == 0, summary.stderr
    rows = {line.split()[0]: line.split()[1:] for line in summary.stdout.splitlines() if line.startswith("mix")}
    # mix1: 64 in, 2 * 128 out: params 64*256 + 256 = 16,640; MACs 64*256 = 16,384
    assert rows["mix1"] == ["gated_linear", "[1,", "128]", "16,640", "16,384"]
    assert rows["mix2"] == ["gated_linear", "[1,", "128]", "33,024", "32,768"]


def test_plugin_op_is_in_the_schema_and_gets_did_you_mean(installed, tmp_path):
    schema = run(["schema"], installed)
    assert '"gated_linear"' in schema.stdout
    bad = tmp_path / "typo.yaml"
    bad.write_text("archspec: 1\ninput: [64]\ngraph:\n  mix: {op: gated_linaer, out: 8}\n  out: {op: gated_linear, out: 0}\n")
    result = run(["validate", "typo.yaml"], installed, cwd=tmp_path)
    assert result.returncode == 2
    assert "typo.yaml:4:13: error[E0301]: unknown op `gated_linaer`" in result.stderr
    assert "did you mean `gated_linear`?" in result.stderr
    bad.write_text("archspec: 1\ninput: [64]\ngraph:\n  mix: {op: gated_linear, out: 0}\n")
    result = run(["validate", "typo.yaml"], installed, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "typo.yaml:4:32: error[E0408]: mix: gated_linear `out` must be positive, got 0" in result.stderr


def test_plugin_op_passes_the_registry_test(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    from archspec_gated_linear import GatedLinear

    op = archspec.register_op(GatedLinear, replace=True)
    try:
        for example in op.examples:
            check_example(op, example)
    finally:
        REGISTRY.remove("gated_linear")


def _fake_distribution(root, name, module_source, entry_points):
    """An installed distribution as importlib.metadata finds one: a dist-info folder
    with METADATA and entry_points.txt, and its module beside it."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[archspec.ops]\n" + entry_points)
    (root / f"{name.replace('-', '_')}.py").write_text(textwrap.dedent(module_source))


def test_broken_plugin_is_reported_where_its_op_is_used(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "broken-plugin", "import cuda_magic_that_is_not_installed\n",
                       "exploding = broken_plugin:Exploding\n")
    _fake_distribution(site, "sloppy-plugin", """
        from archspec import Op
        class Sloppy(Op):
            name = "sloppy"
            def function(self, a, shapes, training, inplace):
                return None
        """, "sloppy = sloppy_plugin:Sloppy\nmisnamed = sloppy_plugin:Sloppy\n")
    for op in ("exploding", "sloppy", "misnamed"):
        (tmp_path / f"{op}.yaml").write_text(f"archspec: 1\ninput: [4]\ngraph:\n  x: {{op: {op}}}\n")
    reasons = {
        "exploding": "op `exploding` comes from the plugin `broken-plugin 1.0`, which failed to load: "
                     "ModuleNotFoundError: No module named 'cuda_magic_that_is_not_installed'",
        "sloppy": "op `sloppy` comes from the plugin `sloppy-plugin 1.0`, which failed to load: "
                  "`sloppy-plugin 1.0`: op class Sloppy (`sloppy`) declares no `examples`",
        "misnamed": "its entry point is named `misnamed` but the op calls itself `sloppy`",
    }
    for op, reason in reasons.items():
        result = run(["validate", f"{op}.yaml"], site, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{op}.yaml:4:11: error[E0801]: " in result.stderr and reason in result.stderr, result.stderr
    # Specs that do not use a broken plugin's op never notice it.
    fine = run(["summary", str(ROOT / "specs" / "resnet18.yaml")], site)
    assert fine.returncode == 0 and "total params: 11,689,512" in fine.stdout  # REFERENCE.md
    (tmp_path / "typo.yaml").write_text("archspec: 1\ninput: [4]\ngraph:\n  x: {op: rleu}\n")
    typo = run(["validate", "typo.yaml"], site, cwd=tmp_path)
    assert typo.returncode == 2 and "did you mean `relu`?" in typo.stderr
