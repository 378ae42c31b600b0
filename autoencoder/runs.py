"""Run directories and their record: create without overwriting, lock, read, find, resume.

A run's record is its config.yaml, history.csv (one row per completed epoch), metrics.json,
checkpoints/state.json (the last completed epoch and the files that hold it; written last, so it
is the commit) and checkpoints/precision.json (the precision it trains in, kept by resumes).
trainer.py writes the record through the functions here; everything that reads a run reads it
here too.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from autoencoder import atomic, lock
from autoencoder.config import Config, dump_config, load_config
from autoencoder.data import data_shape, from_tiles, predict_batches, scaled, to_tiles
from autoencoder.errors import UserError, named
from autoencoder.model import saved_input_shape, saved_parameter_count
from autoencoder.noise import model_inputs
from autoencoder.shapes import plan_model

log = logging.getLogger(__name__)

# Keys that may change between a run and its resume: more epochs or minutes extend a run.
# data.path too: the images moved (their files are checked against the run's, data_files.json);
# train.worker_timeout says how long a cluster's workers wait, nothing of what they learn.
RESUMABLE_CHANGES = {"train.epochs", "train.minutes", "train.worker_timeout", "data.path"}
STATE = "checkpoints/state.json"
DATA_FILES = "data_files.json"  # a folder's files by split, as the run was trained
PRECISION = "checkpoints/precision.json"  # precision.Choice as a dict, from the run's first start
PREDICT_CHUNK = 8192  # images per predict pipeline: bounds the copy it holds
BEST = "best.weights.h5"  # a copy of the best epoch's weights, kept in step by RunRecorder


def resume_command(run_dir: Path) -> str:
    """The command line that continues a run."""
    return f"autoencoder resume {run_dir}"


# ---------------------------------------------------------------------------------------------
# The record of a run's epochs


def write_or_explain(run_dir: Path, path: Path, writer) -> None:
    """atomic.write_with, with a failed write (disk full, ...) as one line that says what to do."""
    try:
        atomic.write_with(path, writer)
    except OSError as exc:
        done = (read_state(run_dir) or {}).get("epoch", 0)
        raise UserError(
            f"{path}: cannot write: {exc.strerror or exc}; the run is kept at epoch "
            f"{done}: free disk space and resume with `{resume_command(run_dir)}`"
        ) from None


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
    """history.csv as a list of rows with float values (epoch as int); UserError, naming the
    line, for a damaged one."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    raw = path.read_bytes()
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(history_damaged(run_dir, line, "not UTF-8 text")) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is not None and "epoch" not in reader.fieldnames:
        raise UserError(history_damaged(run_dir, 1, "the header names no epoch column"))
    rows = []
    for row in reader:
        rows.append(_history_row(run_dir, reader, row, len(rows) + 1))
    return rows


def _history_row(run_dir: Path, reader: csv.DictReader, row: dict, epoch: int) -> dict:
    """One row of history.csv as numbers; UserError for a row cut short, too long or not numbers."""
    # csv gives a short row's missing columns None, and a long row's extra fields under None.
    extra, missing = row.pop(None, None) or [], [k for k, v in row.items() if v is None]
    if extra or missing:
        fields = len(row) - len(missing) + len(extra)
        why = f"{fields} fields where the header names {len(row)}"
        raise UserError(history_damaged(run_dir, reader.line_num, why))
    values = {}
    for key, value in row.items():
        if value == "":  # a column added after this row was written (seconds, in old runs)
            continue
        try:
            values[key] = int(value) if key == "epoch" else float(value)
        except ValueError:
            why = f"{key} is {value!r}, not a number"
            raise UserError(history_damaged(run_dir, reader.line_num, why)) from None
    if values.get("epoch") != epoch:
        # One row per completed epoch, in order: resume and the figures count on it.
        why = f"epoch {row['epoch'] or 'missing'} where epoch {epoch} belongs"
        raise UserError(history_damaged(run_dir, reader.line_num, why))
    return values


