"""Fit a model into a run directory: compile, callbacks, and the record of its epochs.

The record (runs.py) is what makes a run resumable: history.csv, checkpoints/ and
checkpoints/state.json, each written atomically by RunRecorder after every epoch; state.json is
written last and names the files of the last completed epoch. Importing this module does not
import TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np

from autoencoder.config import Config
from autoencoder.data import from_tiles, to_tiles
from autoencoder.errors import UserError
from autoencoder.model import build_models, is_vae, load_model
from autoencoder.noise import model_inputs, run_datasets
from autoencoder.runs import (
    BEST,
    STATE,
    history_csv,
    last_checkpoint,
    read_history,
    write_or_explain,
)
from autoencoder.runtime import choose_precision, seed_everything, tensorflow

log = logging.getLogger(__name__)


def fit(
    config: Config,
    run_dir: Path,
    splits,
    state: dict | None = None,
    strategy=None,
    restore_dir: Path | None = None,
    chief: bool = True,
    dtype: str | None = None,
    extra_callbacks=(),
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
      dtype: the Keras dtype policy (runtime.choose_precision picks one when None).
      extra_callbacks: Keras callbacks called after the run's own (the benchmark times with them).
    Returns:
      (autoencoder, encoder, decoder), trained, with the best epoch's weights when early
      stopping restores them; model.keras, encoder.keras and decoder.keras are saved in run_dir
      (a model with skips has no decoder of the code alone: None, and no decoder.keras).
    """
    tf = tensorflow()
    import keras

    seed_everything(config.seed)
    dtype = dtype or choose_precision(config.train.mixed_precision)
    log.info(
        "data: %s: %s train, %s val, %s test; precision: %s",
        splits.source,
        f"{splits.count('train'):,}",
        f"{splits.count('val'):,}",
        f"{splits.count('test'):,}",
        dtype,
    )
    first_epoch = state["epoch"] if state else 0
    train_ds, val_ds = run_datasets(config, splits, first_epoch)
    steps = int(train_ds.cardinality())  # batches of images, or of patches
    if strategy is not None:
        # Each worker takes its share of the batches of one seeded order (the global batch is
        # split across all replicas); folder streams are sharded the same way.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)

    with strategy.scope() if strategy else contextlib.nullcontext():
        # Variables (weights, optimizer slots) are made in the scope: mirrored across replicas.
        model, encoder, decoder = compiled_models(config, steps, dtype)
        if state is not None:
            _restore(model, load_model(last_checkpoint(Path(restore_dir or run_dir), state)))
    if state is not None:
        log.info("resuming after epoch %d of %d", first_epoch, config.train.epochs)
    for _ in range(first_epoch):
        # Each new iterator of a seeded reshuffling dataset draws the next epoch's order; skip
        # the epochs already trained so a resumed run sees the batches an unbroken one would.
        next(iter(train_ds))
    recorder, nan_guard, frozen = RunRecorder(run_dir, state), NonFiniteLoss(), FrozenOutput()
    callbacks = [as_keras_callback(h) for h in (recorder, nan_guard, frozen)]
    callbacks += _schedule_callbacks(config)
    if config.train.tensorboard and chief:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False)
        )
        clean = splits.images("test")[:IMAGES_PER_EPOCH]
        patch = splits.patches.size if splits.patches is not None else None
        shown = TensorBoardImages(
            run_dir / "logs" / "images", clean, model_inputs(clean, config), patch
        )
        callbacks.append(as_keras_callback(shown))
    if log.isEnabledFor(logging.INFO) and chief:
        callbacks.append(as_keras_callback(TqdmProgress(config.train.epochs, steps)))
    callbacks += extra_callbacks
    started = time.time()
    if first_epoch < config.train.epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.train.epochs,
            initial_epoch=first_epoch,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # tf.data already shuffles, seeded
        )
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
    stop = config.train.early_stopping
    if stop.patience and stop.restore_best and recorder.best_checkpoint:
        model.load_weights(run_dir / "checkpoints" / BEST)
    for name, m in (("model", model), ("encoder", encoder), ("decoder", decoder)):
        if m is not None:
            write_or_explain(run_dir, run_dir / f"{name}.keras", m.save)
    if decoder is None:
        log.info(
            "no decoder.keras: with skips the decoder reads the encoder's activations, not the "
            "code alone; model.keras is the whole model, encoder.keras gives the code"
        )
    log.info("trained %d epochs in %.0f s", recorder.epoch, time.time() - started)
    return model, encoder, decoder


