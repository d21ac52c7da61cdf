"""The shipped JSON Schema: in step with the op registry, and every shipped spec satisfies it."""
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

import archspec
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
