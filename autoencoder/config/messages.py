"""Pydantic's validation errors as one line each: what is wrong at which key, and the fix."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel

from autoencoder.config.schema import METRIC_PATTERN, NAME_PATTERN, TIMEOUT_PATTERN, Config
from autoencoder.config.text import show

# Keras 1 words that users of Deconvolution2D still write, and the Keras 3 key that replaced each.
KERAS1_KEYS = {
    "nb_filter": "filters",
    "nb_row": "kernel_size",
    "nb_col": "kernel_size",
    "subsample": "strides",
    "border_mode": "padding",
    "output_shape": "target_size (or output_padding)",
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "bias": "use_bias",
}
KERAS1_TYPES = {
    "deconvolution2d": "conv_transpose",
    "deconv": "conv_transpose",
    "convolution2d": "conv",
    "conv2d": "conv",
    "conv2dtranspose": "conv_transpose",
    "maxpooling2d": "maxpool",
    "averagepooling2d": "avgpool",
}


def mistakes(raw: dict, errors: list) -> typing.Iterator[tuple[tuple, str]]:
    """(key path, message) for every mistake: Keras 1 words first, then pydantic's errors."""
    explained: set[tuple[tuple, str]] = set()
    for loc, message, explains in keras1_words(raw):
        explained |= explains
        yield loc, message
    for error in errors:
        loc = user_loc(error["loc"])
        # A Keras 1 word also trips pydantic (unknown key, missing filters, unknown type);
        # its own line already says what to write instead.
        if (loc, error["type"]) not in explained:
            yield loc, describe_error(error, loc)


def keras1_words(raw: dict) -> typing.Iterator[tuple[tuple, str, set]]:
    """(loc, message, pydantic errors it explains) for each Keras 1 key or type in a block."""
    model = raw.get("model")
    for part in ("encoder", "decoder"):
        blocks = model.get(part) if isinstance(model, dict) else None
        for i, block in enumerate(blocks if isinstance(blocks, list) else []):
            at = ("model", part, i)
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if isinstance(kind, str) and kind.lower() in KERAS1_TYPES:
                new = KERAS1_TYPES[kind.lower()]
                message = f"block {i}: type '{kind}' is the old Keras layer name; use type: {new}"
                yield at[:-1], message, {(at, "block_type")}
            for key in block:
                if key in KERAS1_KEYS:
                    new = KERAS1_KEYS[key]
                    message = f"'{key}' is Keras 1 (Deconvolution2D era); use '{new}'"
                    yield at, message, {(at + (key,), "extra_forbidden"), (at + (new,), "missing")}


def user_loc(loc: tuple) -> tuple:
    """Pydantic's error path without the union tags it inserts, which users never wrote."""
    # The tagged unions: model.decoder ("mirror" or "blocks"), each block ("conv", ...) and
    # tune.pruner ("name" or "settings").
    loc = list(loc)
    if loc[:2] == ["model", "decoder"] and loc[2:3] in (["mirror"], ["blocks"]):
        del loc[2]
    if loc[:2] in (["model", "encoder"], ["model", "decoder"]) and len(loc) > 3:
        del loc[3]
    if loc[:2] == ["tune", "pruner"] and loc[2:3] in (["name"], ["settings"]):
        del loc[2]
    return tuple(loc)


def summary(lines: list[str], keep: int = 5) -> str:
    """The first `keep` lines, then how many more there are."""
    # More lines would scroll the first mistakes away; the count says how much is left to fix.
    rest = len(lines) - keep
    more = [f"... and {rest} more mistake{'s' * (rest > 1)}"] if rest > 0 else []
    return "\n".join(lines[:keep] + more)


# Pydantic error types whose message needs nothing but the value given.
_PHRASES = {
    "missing": "is required but missing",
    "int_type": "must be an integer, got {}",
    "int_parsing": "must be an integer, got {}",
    "float_type": "must be a number, got {}",
    "bool_type": "must be true or false, got {}",
    "string_type": "must be a string, got {}",
    "model_type": "must be a mapping of keys, got {}",
    "dict_type": "must be a mapping of keys, got {}",
}

# A string refused by its form: what form each pattern wants.
_FORMS = {
    METRIC_PATTERN: "must be train/ or val/ and one of loss, mse, psnr, sse (val/psnr), got {}",
    TIMEOUT_PATTERN: "must be a number and a unit, s, m or h (90s, 60m, 2h), got {}",
    NAME_PATTERN: "must be a plain name (letters, digits, '_', '.', '-'), got {}",
}


def describe_error(error: dict, loc: tuple) -> str:
    """One pydantic error as a short phrase: what is wrong and what would be right."""
    kind, msg, value, ctx = error["type"], error["msg"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden":
        valid = valid_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean '{close[0]}'?"
        return f"unknown key; valid keys here: {', '.join(valid)}" if valid else "unknown key"
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a fixed-length list too short
        return f"is missing: the list needs at least {loc[-1] + 1} entries"
    if kind in _PHRASES:
        return _PHRASES[kind].format(show(value))
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _FORMS:
        return _FORMS[ctx["pattern"]].format(show(value))
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must list at least {least} entr{'ies' if least != 1 else 'y'}, got {show(value)}"
    if kind == "list_type" and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return f"must be a list, e.g. [{show(value)}], got {show(value)}"
    if kind == "too_long":
        most = ctx.get("max_length")
        return f"must list at most {most} entr{'ies' if most != 1 else 'y'}, got {show(value)}"
    if kind == "greater_than" and ctx.get("gt") == 0 and isinstance(value, int):
        return f"must be a positive integer, got {value}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '')}, got {show(value)}"
    if kind == "block_type":
        return f"{msg}, got type {show(value.get('type') if isinstance(value, dict) else value)}"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return msg if isinstance(value, (dict, list)) else f"{msg}, got {show(value)}"


def valid_keys(loc: tuple) -> list[str]:
    """The field names of the section found at `loc` (best effort, for suggestions)."""
    models: list[type[BaseModel]] = [Config]
    for part in loc:
        if not isinstance(part, int):
            fields = [m.model_fields[part] for m in models if part in m.model_fields]
            models = [m for field in fields for m in models_in(field.annotation)]
    return list(dict.fromkeys(key for model in models for key in model.model_fields))


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold, looking inside unions, lists and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return list(dict.fromkeys(m for arg in typing.get_args(annotation) for m in models_in(arg)))
