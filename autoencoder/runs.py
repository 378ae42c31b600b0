"""Run directories: create without overwriting, find, check for resume, and load_run()."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoencoder import atomic, lock
from autoencoder.config import Config, dump_config, load_config
from autoencoder.data import data_shape, from_tiles, load_splits, scaled, to_tiles
from autoencoder.errors import UserError
from autoencoder.model import load_model, saved_input_shape
from autoencoder.noise import model_inputs
from autoencoder.train import last_checkpoint, read_state

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
        atomic.write_text(run_dir / "config.yaml", dump_config(config))
    except OSError as exc:
        raise UserError(
            f"output: cannot write in {parent}: {exc.strerror or exc}; free disk "
            f"space or set output: to a writable directory (e.g. --set "
            f"output=/tmp/runs)"
        ) from None
    return run_dir


def check_is_run(run_dir: str | Path) -> Path:
    """run_dir as a Path; UserError if it holds no config.yaml."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(
            f"{run_dir}: not a run directory (no config.yaml); pass a directory "
            f"made by `autoencoder train`, e.g. outputs/<name>/<timestamp>"
        )
    return run_dir


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
    config = load_run_config(run_dir, overrides)
    check_run_shapes(run_dir, config, data)
    return config


def check_run_shapes(run_dir: str | Path, config: Config, data: bool = True) -> None:
    """Refuse a run whose model file or data no longer has the shape it was trained for."""
    run_dir = Path(run_dir)
    planned = tuple(config.model.input_shape)
    name = "x".join(map(str, planned))
    for path in (run_dir / "model.keras", _last_checkpoint(run_dir)):
        saved = saved_input_shape(path) if path is not None and path.is_file() else None
        if saved is not None and saved != planned:
            raise UserError(
                f"{path}: takes {'x'.join(map(str, saved))} inputs but the run's config.yaml "
                f"plans {name}; the file is not this run's: put back its own {path.name}, or "
                f"its own config.yaml"
            )
    if not data:
        return
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
    if state is not None:
        last_checkpoint(run_dir, state)
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


@dataclass
class Run:
    """A finished run opened again: its config, model and data, and one split reconstructed."""

    run_dir: Path
    config: Config
    model: Any
    splits: Any
    split: str
    images: np.ndarray  # the split's clean images, float32 in [0, 1]
    recon: np.ndarray  # the model's reconstructions of them (of their noisy form for a denoiser)


def predict_images(model, x: np.ndarray, patches=None) -> np.ndarray:
    """The model's output for whole images; a patch model's is put together from tiles."""
    if patches is None:
        return model.predict(x, batch_size=512, verbose=0)
    tiles = model.predict(to_tiles(x, patches.size), batch_size=512, verbose=0)
    return from_tiles(tiles, x.shape, patches.size)


def reconstruct(config: Config, model, splits, split: str = "test"):
    """(clean float32 images of `split`, the model's reconstructions), converting once."""
    images = splits.images(split)
    # A denoiser is scored on fixed noisy inputs: the test seed, or the one it validated with.
    inputs = model_inputs(images, config, seed_offset=0 if split == "test" else 1)
    return images, predict_images(model, inputs, splits.patches)


def reconstruct_chunks(config: Config, model, splits, split: str = "test"):
    """(first index, clean images, model inputs, reconstructions) of `split`, chunk by chunk."""
    # The same numbers as reconstruct(), with only a chunk of the split in memory at a time.
    offset = 0 if split == "test" else 1
    for start, pixels in splits.chunks(split):
        images = scaled(pixels)
        inputs = model_inputs(images, config, seed_offset=offset, first=start)
        yield start, images, inputs, predict_images(model, inputs, splits.patches)


def load_run(run_dir: str | Path, split: str = "test") -> Run:
    """Open a finished run: config, model (safe_mode), splits and the reconstructions of split."""
    run_dir = Path(run_dir)
    config = open_run(run_dir)
    model = load_model(run_dir / "model.keras")
    splits = load_splits(config)
    images, recon = reconstruct(config, model, splits, split)
    return Run(run_dir, config, model, splits, split, images, recon)