def history_damaged(run_dir: Path, line: int, why: str) -> str:
    """The line for a damaged history.csv: which line, why, and how to repair the run."""
    return (
        f"{Path(run_dir) / 'history.csv'}: line {line} is damaged ({why}); the run's epochs "
        f"cannot be read: put back history.csv from a copy of the run, or train a new run"
    )


def training_seconds(history: list[dict]) -> float:
    """The epochs' seconds (validation included), as train.minutes counts them; a row without
    `seconds` (a run from before they were recorded) counts none."""
    return sum(row.get("seconds", 0.0) for row in history)


def training_clock(history: list[dict]) -> np.ndarray:
    """Seconds of training at the end of each epoch; NaN from a row without `seconds` on, so a
    curve against time stops there rather than shifting."""
    return np.cumsum([row.get("seconds", np.nan) for row in history])


def last_checkpoint(run_dir: Path, state: dict) -> Path:
    """The checkpoint state.json names; UserError, saying the run is damaged, if it is gone."""
    path = Path(run_dir) / "checkpoints" / state["checkpoint"]
    if not path.is_file():
        raise UserError(
            f"{Path(run_dir) / STATE}: names checkpoint {state['checkpoint']}, which is missing: "
            f"the run is damaged (a file of it was moved or deleted) and cannot be resumed; put "
            f"the file back, or start a new run"
        )
    return path


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


def write_precision(run_dir: Path, choice: dict) -> None:
    """Record the precision a run trains in (a precision.Choice as a dict), for its resumes."""
    text = json.dumps(choice, indent=2) + "\n"
    write_or_explain(run_dir, Path(run_dir) / PRECISION, lambda tmp: Path(tmp).write_text(text))


def write_data_files(run_dir: Path, splits) -> None:
    """Record which files of a folder each split held (counts and a digest of their names)."""
    files = splits.report.get("files")
    if files is not None:
        text = json.dumps(files, indent=2) + "\n"
        write_or_explain(run_dir, Path(run_dir) / DATA_FILES, lambda t: Path(t).write_text(text))


def changed_data_files(run_dir: Path, splits) -> str | None:
    """How a folder's splits differ from the files the run was trained on; None if alike.

    None too for data that is not a folder, and for runs made before the files were recorded.
    """
    now, path = splits.report.get("files"), Path(run_dir) / DATA_FILES
    if now is None or not path.is_file():
        return None
    then = json.loads(path.read_text())
    changed = [
        f"{split}: {then[split]['files']:,} files then, {now[split]['files']:,} now"
        + ("" if then[split]["files"] != now[split]["files"] else ", other names")
        for split in now
        if split in then and then[split] != now[split]
    ]
    return "; ".join(changed) or None


def warn_changed_data_files(run_dir: Path, splits) -> None:
    """Say so when a run is evaluated on a folder whose files changed since it was trained."""
    changed = changed_data_files(run_dir, splits)
    if changed:
        log.warning(
            "%s: the files under data.path are not those the run was trained on (%s): the "
            "figures are of the splits as they are now, which may hold images it trained on",
            *(run_dir, changed),
        )


def read_precision(run_dir: Path) -> dict | None:
    """The precision a run's first start recorded; None for a run made before it was recorded."""
    try:
        saved = json.loads((Path(run_dir) / PRECISION).read_text())
    except (OSError, ValueError):  # missing, or damaged: the run chooses again, as before
        return None
    return saved if isinstance(saved, dict) else None


def check_output(config: Config) -> None:
    """Refuse an output folder that could not be made, without making it: a file in its way, or
    a folder that is not writable (create_run_dir says what else the system refuses)."""
    parent = Path(config.output) / config.name
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(
            f"output: cannot create {parent}: Not a directory; set output: to a writable "
            f"directory (e.g. {_example_output()})"
        )
    if existing.is_dir() and not os.access(existing, os.W_OK):
        raise UserError(
            f"output: {existing} is not writable; set output: to a writable directory "
            f"(e.g. {_example_output()})"
        )