def compiled_models(config: Config, steps_per_epoch: int, dtype: str = "float32"):
    """(autoencoder, encoder, decoder), the autoencoder compiled as `fit` compiles it."""
    import keras

    model, encoder, decoder = build_models(config.model, dtype)
    if config.model.kind == "vae":
        # The VAE's own train_step computes its loss (reconstruction + KL) and metrics.
        kl = config.train.kl_term
        model.set_objective(config.train.loss, kl.weight, kl.warmup_epochs * steps_per_epoch)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch, dtype))
        return model, encoder, decoder
    # MSE is tracked whatever the loss: it is the figure the quality bar and PSNR are read from.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, dtype),
        loss=make_loss(config),
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )
    return model, encoder, decoder


def make_optimizer(config: Config, steps_per_epoch: int, dtype: str = "float32"):
    """Optimizer with the configured learning-rate schedule, clipping and loss scaling."""
    import keras

    opt, sched = config.train.optimizer, config.train.schedule
    lr = opt.learning_rate
    if sched.kind == "cosine":
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
    import keras

    return {
        "bce": keras.losses.BinaryCrossentropy(),
        "mse": keras.losses.MeanSquaredError(),
        "mae": keras.losses.MeanAbsoluteError(),
    }[config.train.loss]


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


def _restore(model, saved) -> None:
    # Copy weights and optimizer slots into freshly built models, so that the encoder and
    # decoder keep sharing layers with the autoencoder exactly as in a new run.
    model.set_weights(saved.get_weights())
    model.optimizer.build(model.trainable_variables)
    for mine, theirs in zip(model.optimizer.variables, saved.optimizer.variables):
        mine.assign(theirs)


def current_lr(optimizer) -> float:
    """The learning rate the optimizer uses now (schedules evaluated at the current step)."""
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


# ---------------------------------------------------------------------------------------------
# Callbacks: plain classes (no TensorFlow at import), handed to Keras by as_keras_callback.

_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_end",
)


def as_keras_callback(handler):
    """A keras.callbacks.Callback that forwards the hooks `handler` defines and sets its .model."""
    tensorflow()
    import keras

    class Forward(keras.callbacks.Callback):
        def set_model(self, model):
            super().set_model(model)
            handler.model = model

        def set_params(self, params):
            super().set_params(params)
            handler.params = params

    # Only the hooks the handler has: Keras skips batch-level work for callbacks without them.
    for name in _HOOKS:
        if hasattr(handler, name):
            hook = getattr(handler, name)
            setattr(Forward, name, lambda self, *args, _hook=hook, **kwargs: _hook(*args, **kwargs))
    Forward.__name__ = type(handler).__name__
    return Forward()


