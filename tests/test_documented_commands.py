"""Every example a user is shown runs as written: the commands in `--help`, in the
README and in examples/, and the README's Python snippets.

Commands run from the repository root, as the docs write them; a file a command
writes (`-o FILE`) goes to a temporary folder instead, so the tree stays clean. A
command shown with an error as its output must fail with that error's code.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archspec.cli import _parser, main
from conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", ROOT / "examples" / "custom_op" / "README.md"]
# Commands that need something a test cannot give in-process (a package installed
# into the environment): each is run by the test named beside it.
RUN_ELSEWHERE = {
    "pip install ./examples/custom_op": "tests/test_plugins.py installs it with pip",
    "archspec build examples/custom_op/spec.yaml": "tests/test_plugins.py, after installing the plugin",
    "archspec summary examples/custom_op/spec.yaml": "tests/test_plugins.py, after installing the plugin",
}


def help_commands() -> list[str]:
    """The `examples:` lines of `archspec --help` and of each command's --help."""
    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    epilogs = [parser.epilog] + [p.epilog for p in subparsers.values() if p.epilog]
    found = []
    for epilog in epilogs:
        for line in epilog.splitlines():
            line = line.strip()
            if line.startswith("archspec ") and line not in found:
                found.append(line)
    return found


def doc_commands() -> list[tuple[str, str, str | None]]:
    """(file, command, shown output) for each `archspec ...` or `$ archspec ...` line in a
    shell or console block of the docs."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:sh|console|bash|shell)\n(.*?)```", text, re.S):
            lines = block.splitlines()
            for index, line in enumerate(lines):
                command = line[2:] if line.startswith("$ ") else line
                if not command.startswith(("archspec ", "pip install ./examples")):
                    continue
                output = []
                for rest in lines[index + 1:]:
                    if rest.startswith("$ ") or rest.startswith("archspec "):
                        break
                    output.append(rest)
                found.append((path.name, command.split("  #")[0].strip(), "\n".join(output)))
    return found


def scratch(tmp_path):
    """A folder where the docs' relative paths work and whatever a command writes stays
    out of the tree: specs/ and examples/ are copied (`extends:` follows only paths
    inside the folder a spec is run from, symlinks resolved), the rest linked."""
    for name in ("specs", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    for name in ("tests", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def run_command(command: str, where) -> tuple[int, str, str]:
    if "|" in command or ">" in command:  # a pipeline: as a shell runs it
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=where, env=env,
                                capture_output=True, text=True, timeout=300)
        return result.returncode, result.stdout, result.stderr
    argv = []
    for word in shlex.split(command)[1:]:
        matches = sorted(glob.glob(str(where / word))) if any(c in word for c in "*?[") else []
        argv.extend(os.path.relpath(m, where) for m in matches) if matches else argv.append(word)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", help_commands())
def test_every_help_example_runs(command, tmp_path, monkeypatch):
    monkeypatch.chdir(scratch(tmp_path))
    status, _, err = run_command(command, tmp_path)
    assert status == 0, f"{command}\n{err}"


DOC_COMMANDS = doc_commands()


@pytest.mark.parametrize("where, command, shown", DOC_COMMANDS, ids=[c for _, c, _ in DOC_COMMANDS])
def test_every_documented_command_runs(where, command, shown, tmp_path, monkeypatch):
    if command in RUN_ELSEWHERE:
        assert RUN_ELSEWHERE[command]
        return
    monkeypatch.chdir(scratch(tmp_path))
    status, out, err = run_command(command, tmp_path)
    codes = re.findall(r"error\[(E\d{4})\]", shown or "")
    if codes:  # the docs show this command failing: it must fail the same way
        assert status != 0 and all(f"error[{code}]" in err for code in codes), f"{command}\n{err}"
    else:
        assert status == 0, f"{where}: {command}\n{err}"


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", text, re.S)]


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_snippets_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(scratch(tmp_path))
    source = readme_python_blocks()[index]
    exec(compile(source, f"README.md python block {index}", "exec"), {"__name__": "readme"})


def test_there_are_examples_to_run():
    assert len(help_commands()) >= 5
