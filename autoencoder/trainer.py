"""Fit a model into a run directory: compile, callbacks, and the record of its epochs.

The record (runs.py) is what makes a run resumable: history.csv, checkpoints/ and
checkpoints/state.json, each written atomically by RunRecorder (callbacks.py) after every epoch;
state.json is written last and names the files of the last completed epoch. Importing this
module does not import TensorFlow: the callbacks, Keras classes, are imported inside `fit`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from autoencoder import precision
from autoencoder.config import Config
from autoencoder.errors import UserError, named
from autoencoder.model import build_models, load_model
from autoencoder.noise import model_inputs, run_datasets
from autoencoder.runs import BEST, last_checkpoint, training_seconds, write_or_explain
from autoencoder.runtime import seed_everything, tensorflow

log = logging.getLogger(__name__)

IMAGES_PER_EPOCH = 8  # test images (and VAE samples) shown in TensorBoard after each epoch
# training_rate: untimed steps (the first traces the step function), then timed steps until
# both floors are passed or the ceiling is reached; the median step is robust to a busy machine.
WARMUP_STEPS = 2
TIMED_STEPS = (3, 30)
TIMED_SECONDS = 1.0


def fit(
    config: Config,
    run_dir: Path,
    splits,
    state: dict | None = None,
    strategy=None,
    restore_dir: Path | None = None,
    chief: bool = True,
    *,
    dtype: str,
    extra_callbacks=(),
    on_restored=lambda: None,
):
    """Train the config's model into run_dir, from its last completed epoch when state is given.

    Args:
      config: the resolved config.
      run_dir: an existing run directory (runs.create_run_dir, or one being resumed), or a
        scratch directory with a checkpoints/ folder for a worker that is not the chief.
      splits: the data (data.load_splits).
      state: the run's read_state(), or None for a new run.
      strategy: a tf.distribute strategy (distribute.strategy), or None for one device.
      restore_dir: where state's checkpoint is, when not in run_dir (a worker's resume).
      chief: False on the workers of a cluster that do not write the run (no TensorBoard, no
        progress bars).
      dtype: the Keras dtype policy (the caller's run_precision choice).
      extra_callbacks: Keras callbacks called after the run's own (the benchmark times with them).
      on_restored: called once the model is built and state's checkpoint restored, before the
        first epoch: where a resume writes its config, when nothing can refuse it any more.
    Returns:
      (autoencoder, encoder, decoder), trained, with the best epoch's weights when early
      stopping restores them; model.keras, encoder.keras and decoder.keras are saved in run_dir
      (a model with skips has no decoder of the code alone: None, and no decoder.keras).
    """
    tensorflow()
    from autoencoder.callbacks import FrozenOutput, NonFiniteLoss, RunRecorder

    seed_everything(config.seed)
    log.info(
        "data: %s: %s train, %s val, %s test; precision: %s",
        splits.source,
        f"{splits.count('train'):,}",
        f"{splits.count('val'):,}",
        f"{splits.count('test'):,}",
        dtype,
    )
    first_epoch = state["epoch"] if state else 0
    train_ds, val_ds = _datasets(config, splits, first_epoch, strategy is not None)
    steps = int(train_ds.cardinality())  # batches of images, or of patches
    with strategy.scope() if strategy else contextlib.nullcontext():
        # Variables (weights, optimizer slots) are made in the scope: mirrored across replicas.
        model, encoder, decoder = compiled_models(config, steps, dtype)
        if state is not None:
            path = last_checkpoint(Path(restore_dir or run_dir), state)
            _restore(model, load_model(path), path)
    on_restored()
    if state is not None:
        _log_resume(config, run_dir, first_epoch)
    for _ in range(first_epoch):
        # Each new iterator of a seeded reshuffling dataset draws the next epoch's order; skip
        # the epochs already trained so a resumed run sees the batches an unbroken one would.
        next(iter(train_ds))
    recorder, nan_guard, frozen = RunRecorder(run_dir, state), NonFiniteLoss(), FrozenOutput()
    budget = _time_budget(config, recorder.rows, steps)
    callbacks = [
        # The budget first, so that its epoch ends before the recorder writes checkpoints: its
        # clock then counts what history.csv's seconds do.
        *([budget] if budget is not None else []),
        recorder,
        nan_guard,
        frozen,
        *_schedule_callbacks(config),
        *(_chief_callbacks(config, run_dir, splits, steps, first_epoch, budget) if chief else []),
        *extra_callbacks,
    ]
    started = time.time()
    spent_before = budget is not None and budget.spent >= budget.budget
    if spent_before:
        log.info(
            "train.minutes is %g and the run has trained %.2f minutes: nothing to train; "
            "resume with %s for more",
            config.train.minutes,
            budget.spent / 60,
            named("--set train.minutes=M", "minutes=M"),
        )
    elif first_epoch < config.train.epochs:
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=config.train.epochs,
                initial_epoch=first_epoch,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,  # tf.data already shuffles, seeded
            )
        except BaseException:  # Ctrl-C, a lost worker: the message is the last line, no bar
            _close_bars(callbacks)
            raise
    _refuse_stopped(nan_guard, frozen, recorder, run_dir)
    stop = config.train.early_stopping
    if stop.patience and stop.restore_best and recorder.best_checkpoint:
        model.load_weights(run_dir / "checkpoints" / BEST)
    _save_models(config, run_dir, model, encoder, decoder)
    if first_epoch < recorder.epoch or state is None:
        done = recorder.epoch - first_epoch  # this session's, not the run's total
        plural = "" if done == 1 else "s"
        span = f"{first_epoch + 1}-{recorder.epoch}" if done > 1 else f"{recorder.epoch}"
        total = f" (epoch{plural} {span} of the run)" if first_epoch else ""
        log.info("trained %d epoch%s%s in %.0f s", done, plural, total, time.time() - started)
    if budget is not None and not spent_before:
        early = any(getattr(c, "stopped_epoch", 0) for c in callbacks)  # Keras EarlyStopping's
        _log_budget(config, budget, steps, recorder.epoch, early)
    _warn_unfinished_warmup(config, recorder.rows)
    return model, encoder, decoder


def _datasets(config: Config, splits, first_epoch: int, distributed: bool):
    """The training and validation datasets, sharded by batch across a strategy's workers."""
    train_ds, val_ds = run_datasets(config, splits, first_epoch)
    if not distributed:
        return train_ds, val_ds
    tf = tensorflow()
    # Each worker takes its share of the batches of one seeded order (the global batch is split
    # across all replicas); folder streams are sharded the same way.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train_ds.with_options(options), val_ds.with_options(options)


def _log_resume(config: Config, run_dir: Path, first_epoch: int) -> None:
    """Where a resumed run goes on from, or that it has nothing left to train."""
    if first_epoch < config.train.epochs:
        log.info("resuming after epoch %d of %d", first_epoch, config.train.epochs)
        return
    log.info(
        "the run has trained all its %d epochs: nothing to train, evaluated again; for more, %s",
        config.train.epochs,
        named(
            f"autoencoder resume {run_dir} --set train.epochs=N",
            f"ae.resume('{run_dir}', epochs=N)",
        ),
    )


def _close_bars(callbacks) -> None:
    from autoencoder.callbacks import TqdmProgress

    for callback in callbacks:
        if isinstance(callback, TqdmProgress):
            callback.close()


def _refuse_stopped(nan_guard, frozen, recorder, run_dir: Path) -> None:
    """A UserError for a run its guards stopped: a loss that is not finite, an output frozen."""
    if nan_guard.bad:
        epoch, value = nan_guard.bad
        last = recorder.last_checkpoint or "none (it diverged in the first epoch)"
        raise UserError(
            f"training stopped: the loss became {value} in epoch {epoch}; the last good checkpoint "
            f"is {last}. Try a lower train.optimizer.learning_rate, train.optimizer.clipnorm: 1.0, "
            f"or input data in [0, 1] with loss bce"
        )
    if frozen.frozen:
        epoch, value = frozen.frozen
        raise UserError(
            f"training stopped: val/loss was {value:.6g} in epochs {epoch - 1} and {epoch}, to "
            f"the last digit, so the model's output no longer changes (a saturated sigmoid or "
            f"dead ReLUs). Start again with loss bce if the output is a sigmoid, else a lower "
            f"train.optimizer.learning_rate; this run's checkpoints are in "
            f"{run_dir / 'checkpoints'}"
        )


def _save_models(config: Config, run_dir: Path, model, encoder, decoder) -> None:
    """model.keras, encoder.keras and decoder.keras (when there is a decoder of the code alone)."""
    for name, m in (("model", model), ("encoder", encoder), ("decoder", decoder)):
        if m is not None:
            write_or_explain(run_dir, run_dir / f"{name}.keras", m.save)
    if decoder is None and config.model.output.residual:
        log.info(
            "no decoder.keras: a residual head subtracts from the input image, so no decoder "
            "makes images from the code alone; model.keras is the whole model"
        )
    elif decoder is None:
        log.info(
            "no decoder.keras: with skips the decoder reads the encoder's activations, not the "
            "code alone; model.keras is the whole model, encoder.keras gives the code"
        )


def _warn_unfinished_warmup(config: Config, history: list[dict]) -> None:
    """A VAE whose training ended before its KL weight had risen to train.kl.weight."""
    kl = config.train.kl_term if config.model.kind == "vae" else None
    reached = history[-1].get("train/kl_weight") if history else None
    if kl is None or reached is None or reached >= kl.weight * (1 - 1e-6):
        return
    log.warning(
        "train.kl: the KL weight had risen to %.3g of its %g when training ended after epoch "
        "%d (warm-up over %d epochs): the model never trained with the full KL term; resume "
        "with more epochs or minutes, or lower train.kl.warmup_epochs",
        reached,
        kl.weight,
        history[-1]["epoch"],
        kl.warmup_epochs,
    )


def _time_budget(config: Config, history: list[dict], steps: int):
    """The TimeBudget callback of a run with train.minutes, its clock at the history's seconds."""
    if config.train.minutes is None:
        return None
    from autoencoder.callbacks import TimeBudget

    train = config.train
    cosine = None
    if train.schedule.kind == "cosine":
        cosine = (train.optimizer.learning_rate, train.schedule.min_lr)
    spent = training_seconds(history)
    return TimeBudget(60.0 * train.minutes, spent, max(1, train.epochs * steps), cosine)


def _log_budget(config: Config, budget, steps: int, epochs_done: int, early: bool) -> None:
    if budget.stopped is None:
        if epochs_done >= config.train.epochs:
            why = f"train.epochs ({config.train.epochs}) ran out"
        elif early:
            why = f"early stopping ended the run after epoch {epochs_done}"
        else:  # the caller's callback: a pruned tune trial
            why = f"the caller stopped the run after epoch {epochs_done}"
        log.info(
            "train.minutes: %.2f of %g minutes spent when %s",
            budget.spent / 60,
            config.train.minutes,
            why,
        )
        return
    epoch, batches = budget.stopped
    log.info(
        "train.minutes=%g reached in epoch %d after %d of its %d batches (%.2f minutes with "
        "its validation); the run records it as a completed epoch",
        config.train.minutes,
        epoch,
        batches,
        steps,
        budget.spent / 60,
    )


def run_precision(
    config: Config, candidates: Sequence[str] = precision.CANDIDATES, multi_worker: bool = False
) -> precision.Choice:
    """precision.choose for a run, timing with training_rate where auto times."""
    # Timing builds models of its own: called before fit seeds, the run's weights do not
    # depend on it.
    return precision.choose(
        config, lambda dtype: training_rate(config, dtype), candidates, multi_worker
    )


def training_rate(config: Config, dtype: str, jit_compile: bool | str = "auto") -> float:
    """Training batches per second of the config's compiled model in dtype, on a random batch."""
    import numpy as np

    tf = tensorflow()
    model = compiled_models(config, 1, dtype, jit_compile)[0]
    shape = (config.train.batch_size, *config.model.input_shape)
    x = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, x)
    steps, started = [], time.perf_counter()
    while len(steps) < TIMED_STEPS[1] and (
        len(steps) < TIMED_STEPS[0] or time.perf_counter() - started < TIMED_SECONDS
    ):
        begun = time.perf_counter()
        model.train_on_batch(x, x)  # returns the logs as NumPy: the step has finished
        steps.append(time.perf_counter() - begun)
    del model
    gc.collect()  # the timed model's weights and traced functions, before the run's own
    return 1.0 / statistics.median(steps)


