"""The generated config reference: docs/config.md and docs/config.schema.json stay current, and
the JSON Schema accepts and refuses what load_config does."""

import json

import jsonschema
import pytest
import yaml
from conftest import ROOT

from autoencoder.config import load_config
from autoencoder.config.reference import (
    REGENERATE,
    json_schema,
    json_schema_text,
    reference_markdown,
)
from autoencoder.errors import UserError

PRESETS = sorted((ROOT / "configs").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../docs/config.schema.json"


@pytest.mark.parametrize(
    "path, generate",
    [("docs/config.schema.json", json_schema_text), ("docs/config.md", reference_markdown)],
)
def test_committed_reference_is_what_the_schema_generates(path, generate):
    assert (ROOT / path).read_text() == generate(), f"{path} is stale; run: {REGENERATE}"


def validator():
    schema = json.loads((ROOT / "docs/config.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_names_the_schema_and_validates_against_it(path):
    assert path.read_text().splitlines()[0] == MODELINE
    raw = yaml.safe_load(path.read_text())
    assert [e.message for e in validator().iter_errors(raw)] == []
    load_config(path)


@pytest.mark.parametrize(
    "raw, word",
    [
        ({"train": {"epoch": 3}}, "epoch"),  # unknown key
        ({"trian": {}}, "trian"),
        ({"model": {"encoder": [{"filters": 8, "nb_filter": 8}]}}, "nb_filter"),
        ({"train": {"epochs": "five"}}, "five"),  # wrong type
        ({"train": {"epochs": 0}}, "0"),  # out of range
        ({"data": {"validation_split": 1.5}}, "1.5"),
        ({"model": {"encoder": [{"filters": 8, "kernel_size": [1, 2, 3]}]}}, "[1, 2, 3]"),
        ({"model": {"encoder": [{"filters": 8, "activation": "relux"}]}}, "relux"),
        ({"model": {"encoder": [{"type": "pool", "filters": 8}]}}, "pool"),
        ({"anomaly": {"threshold": {"value": -1}}}, "-1"),
        ({"data": {"noise": {"level": [0.1, 0.2, 0.3]}}}, "[0.1, 0.2, 0.3]"),
        ({"denoise": {"blind": 0.7}}, "0.7"),
    ],
)
def test_the_schema_refuses_what_load_config_refuses(raw, word):
    errors = [e.message for e in validator().iter_errors(raw)]
    assert errors and any(word in e for e in errors), errors
    with pytest.raises(UserError):
        load_config(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"model": {"encoder": [{"filters": 8, "kernel_size": 3}]}},  # a scalar for a pair
        {"model": {"encoder": [{"filters": 8, "kernel_size": [3, 5]}]}},
        {"model": {"decoder": [{"filters": 8, "strides": 2}, {"type": "upsample", "size": 2}]}},
        {"model": {"skips": None}},  # YAML's bare `skips:`
        {"train": {"mixed_precision": False}},  # YAML 1.1 reads `off` as false
        {"data": {"classes": [1, 7]}, "anomaly": {"normal": [1], "threshold": {"value": 3}}},
        {"data": {"dataset": "folder", "path": "d", "classes": ["good", "bad"]}},
        {"data": {"noise": {"level": [0, 0.7]}}, "denoise": {"blind": [0.0, 0.7]}},
    ],
)
def test_the_schema_accepts_what_load_config_accepts(raw):
    assert [e.message for e in validator().iter_errors(raw)] == []
    load_config(raw)


def test_schema_is_draft7_with_unknown_keys_refused_in_every_section():
    schema = json_schema()
    sections = [schema, *schema["definitions"].values()]
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert all(s["additionalProperties"] is False for s in sections)
    assert "prefixItems" not in json_schema_text() and "$defs" not in json_schema_text()


def test_markdown_names_every_key_with_its_default_and_meaning():
    text = reference_markdown()
    row = "| `train.optimizer.learning_rate` | number | `0.001` | > 0 | "
    assert row + "Learning rate (the starting one, with a schedule). |" in text
    assert "### type: `conv_transpose`" in text and "### type: `maxpool` / `avgpool`" in text
    # Every row has a meaning: no key is left without a description in the schema.
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) > 100 and all(not line.endswith("|  |") for line in rows)
