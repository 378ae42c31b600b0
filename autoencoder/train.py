"""train(config): one function that owns a run, its directory, checkpoints and resume."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from autoencoder import runs
from autoencoder.config import Config
from autoencoder.errors import UserError
from autoencoder.runtime import configure_precision, seed_everything, tensorflow

BEST = "best.weights.h5"  # a copy of the best epoch's weights, kept in step by RunRecorder


def train(config: Config, resume: str | Path | None = None, quiet: bool = False) -> Path:
    """Train the config's model and write a complete run directory.

    Args:
      config: the resolved config.
      resume: an earlier run directory to continue from its last completed epoch.
      quiet: no progress bars or messages.
    Returns:
      The run directory.
    """
    from autoencoder.shapes import plan_model

    plan_model(config.model)  # an impossible architecture is refused before a run dir exists
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    if resume is not None:
        run_dir = runs.check_resume(resume, config)
        state = runs.read_state(run_dir)
        runs.write_text(run_dir / "config.yaml", runs.dump_config(config))
    else:
        run_dir, state = runs.create_run_dir(config), None
    say(f"run directory: {run_dir}")
    tensorflow()
    import keras

    policy = keras.mixed_precision.global_policy()
    try:
        return _train_in(run_dir, state, config, quiet, say)
    except KeyboardInterrupt:
        # Ctrl-C at any moment: every write is atomic and the checkpoint block finishes first
        # (RunRecorder), so the run on disk is the last completed epoch, ready to resume.
        done = (runs.read_state(run_dir) or {}).get("epoch", 0)
        raise KeyboardInterrupt(
            f"after {done} completed epoch(s); the run is kept: resume with "
            f"`{resume_command(run_dir)}`"
        ) from None
    finally:
        # The run's precision policy is Keras-global; a caller's later models keep their own.
        keras.mixed_precision.set_global_policy(policy)


def resume_command(run_dir: Path) -> str:
    """The command line that continues a run."""
    return f"autoencoder train {Path(run_dir) / 'config.yaml'} --resume {run_dir}"


def _train_in(run_dir: Path, state: dict | None, config: Config, quiet: bool, say) -> Path:
    """The body of train() once the run directory exists."""
    from autoencoder.data import load_splits, make_dataset
    from autoencoder.noise import model_inputs

    tensorflow()
    import keras

    seed_everything(config.seed)
    policy = configure_precision(config.train.mixed_precision)
    splits = load_splits(config)
    say(
        f"data: {splits.source}: {len(splits.x_train):,} train, {len(splits.x_val):,} val, "
        f"{len(splits.x_test):,} test; precision: {policy}"
    )
    batch = config.train.batch_size
    train_ds = make_dataset(
        splits.train_pixels,
        batch_size=batch,
        shuffle=True,
        seed=config.seed,
        noise_fn=_noise_fn(config, state["epoch"] if state else 0),
    )
    # A denoiser validates on fixed noisy inputs (clean targets) so val/loss compares by epoch.
    # Bytes where the inputs are the clean images: a quarter of the memory of float32.
    val_ds = make_dataset(
        splits.val_pixels
        if config.data.noise is None
        else model_inputs(splits.x_val, config, seed_offset=1),
        None if config.data.noise is None else splits.val_pixels,
        batch_size=batch,
        shuffle=False,
        seed=config.seed,
    )
    steps = math.ceil(len(splits.x_train) / batch)

    model, encoder, decoder = compiled_models(config, steps)
    if state is not None:
        _restore(model, load_model(run_dir / "checkpoints" / state["checkpoint"]))
        say(f"resuming after epoch {state['epoch']} of {config.train.epochs}")

    initial_epoch = state["epoch"] if state else 0
    for _ in range(initial_epoch):
        # Each new iterator of a seeded reshuffling dataset draws the next epoch's order; skip
        # the epochs already trained so a resumed run sees the batches an unbroken one would.
        next(iter(train_ds))
    recorder = RunRecorder(run_dir, state)
    callbacks = [recorder, NonFiniteLoss()]
    callbacks += _schedule_callbacks(config, keras)
    if config.train.tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False)
        )
    if not quiet:
        callbacks.append(TqdmProgress(config.train.epochs, steps))
    started = time.time()
    if initial_epoch < config.train.epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.train.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )  # tf.data already shuffles, seeded
    del train_ds, val_ds  # their copies of the images: evaluation below needs the memory
    stopped_by_nan = next((c.bad for c in callbacks if isinstance(c, NonFiniteLoss)), None)
    if stopped_by_nan:
        epoch, value = stopped_by_nan
        last = recorder.last_checkpoint or "none (it diverged in the first epoch)"
        raise UserError(
            f"training stopped: the loss became {value} in epoch {epoch}; the last good checkpoint "
            f"is {last}. Try a lower train.optimizer.learning_rate, train.optimizer.clipnorm: 1.0, "
            f"or input data in [0, 1] with loss bce"
        )

    if (
        config.train.early_stopping.patience
        and config.train.early_stopping.restore_best
        and recorder.best_checkpoint
    ):
        model.load_weights(run_dir / "checkpoints" / BEST)
    _save_models(run_dir, model, encoder, decoder)
    say(f"trained {recorder.epoch} epochs in {time.time() - started:.0f} s")
    finish_run(run_dir, config, model, splits, quiet=quiet)
    return run_dir


def finish_run(run_dir: Path, config: Config, model, splits, quiet: bool = False) -> None:
    """Evaluate on the test split and draw the figures."""
    from autoencoder.evaluate import evaluate_arrays, format_metrics
    from autoencoder.noise import model_inputs
    from autoencoder.plots import plot_all

    recon = model.predict(model_inputs(splits.x_test, config), batch_size=512, verbose=0)
    metrics = evaluate_arrays(splits, recon, split="test", config=config)
    history = runs.read_history(run_dir)
    if history:
        best = min(history, key=lambda r: r.get("val/loss", math.inf))
        metrics.update(
            {
                "best/epoch": best["epoch"],
                "best/val_loss": best.get("val/loss"),
                "epochs_run": len(history),
            }
        )
    runs.write_json(run_dir / "metrics.json", metrics)
    plot_all(run_dir, splits.x_test, splits.y_test, recon, history)
    if not quiet:
        print(format_metrics(metrics, "test"))
        print(f"figures: {run_dir / 'figures'}")


def _noise_fn(config: Config, start_epoch: int):
    """Fresh training noise per batch and epoch when data.noise is set, else None."""
    from autoencoder.noise import training_noise

    if config.data.noise is None:
        return None
    return training_noise(config.data.noise, config.seed, start_epoch)


def compiled_models(config: Config, steps_per_epoch: int):
    """(autoencoder, encoder, decoder), the autoencoder compiled as `train` compiles it."""
    import keras

    from autoencoder.model import build_models

    model, encoder, decoder = build_models(config.model)
    # MSE is tracked whatever the loss: it is the figure the quality bar and PSNR are read from.
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=make_loss(config),
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )
    return model, encoder, decoder


def make_optimizer(config: Config, steps_per_epoch: int):
    """Optimizer with the configured learning-rate schedule and gradient clipping."""
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
        return keras.optimizers.Adam(lr, **clip)
    if opt.name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=opt.weight_decay, **clip)
    return keras.optimizers.SGD(lr, momentum=opt.momentum, **clip)


def make_loss(config: Config):
    """The configured reconstruction loss."""
    import keras

    return {
        "bce": keras.losses.BinaryCrossentropy(),
        "mse": keras.losses.MeanSquaredError(),
        "mae": keras.losses.MeanAbsoluteError(),
    }[config.train.loss]


def _schedule_callbacks(config: Config, keras) -> list:
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


def _save_models(run_dir: Path, model, encoder, decoder) -> None:
    for name, m in (("model", model), ("encoder", encoder), ("decoder", decoder)):
        write_or_explain(run_dir, run_dir / f"{name}.keras", m.save)


def write_or_explain(run_dir: Path, path: Path, writer) -> None:
    """runs.write_with, with a failed write (disk full, ...) as one line that says what to do."""
    try:
        runs.write_with(path, writer)
    except OSError as exc:
        done = (runs.read_state(run_dir) or {}).get("epoch", 0)
        raise UserError(
            f"{path}: cannot write: {exc.strerror or exc}; the run is kept at epoch "
            f"{done}: free disk space and resume with "
            f"`{resume_command(run_dir)}`"
        ) from None


def _restore(model, saved) -> None:
    # Copy weights and optimizer slots into freshly built models, so that the encoder and
    # decoder keep sharing layers with the autoencoder exactly as in a new run.
    model.set_weights(saved.get_weights())
    model.optimizer.build(model.trainable_variables)
    for mine, theirs in zip(model.optimizer.variables, saved.optimizer.variables):
        mine.assign(theirs)


def load_model(path: Path):
    """Load a saved .keras model with safe_mode=True; one clear line if missing or corrupt."""
    tensorflow()
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: model file not found; was the run finished? (train writes it "
            f"at the end; `--resume` the run to finish it)"
        )
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged zip / h5
        if "safe_mode" in str(exc):
            raise UserError(
                f"{path}: refused: the model holds Python code (e.g. a Lambda layer), "
                f"which safe_mode=True does not run; save models built from "
                f"built-in layers"
            ) from None
        raise UserError(
            f"{path}: cannot load model ({exc.__class__.__name__}); the file is "
            f"corrupt or truncated: train a new run to replace it"
        ) from None


def current_lr(optimizer) -> float:
    """The learning rate the optimizer uses now (schedules evaluated at the current step)."""
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _callback_base():
    tensorflow()
    import keras

    return keras.callbacks.Callback


class RunRecorder(_callback_base()):
    """After each epoch: history row, best and last checkpoints, and the resume state, atomically."""

    def __init__(self, run_dir: Path, state: dict | None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.rows = runs.read_history(run_dir)[: state["epoch"]] if state else []
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
            logs, key=lambda k: (k.startswith("val_"), k != "loss" and k != "val_loss")
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
            text = runs.history_csv(self.rows)
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
                self.run_dir / runs.STATE,
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


class NonFiniteLoss(_callback_base()):
    """Stop at the first NaN or infinite batch loss and remember where."""

    def __init__(self):
        super().__init__()
        self.bad = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad = (self._epoch, float(loss))
            self.model.stop_training = True


class TqdmProgress(_callback_base()):
    """An epoch bar with train/val loss in its postfix, and a bar over the current epoch's batches."""

    def __init__(self, epochs: int, steps: int):
        super().__init__()
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
