"""Headless Chromium for the tests of `archspec draw --format html`: the page's DOM
after its script ran (`--dump-dom`), read back with the standard library's parser.

The page accepts `#expand=A,B` and clicks those blocks itself (a real click event on
the element a person would click), so no browser-driving library is needed."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

# How a machine without them gets them; CI (`.ci/run`) installs both.
INSTALL = {"chromium": "apt-get install chromium", "dot": "apt-get install graphviz"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


def need(program: str) -> str:
    """The program's path; without it the test is skipped here, but fails in CI, where
    .ci/run installs it, so a green CI run means the test really ran."""
    names = ("chromium", "chromium-browser") if program == "chromium" else (program,)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"`{program}` is not installed ({INSTALL[program]})"
    if os.environ.get("CI"):
        pytest.fail(message + ": .ci/run must install it")
    pytest.skip(message)


def dump_dom(page: Path, fragment: str = "", timeout: int = 90) -> str:
    """The DOM of `page` after load, serialised by Chromium, with a fresh profile."""
    browser = need("chromium")
    with tempfile.TemporaryDirectory(prefix="archspec-chromium-") as profile:
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri() + (f"#{fragment}" if fragment else "")],
                              capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """What a dumped page shows: each drawn box (an element with `data-name`) with its
    classes and own text (that of the boxes drawn inside it and of tooltips excluded),
    and each edge."""

    _VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "area", "base", "source"}

    def __init__(self, dom: str):
        super().__init__()
        self.boxes: dict[str, dict] = {}
        self.edges: list[tuple[str, str, str]] = []  # (from, to, class)
        self.body: dict = {}
        self.notes = ""
        self._stack: list = []  # (tag, box name or None)
        self._in_notes = False
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        if tag == "path" and "data-from" in attrs:
            self.edges.append((attrs["data-from"], attrs["data-to"], attrs.get("class", "")))
        self._in_notes = attrs.get("id") == "notes"
        if tag in self._VOID:
            return
        name = attrs.get("data-name")
        if name is not None:
            self.boxes[name] = {"class": set(attrs.get("class", "").split()), "text": ""}
        self._stack.append((tag, name))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break
        self._in_notes = False

    def handle_data(self, data):
        if self._in_notes:
            self.notes += data
        if self._stack and self._stack[-1][0] == "title":
            return  # a tooltip, not what the box shows
        for _, name in reversed(self._stack):
            if name is not None:
                self.boxes[name]["text"] += data + " "
                break

    def text(self, name: str) -> str:
        return " ".join(self.boxes[name]["text"].split())
