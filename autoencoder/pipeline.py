"""One run from start to finish: train -> evaluate -> plot (what `autoencoder train` calls)."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from autoencoder import atomic, distribute, lock, memory, precision, runs
from autoencoder.config import Config, dump_config
from autoencoder.data import load_splits, resolve_input_shape
from autoencoder.errors import RunFailed, UserError
from autoencoder.evaluate import evaluate_split
from autoencoder.model import load_model
from autoencoder.plots import plot_evaluation
from autoencoder.runs import read_history, read_state, resume_command
from autoencoder.runtime import tensorflow
from autoencoder.shapes import plan_model, skip_note
from autoencoder.trainer import fit, run_precision

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """What one training left: its run directory, test metrics and the models, in memory."""

    run_dir: Path | None  # None on a worker of a cluster that is not its chief
    metrics: dict
    models: tuple | None  # (autoencoder, encoder, decoder); decoder None with skips
    splits: Any = None  # the data it trained and was evaluated on


def train_run(
    config: Config, resume: str | Path | None = None, command: str = "autoencoder train"
) -> tuple[Path | None, dict]:
    """train() for callers that need only (run directory, test metrics)."""
    trained = train(config, resume, command)
    return trained.run_dir, trained.metrics


def train(
    config: Config,
    resume: str | Path | None = None,
    command: str = "autoencoder train",
    splits=None,
    callbacks=(),
    chosen: precision.Choice | None = None,
) -> Trained:
    """Train, evaluate on the test split and draw the figures of one run.

    Args:
      config: the resolved config.
      resume: an earlier run directory to continue from its last completed epoch.
      command: what this process is, for the message a second writer of the run gets.
      splits: the config's data, when the caller has loaded it already (load_splits).
      callbacks: Keras callbacks for the fit, after the run's own (tune's pruning).
      chosen: a precision the caller chose (choose_precision), taken where it fits in memory:
        a study's, the same for every trial.
    Returns:
      The run directory, its test metrics (as in metrics.json) and the trained models; no
      directory and no models on a worker of a cluster that is not its chief.
    Raises:
      UserError: for an impossible model, data that cannot be used, a run that cannot be
        resumed or that another process is writing, before any directory is made or
        TensorFlow is imported.
    """
    with contextlib.ExitStack() as locks:
        return _train(config, resume, locks, command, splits, callbacks, chosen)


def choose_precision(config: Config, splits) -> precision.Choice:
    """The precision a run of this config would train in on one machine (auto may time it)."""
    config = resolve_input_shape(config)
    plan = plan_model(config.model)
    tensorflow()
    return run_precision(config, _fitting(config, plan, _held(config, splits)))


def _held(config: Config, splits) -> int:
    """Bytes of the images a run holds; streamed splits (read batch by batch) hold a batch's."""
    sizes = [getattr(splits.pixels(s), "nbytes", 0) for s in ("train", "val", "test")]
    return memory.held_data(*sizes, config.data.noise is not None)


def _fitting(config: Config, plan, held: int) -> list[str]:
    """The precision candidates whose memory plan fits this machine."""
    return [
        p
        for p in precision.CANDIDATES
        if memory.fits(config, memory.run_memory(config, plan, p, held))
    ]


# Keras's BatchNormalization moves its inference statistics 1% of the way a step (momentum
# 0.99): after n steps they still hold 0.99**n of their start (mean 0, variance 1), and a model
# evaluated with them is not the model that trained (a flat grey output, after a few steps).
SETTLED_STEPS = 200  # 0.99**200: 13% of the start left


def batch_norm_note(config: Config, images: int) -> str | None:
    """A warning for a model with batch norm that trains too few steps to settle its statistics."""
    model = config.model
    blocks = [*model.encoder, *(model.decoder if isinstance(model.decoder, list) else [])]
    if config.train.minutes is not None or not any(getattr(b, "batch_norm", False) for b in blocks):
        return None
    patches = config.data.patches
    samples = images * (patches.per_image if patches is not None else 1)
    steps = config.train.epochs * math.ceil(samples / config.train.batch_size)
    if steps >= SETTLED_STEPS:
        return None
    return (
        f"batch norm with {steps} training steps: its statistics for evaluation still hold "
        f"{0.99**steps:.0%} of their start (they move 1% a step), so test figures and metrics "
        f"can be far from training's (a flat grey output); train {SETTLED_STEPS} steps or more "
        f"(more epochs or a smaller train.batch_size), or leave batch_norm out"
    )