def compiled_models(
    config: Config, steps_per_epoch: int, dtype: str = "float32", jit_compile: bool | str = "auto"
):
    """(autoencoder, encoder, decoder), the autoencoder compiled as `fit` compiles it."""
    import keras

    model, encoder, decoder = build_models(config.model, dtype)
    if config.model.kind == "vae":
        # The VAE's own train_step computes its loss (reconstruction + KL) and metrics.
        kl = config.train.kl_term
        model.set_objective(config.train.loss, kl.weight, kl.warmup_epochs * steps_per_epoch)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch, dtype), jit_compile=jit_compile
        )
        return model, encoder, decoder
    # MSE is tracked whatever the loss: it is the figure the quality bar and PSNR are read from.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, dtype),
        loss=make_loss(config),
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
        # Keras's "auto" leaves XLA off on a CPU-only machine: measured slower there
        # (docs/performance.md, scripts/training_rate.py --xla).
        jit_compile=jit_compile,
    )
    return model, encoder, decoder


def make_optimizer(config: Config, steps_per_epoch: int, dtype: str = "float32"):
    """Optimizer with the configured learning-rate schedule, clipping and loss scaling."""
    import keras

    opt, sched = config.train.optimizer, config.train.schedule
    lr = opt.learning_rate
    # With train.minutes the TimeBudget callback sets a cosine rate from the time spent.
    if sched.kind == "cosine" and config.train.minutes is None:
        lr = keras.optimizers.schedules.CosineDecay(
            opt.learning_rate,
            decay_steps=max(1, config.train.epochs * steps_per_epoch),
            alpha=sched.min_lr / opt.learning_rate,
        )
    clip = {"clipnorm": opt.clipnorm} if opt.clipnorm else {}
    if opt.name == "adam":
        optimizer = keras.optimizers.Adam(lr, **clip)
    elif opt.name == "adamw":
        optimizer = keras.optimizers.AdamW(lr, weight_decay=opt.weight_decay, **clip)
    else:
        optimizer = keras.optimizers.SGD(lr, momentum=opt.momentum, **clip)
    # float16 gradients underflow without loss scaling; bfloat16 has float32's exponent range.
    if dtype == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def make_loss(config: Config):
    """The configured reconstruction loss."""
    from autoencoder.losses import keras_loss

    return keras_loss(config.train.loss)


