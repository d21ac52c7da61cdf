"""The shipped JSON Schema: in step with the op registry, and every shipped spec satisfies it."""
import json

import jsonschema
import pytest
import yaml

from archspec.ops import REGISTRY
from archspec.schema import build_schema
from conftest import ROOT, SPECS

SCHEMA_PATH = ROOT / "archspec" / "spec.schema.json"


def test_shipped_schema_matches_the_registry():
    # The shipped file is an exported copy of the schema of the built-in ops; after
    # adding one: python -c "from archspec.schema import write_schema; write_schema()"
    assert json.loads(SCHEMA_PATH.read_text()) == build_schema(REGISTRY.builtin())


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_validates_with_jsonschema_alone(path):
    schema = json.loads(SCHEMA_PATH.read_text())
    document = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.mark.parametrize("bad", [
    {"input": [3, 8, 8], "graph": {"c": {"op": "conv", "out": 4, "k": 3, "kernel": 3}}},
    {"input": [3, 8, 8], "graph": {"c": {"op": "conv", "out": "four", "k": 3}}},
    {"input": [3, 8, 8], "graph": {"c": {"op": "conv", "block": "x"}}},
    {"input": [3, 8, 8], "graph": {"c": {"out": 4}}},
    {"input": [3, 8, 8]},
    {"input": [3, 8, 8], "graph": [{"op": "relu"}], "colour": "red"},
])
def test_schema_rejects_malformed_documents(bad):
    schema = json.loads(SCHEMA_PATH.read_text())
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


AJV = ROOT / ".tools" / "node" / "node_modules" / ".bin" / "ajv"  # .ci/run installs it


def test_schema_compiles_under_ajv_in_strict_mode():
    # A second, independent validator, in the strictest mode it has: no union types,
    # no required property its subschema does not define, no unknown keyword.
    import os
    import subprocess

    if not AJV.exists():
        assert not os.environ.get("CI"), "CI must install ajv-cli (see .ci/run)"
        pytest.skip("ajv-cli is not installed here: npm install --prefix .tools/node ajv@8 ajv-cli@5")
    result = subprocess.run([str(AJV), "compile", "--spec=draft2020", "--strict=true", "-s", str(SCHEMA_PATH)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "is valid" in result.stdout + result.stderr, result.stdout + result.stderr


def _documents():
    """Every shipped spec and every file of the bad-spec corpus that is YAML at all."""
    from archspec.yaml_source import load_text

    for path in sorted(SPECS.glob("*.yaml")) + sorted((ROOT / "tests" / "bad_specs").glob("*.yaml")):
        try:
            yield path.name, load_text(path.read_text(encoding="utf-8"), path.name)
        except Exception:  # not YAML, or refused before the schema: nothing to compare
            continue


@pytest.mark.parametrize("name, document", list(_documents()), ids=lambda v: v if isinstance(v, str) else "")
def test_fast_checker_agrees_with_jsonschema(name, document):
    # The compiled fast path answers "valid or not"; jsonschema, the reference, must
    # give the same answer for every document, valid and invalid alike.
    from archspec.fastschema import compile_schema

    schema = build_schema()
    assert compile_schema(schema)(document) == jsonschema.Draft202012Validator(schema).is_valid(document), name
