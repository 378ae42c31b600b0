"""Reading a config: YAML files, `--set` overrides, validation, and writing one back.

A YAML file overrides the defaults, `--set a.b=v` overrides the file, and anything unknown,
mistyped or out of range is refused with one line naming the file and the key path.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from autoencoder.config.messages import mistakes, summary
from autoencoder.config.schema import Config
from autoencoder.config.text import format_loc, printable
from autoencoder.errors import UserError, named


def load_config(path: str | Path | dict | None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML config (or take a dict), apply `--set key=value` overrides, validate.

    Args:
      path: YAML file, or a dict of the same sections; None starts from the defaults alone.
      overrides: strings like "train.epochs=5"; values are parsed as YAML.
    Raises:
      UserError: one line per mistake (at most five, then a count of the rest), each naming the
        file ("config" for a dict, or the --set) and the key path.
    """
    raw = _raw(path)
    sets: list[tuple[tuple, str]] = []
    for item in overrides:
        keys, value = parse_override(item)
        set_path(raw, keys, value, printable(item))
        sets.append((keys, _label(printable(item))))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        # Keras 1 words always fail validation too (unknown keys and types), so they are
        # looked for only here.
        found = mistakes(raw, exc.errors())
        lines = [f"{_source(loc, path, sets)}: {format_loc(loc)}: {text}" for loc, text in found]
        raise UserError(summary(lines)) from None


def _label(item: str) -> str:
    """An override as its reader wrote it: `--set a.b=v` on the command line, `a.b=v` in Python."""
    return named(f"--set {item}", item)


def _source(loc: tuple, path: str | Path | dict | None, sets: list[tuple[tuple, str]]) -> str:
    """Where `loc` was written: the last --set on it, above it or inside it, else the file."""
    for keys, item in reversed(sets):
        if loc[: len(keys)] == keys or keys[: len(loc)] == loc:
            return item
    if isinstance(path, dict):
        return "config"
    return str(path) if path is not None else "defaults"


def _raw(path: str | Path | dict | None) -> dict:
    """The mapping to validate: a copy of a dict (overrides edit it in place), or the file's."""
    if isinstance(path, dict):
        return copy.deepcopy(path)
    return read_yaml(path) if path is not None else {}


# What a YAML file given for a kind must be: read_yaml's words when it is not a mapping.
SHAPES = {
    "config": "a config must be a YAML mapping with sections such as name, seed, data, model, "
    "train",
    "space": "a space file must be a YAML mapping shaped like a config's tune section: space: "
    "{KEY: DISTRIBUTION, ...}, and objective, trials, epochs_per_trial if wanted",
}