class RunRecorder:
    """After each epoch: history row, best and last checkpoints, and the resume state, atomically."""

    model = None

    def __init__(self, run_dir: Path, state: dict | None):
        self.run_dir = Path(run_dir)
        self.rows = read_history(run_dir)[: state["epoch"]] if state else []
        self.epoch = state["epoch"] if state else 0
        self.best = state.get("best_val_loss", math.inf) if state else math.inf
        self.last_checkpoint = state.get("checkpoint") if state else None
        self.best_checkpoint = state.get("best_checkpoint") if state else None
        self._clock = time.time()
        self._tidy(refresh_best=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._clock = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(v)) for v in logs.values()):
            return  # NonFiniteLoss reports it; never checkpoint a diverged model
        row = {"epoch": epoch + 1}
        # Keras names validation metrics "val_<name>"; ours carry their split: "val/<name>".
        for key in sorted(
            logs, key=lambda k: (k.startswith("val_"), k not in ("loss", "val_loss"))
        ):
            if key != "learning_rate":
                split, name = ("val", key[4:]) if key.startswith("val_") else ("train", key)
                row[f"{split}/{name}"] = float(logs[key])
        row["lr"] = current_lr(self.model.optimizer)
        row["seconds"] = round(time.time() - self._clock, 3)
        self.rows.append(row)
        ckpt = self.run_dir / "checkpoints"
        val = row.get("val/loss", row["train/loss"])
        # Fresh files for this epoch, then state.json naming them: state.json is the commit, so
        # a kill or a failed write at any instant leaves the last completed epoch whole.
        with _interrupt_after_block():
            best, best_name = self.best, self.best_checkpoint
            if val < best:
                best, best_name = val, f"best-{epoch + 1:04d}.weights.h5"
                write_or_explain(self.run_dir, ckpt / best_name, self.model.save_weights)
            name = f"last-{epoch + 1:04d}.keras"
            write_or_explain(self.run_dir, ckpt / name, self.model.save)
            text = history_csv(self.rows)
            write_or_explain(
                self.run_dir, self.run_dir / "history.csv", lambda tmp: Path(tmp).write_text(text)
            )
            state = {
                "epoch": epoch + 1,
                "checkpoint": name,
                "best_val_loss": best,
                "best_checkpoint": best_name,
            }
            write_or_explain(
                self.run_dir,
                self.run_dir / STATE,
                lambda tmp: Path(tmp).write_text(json.dumps(state, indent=2) + "\n"),
            )
            refresh = best_name != self.best_checkpoint
            self.best, self.best_checkpoint = best, best_name
            self.epoch, self.last_checkpoint = epoch + 1, str(ckpt / name)
            self._tidy(refresh_best=refresh)

    def _tidy(self, refresh_best: bool) -> None:
        """Match checkpoints/ to state.json: drop older and unfinished files, copy the best."""
        ckpt = self.run_dir / "checkpoints"
        for stale in [*ckpt.glob(".tmp-*"), *self.run_dir.glob(".tmp-*")]:
            stale.unlink()
        keep = {Path(self.last_checkpoint or "").name, self.best_checkpoint, BEST}
        for old in [*ckpt.glob("last-*.keras"), *ckpt.glob("best*.weights.h5")]:
            if old.name not in keep:
                old.unlink()
        # best.weights.h5 is a copy of the file state.json names, made after the commit; on
        # resume it is made again in case a kill came between the two.
        source = ckpt / (self.best_checkpoint or BEST)
        if refresh_best and source.name != BEST and source.is_file():
            write_or_explain(self.run_dir, ckpt / BEST, lambda tmp: shutil.copyfile(source, tmp))


