"""What `pip install archspec-nn` installs: the runtime, the schema, nothing else."""
import subprocess
import sys
import tomllib
import zipfile

from conftest import ROOT


def test_wheel_holds_the_runtime_and_the_schema_only(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("archspec_nn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "archspec/spec.schema.json" in names
    assert "archspec/ops/conv.py" in names and "archspec/cli.py" in names
    # the drawing page's script and style are inlined from files the wheel must carry
    assert {"archspec/draw/page.js", "archspec/draw/page.css", "archspec/draw/html.py"} <= set(names)
    packages = {name.split("/")[0] for name in names if not name.startswith("archspec_nn-")}
    assert packages == {"archspec"}, packages
    assert not [n for n in names if "fuzz" in n or "test" in n.split("/")[-1]]


def test_runtime_dependencies_are_floors_not_caps():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {dep.split(">")[0].split("=")[0].strip(): dep for dep in project["dependencies"]}
    assert set(runtime) == {"torch", "pyyaml", "jsonschema", "networkx"}
    assert runtime["torch"] == "torch>=2.4"  # users bring their own torch
    assert not any("<" in dep or "==" in dep for dep in runtime.values())
