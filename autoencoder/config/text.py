"""Values and key paths as they are written in one-line messages."""

from __future__ import annotations

from typing import Any

import yaml


def printable(text: str) -> str:
    """Text for a one-line message: as typed, or with newlines and the like escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def show(value: Any, limit: int = 80) -> str:
    """A value as YAML would write it, cut to `limit` characters."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict):
        return "a mapping"
    else:  # width: YAML would wrap a long list over several lines; messages are one line
        text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
        text = text.removesuffix("...").strip()
        text = text if text.isprintable() else repr(value)  # YAML breaks lines inside strings
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_loc(loc: tuple) -> str:
    """("model", "encoder", 0, "filters") -> "model.encoder[0].filters"."""
    out = ""
    for part in loc:
        part = part if isinstance(part, int) else printable(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"