def read_yaml(path: str | Path, kind: str = "config") -> dict:
    """Load a YAML mapping with safe_load; refuse anything else with one line.

    `kind` ("config" or "space") names the file in the messages.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        hint = " (presets are in configs/)" if kind == "config" else ""
        raise UserError(f"{path}: {kind} file not found; check the path{hint}") from None
    except IsADirectoryError:
        raise UserError(_folder_given(path, kind)) from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read {kind}: {exc.__class__.__name__}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = printable(getattr(exc, "problem", None) or str(exc).partition("\n")[0])
        if not isinstance(exc, yaml.constructor.ConstructorError):
            raise UserError(f"{path}: not valid YAML: {line}{problem}") from None
        # Valid YAML that safe_load will not build, such as a Python tag.
        hint = "; configs are plain YAML and Python object tags are refused (yaml.safe_load)"
        raise UserError(f"{path}: {line}{problem}{hint if 'tag' in problem else ''}") from None
    except (ValueError, RecursionError) as exc:  # a date like 2001-13-01, a 5,000-digit number,
        raise UserError(f"{path}: not valid YAML: {_unreadable(exc)}") from None  # deep nesting
    if not isinstance(raw, (dict, type(None))):
        raise UserError(f"{path}: {SHAPES[kind]}; got a {type(raw).__name__}")
    return raw or {}


def _folder_given(path: Path, kind: str) -> str:
    """What a folder given for a YAML file is, and the file to give instead."""
    sweep = (path / "models").is_dir() and not (path / "checkpoints").exists()
    if kind == "config" and (path / "config.yaml").is_file() and sweep:
        return (
            f"{path}: a denoising sweep's folder, not a config file; `autoencoder denoise "
            f"{path / 'config.yaml'} --resume {path}` goes on with it"
        )
    if kind == "config" and (path / "config.yaml").is_file() and (path / "runs").is_dir():
        return (
            f"{path}: an anomaly benchmark's folder, not a config file; `autoencoder anomaly "
            f"{path / 'config.yaml'} --benchmark {_dataset(path / 'config.yaml')}` runs it again"
        )
    if kind == "config" and (path / "config.yaml").is_file():
        return (
            f"{path}: a run directory, not a config file; `autoencoder resume {path}` continues "
            f"the run, or pass {path / 'config.yaml'} to start a new one from its config"
        )
    found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    example = f", e.g. {found[0]}" if found else ""
    return f"{path}: a folder, not a {kind} file; pass a YAML file{example}"


def _dataset(path: Path) -> str:
    """The data.dataset a saved config names, or DATASET when it cannot be read."""
    try:
        return str(yaml.safe_load(path.read_text())["data"]["dataset"])
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return "DATASET"


def parse_override(item: str) -> tuple[tuple, Any]:
    """Split "a.b=v" into (("a", "b"), v) with v parsed as YAML."""
    key, sep, text = item.partition("=")
    item = printable(item)
    if not sep or not key.strip():
        example = named("--set train.epochs=5", "'train.epochs=5' or {'train.epochs': 5}")
        raise UserError(f"{_label(item)}: expected KEY=VALUE, e.g. {example}")
    keys = tuple(int(k) if k.isascii() and k.isdigit() else k for k in key.strip().split("."))
    if "" in keys:
        raise UserError(
            f"{_label(item)}: empty key in '{printable(key)}'; write dotted keys like train.epochs"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or _unreadable(exc)
        raise UserError(
            f"{_label(item)}: value '{printable(text)}' is not valid YAML ({problem}); "
            f"quote strings, e.g. {named('--set name=my_run', 'name=' + repr('my run'))}"
        ) from None
    return keys, value


def _unreadable(exc: Exception) -> str:
    """Why PyYAML's constructors could not build a value, in a few words."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "digits" in str(exc):
        return "a number with too many digits"
    return f"a value cannot be read: {printable(str(exc))}"


def set_path(raw: dict, keys: tuple, value: Any, item: str) -> None:
    """Set raw[k1][k2]... = value, creating sections as needed."""
    node: Any = raw
    for depth, key in enumerate(keys):
        if isinstance(node, list) and (not isinstance(key, int) or key >= len(node)):
            raise UserError(
                f"{_label(item)}: {format_loc(keys[: depth + 1])}: no such list item "
                f"(the list has {len(node)})"
            )
        if not isinstance(node, (dict, list)):
            raise UserError(f"{_label(item)}: {format_loc(keys[:depth])} is not a section")
        if depth == len(keys) - 1:
            node[key] = value
            return
        if isinstance(node, dict) and (node.get(key) is None or isinstance(node[key], str)):
            node[key] = _default_section(keys[: depth + 1])
        node = node[key]


def _default_section(keys: tuple) -> Any:
    # A --set into a section the file left out starts from that section's defaults, so that
    # e.g. `--set model.encoder.0.filters=64` edits the default encoder rather than replacing it.
    node: Any = Config().model_dump(mode="python", exclude_none=True)
    # A left-out model.input_shape means "the data's", so it is no default to copy in.
    node["model"].pop("input_shape")
    try:
        for key in keys:
            node = node[key]
    except (KeyError, IndexError, TypeError):
        return {}
    return node if isinstance(node, (dict, list)) else {}


def dump_config(config: Config) -> str:
    """The resolved config as YAML, loadable again by load_config."""
    data = config.model_dump(mode="json")
    if "input_shape" not in config.model.model_fields_set:
        # Left out, and not yet read from the data's files: stays left out (not 28x28x1).
        del data["model"]["input_shape"]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
