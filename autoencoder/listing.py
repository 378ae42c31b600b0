"""The runs under a folder, one row each: status, epochs, minutes, best val/loss, test metrics.

Everything is read through autoencoder/runs.py; nothing here imports TensorFlow, so listing a
folder of runs takes a fraction of a second.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path

from autoencoder import runs
from autoencoder.errors import UserError

# Folders nested this deep below the listed one are searched: <sweep>/<ts>/models/<level>/<ts>.
MAX_DEPTH = 6
# The columns, in order: each is a --sort key, a JSON field and the text table's header.
COLUMNS = (
    "name",
    "started",
    "status",
    "epochs",
    "minutes",
    "val_loss",
    "psnr",
    "ssim",
    "sse",
    "path",
)
NUMERIC = {"epochs", "minutes", "val_loss", "psnr", "ssim", "sse"}
# Sorted largest first, so that the best run leads (losses and errors lead with the smallest).
LARGEST_FIRST = {"psnr", "ssim"}
# metrics.json's names of the test metrics each column shows.
METRICS = {"psnr": "test/psnr", "ssim": "test/ssim", "sse": "test/sse_per_image"}


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory under root (root itself included), found by runs.is_run."""
    found, stack = [], [(Path(root), 0)]
    while stack:
        folder, depth = stack.pop()
        if runs.is_run(folder):
            found.append(folder)  # a run's own subfolders hold no runs
            continue
        if depth < MAX_DEPTH:
            stack += [(Path(e.path), depth + 1) for e in _subfolders(folder)]
    return sorted(found)