def create_run_dir(config: Config) -> Path:
    """Make <output>/<name>/<YYYYmmdd-HHMMSS>[-k]/ and its subfolders; never reuse one."""
    parent = Path(config.output) / config.name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"output: cannot create {parent}: {exc.strerror}; set output: to a "
            f"writable directory (e.g. {_example_output()})"
        ) from None
    if not os.access(parent, os.W_OK):
        raise UserError(
            f"output: {parent} is not writable; set output: to a writable directory "
            f"(e.g. {_example_output()})"
        )
    try:
        run_dir = stamped_dir(parent, "output:")
        for sub in ("checkpoints", "figures"):
            (run_dir / sub).mkdir()
        atomic.write_text(run_dir / "config.yaml", dump_config(config))
    except OSError as exc:
        raise UserError(
            f"output: cannot write in {parent}: {exc.strerror or exc}; free disk "
            f"space or set output: to a writable directory (e.g. {_example_output()})"
        ) from None
    return run_dir


def _lister(folder: Path) -> str:
    return named(f"autoencoder runs {folder}", f"ae.list_runs('{folder}')")


def _example_output() -> str:
    return named("--set output=/tmp/runs", "output='/tmp/runs'")


def stamped_dir(parent: Path, setting: str, what: str = "runs") -> Path:
    """Make and return parent/<YYYYmmdd-HHMMSS>[-k]/, a name no other caller gets."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        folder = parent / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            folder.mkdir()  # atomic: exactly one caller gets a name, none reuses one
        except FileExistsError:
            continue
        return folder
    raise UserError(
        f"{setting} {parent} already holds {what} {stamp} to {stamp}-999; "
        f"wait a second or set {setting} to another directory"
    )


def check_is_run(run_dir: str | Path) -> Path:
    """run_dir as a Path; UserError if it holds no config.yaml."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(
            f"{run_dir}: no such folder; pass a run directory, e.g. outputs/<name>/<timestamp>"
        )
    if run_dir.is_file():
        train = (
            f"`{named(f'autoencoder train {run_dir}', f'ae.train({str(run_dir)!r})')}` starts a "
            f"run from it; "
            if run_dir.suffix.lower() in (".yaml", ".yml")
            else ""
        )
        raise UserError(
            f"{run_dir}: a file, not a run directory; {train}pass the folder a run was written "
            f"to, e.g. outputs/<name>/<timestamp> (`{named('autoencoder runs', 'ae.list_runs()')}`"
            f" lists them)"
        )
    if not (run_dir / "config.yaml").is_file():
        # outputs/<name>/ or outputs/ given for one of its runs: two levels, not a whole tree.
        inside = sorted(
            p.parent for p in [*run_dir.glob("*/config.yaml"), *run_dir.glob("*/*/config.yaml")]
        )
        if inside:
            raise UserError(
                f"{run_dir}: a folder of {len(inside)} run(s), not a run directory; pass one of"
                f" them, e.g. {inside[-1]} (`{_lister(run_dir)}` lists them)"
            )
        raise UserError(
            f"{run_dir}: not a run directory (no config.yaml); pass a directory "
            f"made by `autoencoder train`, e.g. outputs/<name>/<timestamp>"
        )
    return run_dir


def is_sweep(folder: str | Path) -> bool:
    """A denoising sweep's folder: a config.yaml, its models under models/, no checkpoints/."""
    folder = Path(folder)
    return (
        (folder / "config.yaml").is_file()
        and not (folder / "checkpoints").exists()
        and not is_anomaly_benchmark(folder)
        and ((folder / "models").is_dir() or (folder / "results.csv").is_file())
    )


def is_anomaly_benchmark(folder: str | Path) -> bool:
    """An anomaly benchmark's folder: a config.yaml and one run per class under runs/."""
    folder = Path(folder)
    return (folder / "config.yaml").is_file() and (folder / "runs").is_dir()


