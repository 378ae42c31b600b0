"""Run directories: create without overwriting, find, check for resume, write files atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from autoencoder.config import Config, dump_config, load_config
from autoencoder.errors import UserError

STATE = "checkpoints/state.json"
# Keys that may change between a run and its resume: more epochs extend a finished run.
RESUMABLE_CHANGES = {"train.epochs"}


def create_run_dir(config: Config) -> Path:
    """Make <output>/<name>/<YYYYmmdd-HHMMSS>[-k]/ and its subfolders; never reuse one."""
    parent = Path(config.output) / config.name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"output: cannot create {parent}: {exc.strerror}; set output: to a "
            f"writable directory (e.g. --set output=/tmp/runs)"
        ) from None
    if not os.access(parent, os.W_OK):
        raise UserError(
            f"output: {parent} is not writable; set output: to a writable directory "
            f"(e.g. --set output=/tmp/runs)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        for k in range(1000):
            run_dir = parent / (stamp if k == 0 else f"{stamp}-{k}")
            try:
                run_dir.mkdir()  # atomic: exactly one caller gets a name, none reuses one
            except FileExistsError:
                continue
            break
        else:
            raise UserError(
                f"output: {parent} already holds runs {stamp} to {stamp}-999; "
                f"wait a second or set output: to another directory"
            )
        for sub in ("checkpoints", "figures"):
            (run_dir / sub).mkdir()
        write_text(run_dir / "config.yaml", dump_config(config))
    except OSError as exc:
        raise UserError(
            f"output: cannot write in {parent}: {exc.strerror or exc}; free disk "
            f"space or set output: to a writable directory (e.g. --set "
            f"output=/tmp/runs)"
        ) from None
    return run_dir


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    write_with(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_with(path: Path, writer) -> None:
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


def history_csv(rows: list[dict]) -> str:
    """history rows -> CSV text with a fixed column order."""
    if not rows:
        return ""
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_history(run_dir: Path) -> list[dict]:
    """history.csv as a list of rows with float values (epoch as int)."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
        for row in rows
    ]


def read_state(run_dir: Path) -> dict | None:
    """The last completed epoch's state, or None for a run that has not finished one."""
    path = Path(run_dir) / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        state = None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("epoch"), int)
        and isinstance(state.get("checkpoint"), str)
    ):
        raise UserError(f"{path}: corrupt run state; this run cannot be resumed, start a new one")
    return state


def load_run_config(run_dir: str | Path) -> Config:
    """The resolved config saved in a run directory."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(
            f"{run_dir}: not a run directory (no config.yaml); pass a directory "
            f"made by `autoencoder train`, e.g. outputs/<name>/<timestamp>"
        )
    return load_config(run_dir / "config.yaml")


def check_resume(run_dir: str | Path, config: Config) -> Path:
    """Refuse to resume a directory that is not a run or whose config differs."""
    run_dir = Path(run_dir)
    saved = load_run_config(run_dir)
    diff = config_diff(saved, config) - RESUMABLE_CHANGES
    if diff:
        shown = ", ".join(sorted(diff)[:6]) + (" ..." if len(diff) > 6 else "")
        raise UserError(
            f"--resume {run_dir}: the config differs from the run's in {shown}; "
            f"resume with the run's own config: {run_dir / 'config.yaml'}"
        )
    # Checked here too, so that `train --resume` refuses a damaged run before TensorFlow loads.
    state = read_state(run_dir)
    if state is not None and not (run_dir / "checkpoints" / state["checkpoint"]).is_file():
        raise UserError(
            f"{run_dir / STATE}: names checkpoint {state['checkpoint']}, which is "
            f"missing; this run cannot be resumed, start a new one"
        )
    return run_dir


def config_diff(a: Config, b: Config) -> set[str]:
    """Dotted keys whose values differ between two configs."""
    return set(_diff(a.model_dump(mode="json"), b.model_dump(mode="json"), ""))


def _diff(a: Any, b: Any, prefix: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _diff(x, y, f"{prefix}[{i}]")
    elif a != b:
        yield prefix


def dump_yaml(data: Any) -> str:
    """Plain YAML for small records."""
    return yaml.safe_dump(data, sort_keys=False)