def _train(
    config: Config,
    resume,
    locks: contextlib.ExitStack,
    command: str,
    splits,
    callbacks=(),
    chosen: precision.Choice | None = None,
) -> Trained:
    me = distribute.role(config.train.distribute)  # a bad TF_CONFIG is refused here
    if resume is not None:
        runs.check_not_sweep(runs.check_is_run(resume))
        if me.chief:  # one writer: before anything of the run is read or written
            locks.enter_context(runs.writing(resume, command))
        # The run's own model and data first: a message about the run (its data where
        # data.path now says, when the images moved).
        saved = runs.load_run_config(resume)
        moved = saved.data.model_copy(update={"path": config.data.path})
        runs.check_run_shapes(resume, saved.model_copy(update={"data": moved}))
        # `output` says where new runs go; a resume writes where the run is (train CONFIG
        # --resume RUN_DIR with the config's own output, of a run made with --set output=).
        config = config.model_copy(update={"output": saved.output})
    config = resolve_input_shape(config)  # a left-out model.input_shape is the data's
    plan = plan_model(config.model)
    if plan.skips != "none" and config.data.noise is None:
        log.warning("%s", skip_note(plan, denoising=False))
    if resume is not None:
        run_dir = runs.check_resume(resume, config)
        state = read_state(run_dir)
    if splits is None:  # a folder's scan refuses bad files before anything is written
        splits = load_splits(config)
    changed = runs.changed_data_files(resume, splits) if resume is not None else None
    if changed:
        raise UserError(
            f"{resume}: the files under data.path are not those the run was trained on "
            f"({changed}), so its splits would mix: resuming would train on images it was "
            f"tested on; put back the files, or train a new run on this data"
        )
    held = _held(config, splits)
    few = batch_norm_note(config, splits.count("train"))
    if few and resume is None:
        log.warning("%s", few)
    # A plan too big at the lightest precision the run could get is refused before TensorFlow
    # loads; the precision it does get (a GPU's, or float32) is known only after.
    memory.check_lightest(config, plan, held)
    if resume is None and me.chief:  # not after TensorFlow and a precision timing
        runs.check_output(config)
    tensorflow()  # a missing TensorFlow is refused before anything is written
    # Before any other TensorFlow work: a multi-worker strategy must start first.
    strategy = distribute.strategy(config.train.distribute, config.train.worker_timeout)
    if strategy is not None:
        distribute.check_batch(
            config.train.batch_size, splits.count("train"), strategy.num_replicas_in_sync
        )
    # A resumed run keeps its first start's precision: its checkpoint was trained in it, and a
    # new timing (a cache miss, a busy machine) could pick the other.
    choice = precision.kept(runs.read_precision(resume)) if resume is not None else None
    if choice is None:
        fitting = _fitting(config, plan, held)
        if chosen is not None and chosen.policy in fitting:
            reason = f"{chosen.reason}; chosen once, for every trial of the study"
            choice = replace(chosen, how="given", reason=reason)
            log.info("precision: %s, chosen once, for every trial of the study", chosen.policy)
        else:
            # auto may time the candidates on this model (outside the strategy: one device, the
            # full batch), only those whose plan fits; a cluster's workers take the static rule.
            choice = run_precision(config, fitting, multi_worker=me.workers > 1)
    dtype = choice.policy
    memory.check_fits(config, plan, memory.run_memory(config, plan, dtype, held))  # and too big
    if not me.chief:
        return _train_as_worker(config, splits, resume, strategy, me, dtype)
    if resume is None:
        run_dir, state = runs.create_run_dir(config), None
        locks.enter_context(lock.hold(run_dir, command))
        runs.write_data_files(run_dir, splits)
    log.info("run directory: %s", run_dir)

    def record_start() -> None:
        # Once the checkpoint has loaded: a resume refused (a damaged checkpoint) leaves the
        # run's config.yaml as it was.
        if resume is not None:
            text = dump_config(config)
            path = run_dir / "config.yaml"
            runs.write_or_explain(run_dir, path, lambda tmp: Path(tmp).write_text(text))
        runs.write_precision(run_dir, asdict(choice))  # before the first epoch: for every resume

    try:
        models = fit(
            config,
            run_dir,
            splits,
            state,
            strategy,
            dtype=dtype,
            extra_callbacks=callbacks,
            on_restored=record_start,
        )
        if me.workers > 1:
            # Predicting with the cluster's model would wait for the other workers; the saved
            # models are the same functions, used here alone.
            models = tuple(_load_saved(run_dir, name) for name in ("model", "encoder", "decoder"))
        metrics = finish_run(run_dir, config, models[0], splits, choice.record())
    except KeyboardInterrupt:
        # Ctrl-C at any moment: every write is atomic and the checkpoint block finishes first,
        # so the run on disk is the last completed epoch, ready to resume.
        raise KeyboardInterrupt(
            f"after {_epochs_done(run_dir)} completed epoch(s); the run is kept: resume with "
            f"`{resume_command(run_dir)}`"
        ) from None
    except UserError:
        raise
    except Exception as exc:
        if me.workers > 1 and distribute.lost_worker(exc):
            raise _lost(exc, run_dir, _epochs_done(run_dir)) from exc
        raise _kept(run_dir, exc) from exc
    return Trained(run_dir, metrics, models, splits)