def check_not_sweep(run_dir: str | Path) -> None:
    """Refuse a denoising sweep's or an anomaly benchmark's folder where one run is wanted,
    naming one of its runs."""
    if is_anomaly_benchmark(run_dir):
        raise UserError(
            f"{run_dir}: an anomaly benchmark's folder, not a run; pass one of its runs (e.g. "
            f"{_first_run(run_dir, 'runs', 'class-K')}); its table is in "
            f"{Path(run_dir) / 'results.md'}"
        )
    if is_sweep(run_dir):
        raise UserError(
            f"{run_dir}: a denoising sweep, not a run; pass one of its models (e.g. "
            f"{_first_run(run_dir, 'models', 'level-L')}), or go on with the sweep: "
            + named(
                f"autoencoder denoise CONFIG --resume {run_dir}",
                f"ae.denoise_sweep(CONFIG, resume='{run_dir}')",
            )
        )


def _first_run(folder: str | Path, inside: str, placeholder: str) -> Path:
    """The first run under folder/inside/*/ (for a message), or the shape of one."""
    found = sorted(Path(folder).glob(f"{inside}/*/*/config.yaml"))
    return found[0].parent if found else Path(folder) / inside / placeholder / "TIME"


def writing(run_dir: str | Path, command: str):
    """Hold a run's lock (lock.hold) once it is seen to be a run: no .lock left in other folders."""
    return lock.hold(check_is_run(run_dir), command)


def load_run_config(run_dir: str | Path, overrides: list[str] = ()) -> Config:
    """The resolved config saved in a run directory, with `--set` overrides applied."""
    return load_config(check_is_run(run_dir) / "config.yaml", overrides)


def open_run(run_dir: str | Path, overrides: list[str] = (), data: bool = True) -> Config:
    """A run's config, once its model file and (with `data`) its data are seen to fit it.

    Args:
      run_dir: a directory written by `autoencoder train`.
      overrides: `--set` overrides applied to its config.yaml.
      data: also check the images its data source gives now (evaluate, plot, resume, embed).
    Raises:
      UserError: not a run, or a model file or data whose shape differs from the run's, before
        TensorFlow is imported.
    """
    check_not_sweep(check_is_run(run_dir))
    config = load_run_config(run_dir, overrides)
    check_run_shapes(run_dir, config, data)
    return config


def check_run_shapes(run_dir: str | Path, config: Config, data: bool = True) -> None:
    """Refuse a run whose model file or data no longer has the shape it was trained for."""
    run_dir = Path(run_dir)
    planned = tuple(config.model.input_shape)
    name = "x".join(map(str, planned))
    for path in (run_dir / "model.keras", _last_checkpoint(run_dir)):
        if path is None or not path.is_file():
            continue
        saved = saved_input_shape(path)
        if saved is not None and saved != planned:
            raise UserError(
                f"{path}: takes {'x'.join(map(str, saved))} inputs but the run's config.yaml "
                f"plans {name}; the file is not this run's: put back its own {path.name}, or "
                f"its own config.yaml"
            )
        # Of the same input size, another run's model (or config) would still score or resume
        # as if it were this one's: the number of parameters tells them apart.
        held = saved_parameter_count(path)
        if held is not None and held != (total := plan_model(config.model).total_params):
            raise UserError(
                f"{path}: holds {held:,} parameters but the run's config.yaml plans a model of "
                f"{total:,}; the file is not this run's: put back its own {path.name}, or its "
                f"own config.yaml"
            )
    if not data:
        return
    where = Path(config.data.path).expanduser() if config.data.path else None
    if config.data.dataset == "folder" and where is not None and not where.exists():
        raise UserError(
            f"{run_dir}: its images are no longer in {where} (data.path); if they moved, give "
            f"data.path their new folder in {run_dir / 'config.yaml'}, or resume with "
            + named("--set data.path=NEW_FOLDER", "overrides={'data.path': NEW_FOLDER}")
        )
    given = data_shape(config)
    if given != planned:
        source = config.data.path if config.data.dataset == "folder" else config.data.dataset
        what = "patches" if config.data.patches is not None else "images"
        raise UserError(
            f"{run_dir}: the run's model takes {name} {what} but its data ({source}) now gives "
            f"{'x'.join(map(str, given))}; put back the data it was trained on, or train a new "
            f"run on this data (autoencoder train)"
        )


