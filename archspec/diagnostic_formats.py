"""`archspec validate --format json|sarif`: the diagnostics of a run as one document
for editors and CI.

JSON (archspec's own, `"format": "archspec.diagnostics/1"`): one entry per spec
given, each with its diagnostics:

    {"code", "severity", "message", "file", "line", "column",
     "end": {"line", "column"}, "hint", "notes": [{"message", "file", "line", "column"}]}

`line`/`column` are 1-based, as the text output's; `end` is just after the offending
value (exclusive, as in SARIF and LSP), the start itself where the end is not known,
and null with the start when the diagnostic has no position (a missing file).

SARIF 2.1.0, for GitHub code scanning and other SARIF viewers: one run, one result
per diagnostic, one rule per code; notes (the instantiation chain) are related
locations.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from urllib.parse import quote

from .diagnostics import Diagnostic, display_path
from .source_spans import end_of

JSON_FORMAT = "archspec.diagnostics/1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass
class SpecResult:
    """What validating one spec gave: its diagnostics (warnings included) and, when
    it compiled, its size."""

    file: str
    diagnostics: list = field(default_factory=list)
    nodes: int | None = None
    params: int | None = None

    @property
    def status(self) -> str:
        errors = [d for d in self.diagnostics if d.severity == "error"]
        if not errors:
            return "ok"
        return "failed" if all(d.exit_code == 1 for d in errors) else "invalid"


def diagnostic_dict(d: Diagnostic, file: str) -> dict:
    start = (d.pos.line, d.pos.col) if d.pos else None
    end = end_of(d.pos) or start
    return {
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "file": display_path(d.pos.file) if d.pos else file,
        "line": start[0] if start else None,
        "column": start[1] if start else None,
        "end": {"line": end[0], "column": end[1]} if end else None,
        "hint": d.hint,
        "notes": [{"message": f"in {what}" + (" instantiated here" if pos else ""),
                   "file": display_path(pos.file) if pos else None,
                   "line": pos.line if pos else None, "column": pos.col if pos else None}
                  for what, pos in d.trace],
    }


def to_json(results: list, exit_status: int, version: str) -> str:
    specs = []
    for r in results:
        entry = {"file": r.file, "status": r.status}
        if r.nodes is not None:
            entry.update(nodes=r.nodes, params=r.params)
        entry["diagnostics"] = [diagnostic_dict(d, r.file) for d in r.diagnostics]
        specs.append(entry)
    every = [d for r in results for d in r.diagnostics]
    document = {
        "format": JSON_FORMAT,
        "archspec": version,
        "exit_status": exit_status,
        "errors": sum(d.severity == "error" for d in every),
        "warnings": sum(d.severity == "warning" for d in every),
        "specs": specs,
    }
    return json.dumps(document, indent=1)


def to_sarif(results: list, version: str) -> str:
    codes = sorted({d.code for r in results for d in r.diagnostics})
    rule_index = {code: i for i, code in enumerate(codes)}
    sarif_results = []
    for r in results:
        for d in r.diagnostics:
            data = diagnostic_dict(d, r.file)
            text = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            result = {
                "ruleId": d.code,
                "ruleIndex": rule_index[d.code],
                "level": "error" if d.severity == "error" else "warning",
                "message": {"text": text},
                "locations": [_location(data)],
            }
            related = [dict(_location(note), id=i, message={"text": note["message"]})
                       for i, note in enumerate(data["notes"]) if note["file"]]
            if related:
                result["relatedLocations"] = related
            sarif_results.append(result)
    run = {
        "tool": {"driver": {
            "name": "archspec",
            "version": version,
            "rules": [{"id": code, "defaultConfiguration": {"level": "warning" if code.startswith("W") else "error"}}
                      for code in codes],
        }},
        "originalUriBaseIds": {"SRCROOT": {"uri": _uri(os.getcwd()) + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": sarif_results,
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=1)


def _location(data: dict) -> dict:
    path = data["file"]
    artifact = {"uri": _uri(path)}
    if not os.path.isabs(path):
        artifact["uriBaseId"] = "SRCROOT"
    location = {"artifactLocation": artifact}
    if data.get("line"):
        region = {"startLine": data["line"], "startColumn": data["column"]}
        end = data.get("end")
        if end and (end["line"], end["column"]) != (data["line"], data["column"]):
            region.update(endLine=end["line"], endColumn=end["column"])
        location["region"] = region
    return {"physicalLocation": location}


def _uri(path: str) -> str:
    """A relative path as a relative URI reference; an absolute one as file:///..."""
    posix = path.replace(os.sep, "/")
    if os.path.isabs(path):
        return "file://" + quote(posix)
    return quote(posix)
