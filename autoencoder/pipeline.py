"""One run from start to finish: train -> evaluate -> plot (what `autoencoder train` calls)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from autoencoder import atomic, runs
from autoencoder.config import Config, dump_config
from autoencoder.data import load_splits, resolve_input_shape
from autoencoder.evaluate import evaluate_split
from autoencoder.plots import plot_evaluation
from autoencoder.runtime import tensorflow
from autoencoder.shapes import plan_model
from autoencoder.train import fit, read_history, read_state, resume_command

log = logging.getLogger(__name__)


def train_run(config: Config, resume: str | Path | None = None) -> tuple[Path, dict]:
    """Train, evaluate on the test split and draw the figures of one run.

    Args:
      config: the resolved config.
      resume: an earlier run directory to continue from its last completed epoch.
    Returns:
      (run directory, test metrics as written to its metrics.json).
    Raises:
      UserError: for an impossible model, data that cannot be used or a run that cannot be
        resumed, before any directory is made or TensorFlow is imported.
    """
    config = resolve_input_shape(config)  # a left-out model.input_shape is the data's
    plan_model(config.model)
    if resume is not None:
        run_dir = runs.check_resume(resume, config)
        state = read_state(run_dir)
    splits = load_splits(config)  # a folder's scan refuses bad files before anything is written
    tensorflow()  # a missing TensorFlow is refused before anything is written
    if resume is not None:
        atomic.write_text(run_dir / "config.yaml", dump_config(config))
    else:
        run_dir, state = runs.create_run_dir(config), None
    log.info("run directory: %s", run_dir)
    try:
        model, _, _ = fit(config, run_dir, splits, state)
        metrics = finish_run(run_dir, config, model, splits)
    except KeyboardInterrupt:
        # Ctrl-C at any moment: every write is atomic and the checkpoint block finishes first,
        # so the run on disk is the last completed epoch, ready to resume.
        done = (read_state(run_dir) or {}).get("epoch", 0)
        raise KeyboardInterrupt(
            f"after {done} completed epoch(s); the run is kept: resume with "
            f"`{resume_command(run_dir)}`"
        ) from None
    return run_dir, metrics


def resume_run(run_dir: str | Path, overrides: list[str] = ()) -> tuple[Path, dict]:
    """Continue a run with its own saved config (overrides such as train.epochs=N applied)."""
    config = runs.load_run_config(run_dir, overrides)
    return train_run(config, resume=run_dir)


def finish_run(run_dir: Path, config: Config, model, splits) -> dict:
    """Evaluate a trained model on the test split, write metrics.json and the figures."""
    # Chunk by chunk: a streamed test split is never all in memory.
    evaluation = evaluate_split(config, model, splits, "test")
    metrics = evaluation.metrics
    history = read_history(run_dir)
    if history:
        best = min(history, key=lambda r: r.get("val/loss", math.inf))
        metrics.update(
            {
                "best/epoch": best["epoch"],
                "best/val_loss": best.get("val/loss"),
                "epochs_run": len(history),
            }
        )
    atomic.write_json(run_dir / "metrics.json", metrics)
    plot_evaluation(run_dir, evaluation, history, splits.class_names)
    return metrics