def _last_checkpoint(run_dir: Path) -> Path | None:
    try:
        state = read_state(run_dir)
    except UserError:  # a damaged state: check_resume says so where it matters
        return None
    return run_dir / "checkpoints" / state["checkpoint"] if state else None


def _resume_with(run_dir: Path, epochs: object) -> str:
    """The command, or the API call, that resumes a run with more epochs."""
    return named(
        f"autoencoder resume {run_dir} --set train.epochs={epochs}",
        f"ae.resume('{run_dir}', epochs={epochs})",
    )


def check_resume(run_dir: str | Path, config: Config) -> Path:
    """Refuse to resume a directory that is not a run or whose config differs."""
    run_dir = Path(run_dir)
    shown = changed_keys(load_run_config(run_dir), config, RESUMABLE_CHANGES)
    if shown:
        raise UserError(
            f"{run_dir}: cannot resume: the config differs from the run's in {shown}; only"
            f" train.epochs, train.minutes, train.worker_timeout and data.path (images moved) may"
            f" change (`{_resume_with(run_dir, 'N')}`); train a new run for other changes"
        )
    # Checked here too, so that `train --resume` refuses a damaged run before TensorFlow loads.
    check_checkpoints(run_dir)
    state = read_state(run_dir)
    if state is not None:
        last_checkpoint(run_dir, state)
    check_history(run_dir, state, read_history(run_dir))
    if state is not None and config.train.epochs < state["epoch"]:
        # Fewer epochs would rewrite config.yaml to disagree with the history it keeps.
        raise UserError(
            f"{run_dir}: cannot resume with train.epochs={config.train.epochs}: the run has "
            f"trained {state['epoch']} epochs; give {state['epoch']} to evaluate it again or "
            f"more to train on (`{_resume_with(run_dir, state['epoch'] + 1)}`)"
        )
    return run_dir


def check_checkpoints(run_dir: Path) -> None:
    """Refuse a run whose checkpoints/ folder is gone: nothing is left to resume from."""
    run_dir = Path(run_dir)
    if (run_dir / "checkpoints").is_dir():
        return
    model = run_dir / "model.keras"
    serves = f"its {model} still serves evaluate, predict and export; " if model.is_file() else ""
    raise UserError(
        f"{run_dir / 'checkpoints'}: missing, so the run cannot be resumed; {serves}train a new "
        f"run to go on"
    )


def check_history(run_dir: Path, state: dict | None, history: list[dict]) -> None:
    """Refuse a history.csv with fewer epochs than state.json says the run has completed."""
    # More rows than the state's epoch is a run stopped between the two writes (state.json is
    # the commit): the extra row is dropped by the next epoch. Fewer is no run's own record.
    done = state["epoch"] if state else 0
    if len(history) < done:
        raise UserError(
            f"{Path(run_dir) / 'history.csv'}: holds {len(history)} epoch(s), but "
            f"{Path(run_dir) / STATE} says the run has completed {done}: one of the two is not "
            f"this run's; put back the run's own files from a copy, or train a new run"
        )


def checked_history(run_dir: Path) -> list[dict]:
    """read_history, refused by check_history when state.json counts more completed epochs."""
    history = read_history(run_dir)
    try:
        state = read_state(run_dir)
    except UserError:
        state = None  # a damaged state.json stops a resume (it says so), not a figure
    check_history(run_dir, state, history)
    return history


