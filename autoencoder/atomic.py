"""Atomic file writes: a crash or a full disk never leaves a half-written file in a run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_with(path: str | Path, writer) -> None:
    """Call writer(tmp_path), then rename tmp onto path; on failure the old file stays intact."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")  # keeps the suffix Keras checks (.weights.h5)
    try:
        writer(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Atomic text write."""
    write_with(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | Path, data: Any) -> None:
    """Atomic JSON write."""
    write_text(path, json.dumps(data, indent=2) + "\n")