def _schedule_callbacks(config: Config) -> list:
    import keras

    out = []
    sched, stop = config.train.schedule, config.train.early_stopping
    if sched.kind == "plateau":
        out.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=sched.factor,
                patience=sched.patience,
                min_lr=sched.min_lr,
            )
        )
    if stop.patience:
        out.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=stop.patience))
    return out


def _chief_callbacks(
    config: Config, run_dir: Path, splits, steps: int, first_epoch: int, budget=None
) -> list:
    """What only the process that writes the run shows: TensorBoard and the progress bars."""
    import keras

    from autoencoder.callbacks import TensorBoardImages, TqdmProgress

    out = []
    if config.train.tensorboard:
        out.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False))
        clean = splits.images("test")[:IMAGES_PER_EPOCH]
        patch = splits.patches.size if splits.patches is not None else None
        out.append(
            TensorBoardImages(
                run_dir / "logs" / "images", clean, model_inputs(clean, config), patch
            )
        )
    if log.isEnabledFor(logging.INFO):
        out.append(TqdmProgress(config.train.epochs, steps, first_epoch, budget))
    return out


def _restore(model, saved, path: Path) -> None:
    # Copy weights and optimizer slots into freshly built models, so that the encoder and
    # decoder keep sharing layers with the autoencoder exactly as in a new run.
    weights = saved.get_weights()
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.weights]:
        # Same input shape (checked before) but other layers: config.yaml is not the run's.
        raise UserError(
            f"{path}: holds another model than the run's config.yaml builds (its weights differ "
            f"in number or shape); put back the run's own config.yaml, or train a new run"
        )
    model.set_weights(weights)
    model.optimizer.build(model.trainable_variables)
    for mine, theirs in zip(model.optimizer.variables, saved.optimizer.variables):
        mine.assign(theirs)