def _load_saved(run_dir: Path, name: str):
    path = run_dir / f"{name}.keras"
    return load_model(path) if path.is_file() else None


def _train_as_worker(config: Config, splits, resume, strategy, me, dtype) -> Trained:
    """A worker that is not the chief: trains its share, writes its record to a scratch dir."""
    state = read_state(resume) if resume is not None else None
    _clear_dead_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH))
    (scratch / "checkpoints").mkdir()
    log.info("worker %d of %d: the chief writes the run directory", me.index, me.workers)
    try:
        lock.acquire(scratch, "autoencoder worker")
        fit(config, scratch, splits, state, strategy, restore_dir=resume, chief=False, dtype=dtype)
    except UserError:
        raise
    except Exception as exc:
        if distribute.lost_worker(exc):
            raise _lost(exc, resume, state["epoch"] if state else 0) from exc
        what = (str(exc).strip().splitlines() or [""])[0]
        raise RunFailed(
            f"worker {me.index}: training failed with {type(exc).__name__}"
            f"{': ' + what if what else ''} (a bug: please report it; --debug shows the "
            f"traceback); the chief's run directory is kept"
        ) from exc
    finally:
        lock.release(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    return Trained(None, {}, None)


SCRATCH = "autoencoder-worker-"


def _clear_dead_scratch() -> None:
    """Remove the scratch folders of workers that were killed (SIGKILL, out of memory)."""
    # A live worker holds its folder's lock; the kernel releases it when the process dies. The
    # age spares a folder whose worker is between making it and taking its lock.
    for old in Path(tempfile.gettempdir()).glob(SCRATCH + "*"):
        try:
            stale = time.time() - old.stat().st_mtime > 60 and lock.holder(old) is None
        except OSError:
            continue  # another user's, or gone meanwhile
        if stale:
            shutil.rmtree(old, ignore_errors=True)


def _lost(exc: Exception, run_dir: Path | None, epoch: int) -> RunFailed:
    """One line for a cluster that lost a worker: which one, and how to restart."""
    text = str(exc)
    # TensorFlow's coordination service names the tasks that stopped sending heartbeats.
    found = re.search(r"unhealthy.*?task:(\d+)", text, re.S)
    if found:
        what = f"worker {found.group(1)} stopped sending heartbeats"
    elif re.search(r"recvmsg|Connection reset|Socket closed|Connection refused", text):
        what = "its connection broke"  # the socket failed before a heartbeat was missed
    else:
        what = f"{type(exc).__name__}: {(text.strip().splitlines() or [''])[0][:160]}"
    where = f"`autoencoder resume {run_dir}`" if run_dir else "the chief's `autoencoder resume`"
    return RunFailed(
        f"lost contact with another worker ({what}); the run is kept at epoch {epoch}: restart "
        f"every worker with {where}"
    )


def _epochs_done(run_dir: Path) -> int:
    try:
        return (read_state(run_dir) or {}).get("epoch", 0)
    except UserError:
        return 0


def _kept(run_dir: Path, exc: Exception) -> RunFailed:
    """Write the traceback to RUN_DIR/error.log; the one-line RunFailed that points to it."""
    log_path = run_dir / "error.log"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        atomic.write_text(log_path, text)
        where = f"the traceback is in {log_path}"
    except OSError:
        where = "the traceback could not be written (rerun with --debug to see it)"
    what = (str(exc).strip().splitlines() or [""])[0]
    return RunFailed(
        f"training failed with {type(exc).__name__}{': ' + what if what else ''} (a bug: please "
        f"report it); {where}; the run is kept at epoch {_epochs_done(run_dir)}: resume with "
        f"`{resume_command(run_dir)}`"
    )


def resume_run(run_dir: str | Path, overrides: list[str] = ()) -> tuple[Path, dict]:
    """resume() for callers that need only (run directory, test metrics)."""
    trained = resume(run_dir, overrides)
    return trained.run_dir, trained.metrics


def resume(run_dir: str | Path, overrides: list[str] = (), command="autoencoder resume") -> Trained:
    """Continue a run with its own saved config (overrides such as train.epochs=N applied)."""
    config = runs.load_run_config(run_dir, overrides)
    return train(config, resume=run_dir, command=command)


def finish_run(run_dir: Path, config: Config, model, splits, record: dict | None = None) -> dict:
    """Evaluate a trained model on the test split, write metrics.json and the figures.

    `record`: more keys for metrics.json (how the precision was chosen: precision.Choice).
    """
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
    metrics.update(record or {})
    atomic.write_json(run_dir / "metrics.json", metrics)
    plot_evaluation(run_dir, evaluation, history, splits.class_names, model, config)
    return metrics
