"""The config's reference, generated from the schema: a JSON Schema and a Markdown page.

`autoencoder schema > docs/config.schema.json` and `autoencoder schema --markdown >
docs/config.md` write them; a test fails when the committed files fall behind the schema.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from typing import Any

from pydantic import BaseModel

from autoencoder.config.messages import models_in
from autoencoder.config.schema import Config

DRAFT = "http://json-schema.org/draft-07/schema#"
REGENERATE = (
    "autoencoder schema > docs/config.schema.json; autoencoder schema --markdown > docs/config.md"
)


def json_schema() -> dict:
    """The JSON Schema of a config file (draft-07, which YAML language servers read)."""
    schema = Config.model_json_schema(ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs")
    for model in _models(Config):
        section = schema if model is Config else schema["definitions"][model.__name__]
        for name, text in _attribute_docs(model).items():
            section["properties"][name]["description"] = text
    return {"$schema": DRAFT, **_draft7(schema), "title": "autoencoder config"}


def _models(model: type[BaseModel]) -> dict[type[BaseModel], None]:
    """`model` and every section model inside it, each once."""
    found = {model: None}
    for field in model.model_fields.values():
        for inner in models_in(field.annotation):
            found |= _models(inner)
    return found


def _attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstring under each field of `model` and of the sections it extends."""
    # Read here, when the reference is made, rather than by pydantic at import time
    # (use_attribute_docstrings reads every class's source whenever the package is imported).
    docs: dict[str, str] = {}
    for cls in reversed([c for c in model.__mro__ if issubclass(c, BaseModel)]):
        if cls.__module__.startswith("pydantic"):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
        for field, doc in zip(body, body[1:]):
            if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr):
                if isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                    docs[field.target.id] = inspect.cleandoc(doc.value.value)
    return docs


def json_schema_text() -> str:
    """docs/config.schema.json: the JSON Schema, indented, with a final newline."""
    return json.dumps(json_schema(), indent=2) + "\n"


def _draft7(node: Any) -> Any:
    """Pydantic's 2020-12 keywords in their draft-07 form; titles (the field names again) go."""
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "prefixItems":  # a tuple: draft-07 writes its items as a list
            out["items"] = _draft7(value)
        elif key == "oneOf":
            # A decoder block without `type` matches conv_transpose and conv alike (conv's keys
            # are a subset), which oneOf would refuse; the loader takes it as conv_transpose.
            out["anyOf"] = _draft7(value)
        elif key == "description":
            out[key] = " ".join(value.split())  # wrapped docstrings: one line each
        else:
            out[key] = _draft7(value)
    return out


# ---------------------------------------------------------------------------------------------
# Markdown

HEADER = """# Config reference

Generated from the schema in `autoencoder/config/` by `autoencoder schema --markdown`; do not
edit it by hand. A YAML file overrides these defaults and `--set key=value` overrides the file;
unknown keys, wrong types and out-of-range values are refused. Editors that read JSON Schema
check a config as you type with [config.schema.json](config.schema.json) (`autoencoder
schema`): each preset in `configs/` names it in its first line. Checks that involve several
keys (e.g. `model.kind: vae` needs `model.latent_dim`) are made by `load_config` only.

A pair (`[h, w]`) may be written as one number for both axes: `kernel_size: 3`.
"""


def reference_markdown() -> str:
    """docs/config.md: every key with its type, default, allowed values and meaning."""
    schema = json_schema()
    defs, defaults = schema["definitions"], Config().model_dump(mode="json")
    parts = [HEADER]
    top = {k: v for k, v in schema["properties"].items() if _section(v, defs) is None}
    parts.append(_table("Top level", _rows(defs, {"properties": top}, "", defaults)))
    for name, prop in schema["properties"].items():
        section = _section(prop, defs)
        if section is not None:
            rows = _rows(defs, section, name, defaults.get(name, {}))
            parts.append(_table(f"`{name}`", rows, section.get("description")))
    parts.append(_blocks(defs))
    return "\n".join(parts)