def _subfolders(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    except OSError:  # unreadable: what it holds cannot be listed, the rest can
        return []


def list_runs(root: str | Path = "outputs") -> list[dict]:
    """One dict per run under root, oldest first; None where a run has no such value.

    Raises:
      UserError: root is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise UserError(
            f"{root}: {what}; pass the folder your runs are written to (a config's "
            f"output:, outputs by default)"
        )
    rows = [run_row(run_dir, root) for run_dir in find_run_dirs(root)]
    return sort_rows(rows, "started")


def run_row(run_dir: Path, root: Path) -> dict:
    """A run's row; status "damaged" (and the reason in "problem") when its record is unreadable."""
    row = {
        "name": run_name(run_dir, root),
        "started": started(run_dir.name),
        "status": None,
        "epochs": None,
        "epochs_configured": None,
        "minutes": None,
        "minutes_configured": None,
        "val_loss": None,
        **dict.fromkeys(METRICS),
        "path": str(run_dir),
        "problem": None,
    }
    try:
        row.update(_record(run_dir))
    except UserError as exc:  # a config or state that fails its checks; it names the file
        row.update(status="damaged", problem=str(exc).splitlines()[0])
    except (ValueError, OSError) as exc:  # an unreadable history.csv or metrics.json
        row.update(status="damaged", problem=f"{run_dir}: {exc}")
    return row


def _record(run_dir: Path) -> dict:
    """The fields read from a run's files; raises if one of them is damaged."""
    config = runs.load_run_config(run_dir)
    runs.check_checkpoints(run_dir)
    state = runs.read_state(run_dir)
    history = runs.read_history(run_dir)
    runs.check_history(run_dir, state, history)
    metrics = runs.read_metrics(run_dir)
    losses = [r["val/loss"] for r in history if math.isfinite(r.get("val/loss", math.nan))]
    best = min(losses) if losses else _finite(metrics.get("best/val_loss"))
    epochs = state["epoch"] if state else 0
    # Minutes of training as train.minutes counts them: the completed epochs' seconds.
    seconds = runs.training_seconds(history[:epochs])
    return {
        "status": runs.status(run_dir),
        "epochs": epochs,
        "epochs_configured": config.train.epochs,
        "minutes": round(seconds / 60, 3),
        "minutes_configured": config.train.minutes,
        "val_loss": best,
        **{column: _finite(metrics.get(key)) for column, key in METRICS.items()},
    }


def _finite(value) -> float | None:
    """A metric as a number JSON can hold: None for a missing, infinite or NaN one."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def run_name(run_dir: Path, root: Path) -> str:
    """The name folder of a run (the one above its timestamp); a run nested in a sweep or a
    study is prefixed by that one's name folder: sweep/level-0.1, whatever root is listed."""
    if started(run_dir.name) is None:  # a run folder of the user's own naming (a copy)
        return run_dir.name
    parts = run_dir.relative_to(root).parts[:-1]  # without the timestamp
    if not parts:  # root is a run's own name folder, or the run itself
        return run_dir.resolve().parent.name
    stamps = [i for i, part in enumerate(parts) if started(part) is not None]
    studies = [i for i, part in enumerate(parts) if is_study(part)]
    if studies and (not stamps or studies[-1] > stamps[-1]):
        # A study's trials are trial-0, trial-1 in every study: its folder tells them apart.
        return "/".join(parts[max(studies[-1] - 1, 0) : studies[-1] + 1] + (parts[-1],))
    if not stamps or stamps[-1] == 0:
        return parts[-1]
    return f"{parts[stamps[-1] - 1]}/{parts[-1]}"  # the container's name folder, then its own


def is_study(folder_name: str) -> bool:
    """A study's folder, as `autoencoder tune` names it: tune-<timestamp>."""
    return folder_name.startswith("tune-") and started(folder_name[5:]) is not None


def started(folder_name: str) -> str | None:
    """'20261203-101500[-k]' -> '2026-12-03 10:15:00'; None for a name that is not a time."""
    try:
        when = datetime.strptime(folder_name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return when.strftime("%Y-%m-%d %H:%M:%S")


def sort_rows(rows: list[dict], column: str, reverse: bool = False) -> list[dict]:
    """Rows by one column, the best first for PSNR and SSIM (largest) and for val_loss and sse
    (smallest), else smallest first; `reverse` turns it round; missing values always last."""
    by_path = sorted(rows, key=lambda r: r["path"])
    present = [r for r in by_path if r[column] is not None]
    missing = [r for r in by_path if r[column] is None]
    descending = (column in LARGEST_FIRST) != reverse
    return sorted(present, key=lambda r: r[column], reverse=descending) + missing


def format_runs(rows: list[dict], root: str | Path) -> str:
    """The text table of `autoencoder runs`, with a line per damaged run's reason below it."""
    if not rows:
        return f"no runs under {root}"
    cells = [list(COLUMNS)] + [row_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    numeric = [column in NUMERIC for column in COLUMNS]
    lines = [
        "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(line, widths, numeric))
        for line in cells
    ]
    notes = [f"damaged: {row['problem']}" for row in rows if row["problem"]]
    return "\n".join([line.rstrip() for line in lines] + notes)


def row_cells(row: dict) -> list[str]:
    epochs = "-" if row["epochs"] is None else f"{row['epochs']}/{row['epochs_configured']}"
    minutes = _minutes(row["minutes"])
    if row["minutes_configured"] is not None:  # a run of train.minutes: spent of its budget
        minutes += f"/{row['minutes_configured']:g}"
    values = {
        **row,
        "epochs": epochs,
        "minutes": minutes,
        "val_loss": _number(row["val_loss"], ".4g"),
        "psnr": _number(row["psnr"], ".2f"),
        "ssim": _number(row["ssim"], ".4f"),
        "sse": _number(row["sse"], ".2f"),
    }
    return [str(values[column]) if values[column] is not None else "-" for column in COLUMNS]


def _minutes(value: float | None) -> str:
    """Minutes to a tenth, a run of seconds to two digits (0.047, not 0.0)."""
    if value is None:
        return "-"
    return format(value, ".2g" if 0 < value < 0.1 else ".1f")


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def runs_json(rows: list[dict]) -> str:
    """The rows as a JSON list (null for a missing value)."""
    return json.dumps(rows, indent=2)
