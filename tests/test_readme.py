"""The README's quick start is what CI runs."""
from conftest import ROOT


def test_ci_runs_the_readme_quick_start():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.startswith((".venv/", "python3 -m venv"))]
    assert len(commands) == 2
    blocks = readme.split("## Quick start", 1)[1].split("## ", 1)[0]
    shown = [line for line in blocks.splitlines() if line.startswith((".venv/", "python3 -m venv"))]
    assert shown == commands