def changed_keys(saved: Config, config: Config, allowed: set[str]) -> str | None:
    """The keys (the first six) in which config differs from saved beyond `allowed`, or None."""
    diff = config_diff(saved, config) - allowed
    if not diff:
        return None
    return ", ".join(sorted(diff)[:6]) + (" ..." if len(diff) > 6 else "")


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


def predict_images(model, x: np.ndarray, patches=None, batch_size: int = 512) -> np.ndarray:
    """The model's output for whole images, clipped to [0, 1]; a patch model's is put together
    from tiles.

    Clipped here, where outputs become images to score or show: a linear or residual head can
    reach past [0, 1], and an image cannot (training's loss sees the raw output).
    """
    if patches is None:
        return np.clip(predict(model, x, batch_size), 0.0, 1.0)
    tiles = predict(model, to_tiles(x, patches.size), batch_size)
    return np.clip(from_tiles(tiles, x.shape, patches.size), 0.0, 1.0)


def predict(model, x: np.ndarray, batch_size: int = 512):
    """model.predict on x in batches (a list for several outputs), through an untuned pipeline."""
    # A chunk at a time: the pipeline holds a copy of what it is given, not of all of x.
    step = max(batch_size, PREDICT_CHUNK)
    parts = [
        model.predict(predict_batches(x[i : i + step], batch_size), verbose=0)
        for i in range(0, max(len(x), 1), step)
    ]
    if isinstance(parts[0], (list, tuple)):
        return [np.concatenate(outputs) for outputs in zip(*parts)]
    return np.concatenate(parts)


def reconstruct_chunks(config: Config, model, splits, split: str = "test"):
    """(first index, clean images, model inputs, reconstructions) of `split`, chunk by chunk."""
    offset = 0 if split == "test" else 1
    for start, pixels in splits.chunks(split):
        images = scaled(pixels)
        inputs = model_inputs(images, config, seed_offset=offset, first=start)
        yield start, images, inputs, predict_images(model, inputs, splits.patches)


def read_metrics(run_dir: str | Path) -> dict:
    """metrics.json as a dict ({} before the run's first evaluation)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return {}
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        metrics = exc
    if not isinstance(metrics, dict):
        raise UserError(
            f"{path}: damaged (not a JSON object); `autoencoder evaluate {run_dir}` writes the "
            f"run's test metrics again"
        )
    return metrics


def merge_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Add (or replace) keys of metrics.json, keeping the others: evaluate, embed and anomaly."""
    try:
        merged = read_metrics(run_dir)
    except UserError as exc:
        log.warning("%s; it is written anew with these results only", str(exc).split(";")[0])
        merged = {}
    merged.update(metrics)
    atomic.write_json(Path(run_dir) / "metrics.json", merged)


def status(run_dir: str | Path) -> str:
    """ "in use", "finished" (model.keras written), "failed" (error.log), or "unfinished"."""
    run_dir = Path(run_dir)
    if lock.holder(run_dir) is not None:
        return "in use"
    if (run_dir / "model.keras").is_file():
        return "finished"
    return "failed" if (run_dir / "error.log").is_file() else "unfinished"


def find_runs(parent: str | Path) -> list[Path]:
    """The run directories directly under parent (outputs/<name>/), oldest first."""
    return sorted(p.parent for p in Path(parent).glob("*/config.yaml"))


def is_run(folder: str | Path) -> bool:
    """A training run's directory: a config.yaml and its own checkpoints/ (or, deleted, its
    model.keras).

    Sweeps and benchmarks drop checkpoints/ from their own folder (their models are runs inside
    it); a timing bench's folder keeps it but holds bench.json and no training of its own.
    """
    folder = Path(folder)
    if not (folder / "config.yaml").is_file() or (folder / "bench.json").is_file():
        return False
    # A run whose checkpoints/ was deleted is still one (listed as damaged): its model.keras
    # tells it from a sweep's or a benchmark's folder.
    return (folder / "checkpoints").is_dir() or (
        (folder / "model.keras").is_file()
        and not is_sweep(folder)
        and not is_anomaly_benchmark(folder)
    )