def _table(title: str, rows: list[list[str]], intro: str | None = None, level: int = 2) -> str:
    head = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    lines = [f"{'#' * level} {title}", ""] + ([intro, ""] if intro else [])
    return "\n".join(lines + head + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _rows(defs: dict, section: dict, prefix: str, defaults: Any) -> list[list[str]]:
    """One row per key of `section`, and the rows of the sections inside it after their own."""
    rows = []
    required = set(section.get("required", ()))
    for name, prop in section["properties"].items():
        key = f"{prefix}.{name}" if prefix else name
        inner = _section(prop, defs)
        default = defaults.get(name) if isinstance(defaults, dict) else None
        if inner is None:
            rows.append(_row(key, prop, name in required, default))
            continue
        if _nullable(prop):  # an optional section: off unless given
            rows.append([f"`{key}`", "mapping", "left out", "", _meaning(prop, inner)])
        elif any("$ref" not in option for option in _options(prop)):  # a value or a section
            rows.append(_row(key, prop, name in required, default))
        rows += _rows(defs, inner, key, default or {})
    return rows


def _row(key: str, prop: dict, required: bool, default: Any) -> list[str]:
    if required:
        shown = "required"
    elif "default" in prop:
        shown = _value(prop["default"])
    else:
        shown = _value(default)
    return [f"`{key}`", _type(prop), shown, _allowed(prop), _meaning(prop)]


def _section(prop: dict, defs: dict) -> dict | None:
    """The definition of a nested section (a mapping of keys), else None."""
    for option in [prop, *prop.get("anyOf", ())]:
        ref = option.get("$ref", "")
        if ref:
            return defs[ref.rsplit("/", 1)[1]]
    return None


def _nullable(prop: dict) -> bool:
    return any(option.get("type") == "null" for option in prop.get("anyOf", ()))


def _meaning(prop: dict, section: dict | None = None) -> str:
    return prop.get("description") or (section or {}).get("description", "")


def _options(prop: dict) -> list[dict]:
    """The alternatives a value may take, without null (a left-out value)."""
    options = prop.get("anyOf", [prop])
    return [o for o in options if o.get("type") != "null"]


def _type(prop: dict) -> str:
    names = []
    for option in _options(prop):
        kind = option.get("type")
        if kind == "array" and isinstance(option.get("items"), list):
            names.append("[" + ", ".join(_type(item) for item in option["items"]) + "]")
        elif kind == "array" and option.get("minItems") == option.get("maxItems") == 2:
            # Pairs of sizes are integers; pairs of numbers are ranges (a noise level's).
            number = option.get("items", {}).get("type") == "number"
            names.append("[low, high]" if number else "[h, w]")
        elif kind == "array":
            items = option.get("items", {})
            blocks = "anyOf" in items and "$ref" in items["anyOf"][0]
            names.append("list of blocks" if blocks else f"list of {_type(items)}")
        elif kind:
            names.append(kind)
        elif "$ref" in option:
            names.append("mapping")
        elif "enum" in option or "const" in option:
            values = option.get("enum", [option.get("const")])
            names.append("string" if any(isinstance(v, str) for v in values) else "value")
    return " or ".join(dict.fromkeys(names))


def _allowed(prop: dict) -> str:
    words = []
    for option in _options(prop):
        if "enum" in option or "const" in option:
            values = option.get("enum", [option.get("const")])
            words.append(
                ", ".join(f"`{v if isinstance(v, str) else json.dumps(v)}`" for v in values)
            )
        words += _bounds(option)
        items = option.get("items")
        words += _bounds(items[0] if isinstance(items, list) else items or {})
        if "pattern" in option:
            words.append(f"pattern `{option['pattern']}`")
        if option.get("minItems") == 1:
            words.append("at least 1")
    return "; ".join(dict.fromkeys(words))


def _bounds(option: dict) -> list[str]:
    signs = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    found = [f"{sign} {option[key]}" for key, sign in signs.items() if key in option]
    return [", ".join(found)] if found else []


def _value(value: Any) -> str:
    """A default or allowed value as YAML would write it."""
    if value is None:
        return "left out"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return ", ".join(f"{v.get('type')} {v.get('filters', '')}".strip() for v in value)
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"


def _blocks(defs: dict) -> str:
    """A table per block type of model.encoder and model.decoder."""
    model = defs["ModelConfig"]["properties"]
    lists = {
        "model.encoder": model["encoder"]["items"]["anyOf"],
        "model.decoder": model["decoder"]["anyOf"][1]["items"]["anyOf"],
    }
    where: dict[str, list[str]] = {}
    for place, options in lists.items():
        for option in options:
            where.setdefault(option["$ref"].rsplit("/", 1)[1], []).append(f"`{place}`")
    parts = [
        "## Blocks of `model.encoder` and `model.decoder`\n\n"
        "Each block is a mapping chosen by its `type`; a block without `type` is `conv` in the "
        "encoder and `conv_transpose` in the decoder.\n"
    ]
    for name, places in where.items():
        block = defs[name]
        kind = block["properties"]["type"]
        kinds = " / ".join(f"`{k}`" for k in kind.get("enum", [kind.get("const")]))
        intro = f"{block.get('description', '')} In {' and '.join(places)}."
        parts.append(_table(f"type: {kinds}", _rows(defs, block, "", {}), intro, level=3))
    return "\n".join(parts)
