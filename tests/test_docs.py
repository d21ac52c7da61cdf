"""The docs stay true to the tree: their links lead somewhere, and the README's table
of shipped networks names every spec in specs/."""
import fnmatch
import re

from conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_relative_links_lead_to_files_that_exist():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_readme_table_names_every_shipped_spec():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## The shipped networks", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9_*]+)`", row)}  # `regnet_x_*`: a family
    missing = [spec.stem for spec in sorted((ROOT / "specs").glob("*.yaml"))
               if not any(fnmatch.fnmatchcase(spec.stem, name) for name in named)]
    assert not missing, f"specs the README's table does not list: {missing}"