@contextlib.contextmanager
def _interrupt_after_block():
    """Hold Ctrl-C until the block's writes are done, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt


class NonFiniteLoss:
    """Stop at the first NaN or infinite batch loss and remember where."""

    model = None

    def __init__(self):
        self.bad = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad = (self._epoch, float(loss))
            self.model.stop_training = True


class FrozenOutput:
    """Stop when val/loss repeats exactly from one epoch to the next: the output stopped moving."""

    # Fresh batches and noise move the training loss even when the weights do not, so only the
    # fixed validation batches show it: any change of the model's output moves their loss.
    model = None

    def __init__(self):
        self.frozen = None
        self._last = None

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_loss") is None:
            return
        val = float(logs["val_loss"])
        if val == self._last:
            self.frozen = (epoch + 1, val)
            self.model.stop_training = True
        self._last = val


IMAGES_PER_EPOCH = 8  # test images (and VAE samples) shown in TensorBoard after each epoch


def image_grid(rows: list, scale: int = 2) -> np.ndarray:
    """Equal-length batches of images (n, H, W, C) as one image, a row per batch, grey gaps.

    Each pixel becomes scale x scale: TensorBoard shows images at their own size, and a 28x28
    digit is small on a screen.
    """
    rows = [np.clip(np.asarray(batch, dtype=np.float32), 0, 1) for batch in rows]
    rows = [batch.repeat(scale, axis=1).repeat(scale, axis=2) for batch in rows]
    n, h, w, c = rows[0].shape
    channels = c if c in (1, 3, 4) else 1  # TensorBoard shows grey, RGB or RGBA: else channel 0
    grid = np.full(((h + 1) * len(rows) - 1, (w + 1) * n - 1, channels), 0.5, np.float32)
    for r, batch in enumerate(rows):
        for i, image in enumerate(batch):
            grid[r * (h + 1) : r * (h + 1) + h, i * (w + 1) : i * (w + 1) + w] = image[
                ..., :channels
            ]
    return grid


class TensorBoardImages:
    """After each epoch, into TensorBoard: test inputs above their reconstructions (above the
    clean images, for a denoiser), and a VAE's decodings of fixed draws from the prior.

    A patch model (`patch`: its input size) sees whole test images cut into tiles, and its
    output tiles are blended back as `evaluate` does, so the figure shows whole images.
    """

    model = None

    def __init__(self, log_dir: Path, clean: np.ndarray, inputs: np.ndarray, patch=None):
        self.log_dir, self.clean, self.inputs, self.patch = Path(log_dir), clean, inputs, patch
        self.writer = self.prior = None

    def on_train_begin(self, logs=None):
        tf = tensorflow()
        self.writer = tf.summary.create_file_writer(str(self.log_dir))
        decoder = getattr(self.model, "decoder", None) if is_vae(self.model) else None
        if decoder is not None:
            latent = decoder.input_shape[-1]
            draws = np.random.default_rng(0).standard_normal((2 * len(self.clean), latent))
            self.prior = draws.astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
        import keras

        tf = tensorflow()
        if self.patch is None:
            recon = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        else:
            tiles = to_tiles(self.inputs, self.patch)
            out = keras.ops.convert_to_numpy(self.model(tiles, training=False))
            recon = from_tiles(out, self.inputs.shape, self.patch)
        rows = [self.inputs, recon]
        if self.inputs is not self.clean:
            rows.append(self.clean)
        scale = 2 if max(self.inputs.shape[1:3]) <= 64 else 1  # small digits doubled on screen
        with self.writer.as_default():
            # Step = epoch index, as Keras's own TensorBoard callback counts epochs.
            grid = image_grid(rows, scale)
            tf.summary.image("reconstructions/test", grid[None], step=epoch)
            if self.prior is not None:
                samples = keras.ops.convert_to_numpy(self.model.decoder(self.prior))
                half = len(self.prior) // 2
                grid = image_grid([samples[:half], samples[half:]])
                tf.summary.image("samples/prior", grid[None], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class TqdmProgress:
    """An epoch bar with train/val loss in its postfix, and a bar over the current epoch's batches."""

    model = params = None

    def __init__(self, epochs: int, steps: int):
        self.epochs, self.steps = epochs, steps
        self.outer = self.inner = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        start = self.params.get("initial_epoch", 0) if self.params else 0
        self.outer = tqdm(
            total=self.epochs,
            initial=start,
            desc="epochs",
            unit="epoch",
            position=0,
            dynamic_ncols=True,
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.inner = self._tqdm(
            total=self.steps,
            desc=f"epoch {epoch + 1}",
            unit="batch",
            position=1,
            leave=False,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        self.inner.update(1)
        if logs and "loss" in logs:
            self.inner.set_postfix({"train/loss": f"{float(logs['loss']):.4f}"}, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.close()
        logs = logs or {}
        post = {"train/loss": f"{float(logs.get('loss', math.nan)):.4f}"}
        if "val_loss" in logs:
            post["val/loss"] = f"{float(logs['val_loss']):.4f}"
        self.outer.set_postfix(post)
        self.outer.update(1)

    def on_train_end(self, logs=None):
        if self.inner is not None:
            self.inner.close()
        self.outer.close()
