"""The trainer's Keras callbacks: the run's record after each epoch, the NaN and frozen-output
stops, TensorBoard images and tqdm bars.

RunRecorder writes history.csv, checkpoints/ and checkpoints/state.json atomically (through
`runs`) after every epoch; state.json is written last and names the files of the last completed
epoch. This module imports Keras at its top (its classes subclass Keras's Callback), so the rest
of the package imports it only inside the functions that fit a model. Each callback overrides
only the hooks it needs: a batch hook is a Python call after every batch, and Keras dispatches
batch hooks asynchronously only when no callback overrides them.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np

from autoencoder import runtime
from autoencoder.data import from_tiles, to_tiles
from autoencoder.model import is_vae
from autoencoder.runs import BEST, STATE, history_csv, read_history, write_or_explain

tf = runtime.tensorflow()  # the environment TensorFlow needs, set before Keras first imports it

import keras  # noqa: E402


def current_lr(optimizer) -> float:
    """The learning rate the optimizer uses now (schedules evaluated at the current step)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: history row, best and last checkpoints, and the resume state, atomically."""

    def __init__(self, run_dir: Path, state: dict | None):
        super().__init__()
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


class NonFiniteLoss(keras.callbacks.Callback):
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


class FrozenOutput(keras.callbacks.Callback):
    """Stop when val/loss repeats exactly from one epoch to the next: the output stopped moving."""

    def __init__(self):
        super().__init__()
        self.frozen = None
        self._last = None

    def on_epoch_end(self, epoch, logs=None):
        # Fresh batches and noise move the training loss even when the weights do not, so only
        # the fixed validation batches show it: any change of the model's output moves their loss.
        if (logs or {}).get("val_loss") is None:
            return
        val = float(logs["val_loss"])
        if val == self._last:
            self.frozen = (epoch + 1, val)
            self.model.stop_training = True
        self._last = val


def cosine_lr(progress: float, initial: float, floor: float) -> float:
    """Keras's CosineDecay at a fraction of the schedule (clamped to [0, 1])."""
    progress = min(1.0, max(0.0, progress))
    return floor + (initial - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class TimeBudget(keras.callbacks.Callback):
    """Stop once `budget` seconds of epochs are spent; a cosine schedule follows the time."""

    def __init__(self, budget: float, spent: float, total_steps: int, cosine=None):
        # spent: the seconds of the epochs already in the run's history (a resume's clock goes
        # on from there). cosine: (initial, floor) learning rates, or None for no schedule.
        super().__init__()
        self.budget, self.spent, self.total_steps, self.cosine = budget, spent, total_steps, cosine
        self.stopped = None  # (epoch, batches trained in it) when the budget stopped training
        self._reserve = 0.0  # the last validation's seconds: stopping that early ends on time
        self._began = self._tested = time.time()
        self._epoch = self._steps = 0
        self._progress = 0.0

    def elapsed(self) -> float:
        """Seconds spent, the current epoch's so far included."""
        return self.spent + time.time() - self._began

    def on_epoch_begin(self, epoch, logs=None):
        self._began, self._epoch = time.time(), epoch

    def _set_rate(self):
        # The rate of the next step, as a Keras schedule evaluates it at the step count; the
        # larger fraction, of minutes or of steps, brings it to its floor when either ends.
        # The minutes' training ends a validation early: that is where the floor goes.
        # Never back: the first validation, which traces its function, is the slowest, so the
        # reserve shrinks after it and the fraction of the time alone could step back.
        if self.cosine is not None:
            training = max(self.budget - self._reserve, 1e-3)
            now = max(self.elapsed() / training, self._steps / self.total_steps)
            self._progress = max(self._progress, now)
            self.model.optimizer.learning_rate = cosine_lr(self._progress, *self.cosine)

    def on_train_begin(self, logs=None):
        # Counted here, not read per batch: a read of a mirrored variable is a sync.
        self._steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._set_rate()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.stopped is None and self.elapsed() + self._reserve >= self.budget:
            self.stopped = (self._epoch + 1, batch + 1)
            self.model.stop_training = True
        self._set_rate()

    def on_test_begin(self, logs=None):
        self._tested = time.time()

    def on_test_end(self, logs=None):
        self._reserve = time.time() - self._tested

    def on_epoch_end(self, epoch, logs=None):
        self.spent += time.time() - self._began
        self._began = time.time()


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


class TensorBoardImages(keras.callbacks.Callback):
    """After each epoch, into TensorBoard: test inputs above their reconstructions (above the
    clean images, for a denoiser), and a VAE's decodings of fixed draws from the prior.

    A patch model (`patch`: its input size) sees whole test images cut into tiles, and its
    output tiles are blended back as `evaluate` does, so the figure shows whole images.
    """

    def __init__(self, log_dir: Path, clean: np.ndarray, inputs: np.ndarray, patch=None):
        super().__init__()
        self.log_dir, self.clean, self.inputs, self.patch = Path(log_dir), clean, inputs, patch
        self.writer = self.prior = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(str(self.log_dir))
        decoder = getattr(self.model, "decoder", None) if is_vae(self.model) else None
        if decoder is not None:
            latent = decoder.input_shape[-1]
            draws = np.random.default_rng(0).standard_normal((2 * len(self.clean), latent))
            self.prior = draws.astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
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


class TqdmProgress(keras.callbacks.Callback):
    """An epoch bar with train/val loss in its postfix, and a bar over the current epoch's batches."""

    def __init__(self, epochs: int, steps: int, first_epoch: int = 0, budget=None):
        super().__init__()
        # Keras 3 does not put fit's initial_epoch into params: a resumed run says where it starts.
        self.epochs, self.steps, self.first_epoch = epochs, steps, first_epoch
        self.budget = budget  # a TimeBudget: the outer bar counts its seconds, not epochs
        self.outer = self.inner = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        if self.budget is not None:
            # An epoch bar's estimate would count the epochs cap, not the minutes that end it.
            self.outer = tqdm(
                total=round(self.budget.budget),
                initial=min(round(self.budget.spent), round(self.budget.budget)),
                desc=f"{self.budget.budget / 60:g} min",
                unit="s",
                # Seconds a second would say nothing: elapsed and remaining say it all.
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]",
                position=0,
                dynamic_ncols=True,
            )
            return
        self.outer = tqdm(
            total=self.epochs,
            initial=self.first_epoch,
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
        if self.budget is not None:
            self._time_bar()

    def _time_bar(self):
        ahead = min(int(self.budget.elapsed()), self.outer.total) - self.outer.n
        if ahead > 0:
            self.outer.update(ahead)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.close()
        logs = logs or {}
        post = {"train/loss": f"{float(logs.get('loss', math.nan)):.4f}"}
        if "val_loss" in logs:
            post["val/loss"] = f"{float(logs['val_loss']):.4f}"
        if self.budget is not None:
            self.outer.set_postfix({"epoch": epoch + 1, **post}, refresh=False)
            self._time_bar()
            return
        self.outer.set_postfix(post)
        self.outer.update(1)

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Close the bars (also when fit stopped by an error: else tqdm redraws them after it)."""
        for bar in (self.inner, self.outer):
            if bar is not None:
                bar.close()


class EpochEnd(keras.callbacks.Callback):
    """Calls `hook(epoch, logs, seconds, final)` after each epoch and stops training when it
    returns True; seconds: of this fit's epochs so far, their validation included; final: the
    run ends after this epoch anyway (its last epoch, or another callback stopped it)."""

    # For callers above the trainer (the tuner's pruning) that must not define Keras classes.
    def __init__(self, hook):
        super().__init__()
        self.hook = hook
        self.seconds = 0.0
        self._began = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.time() - self._began
        final = self.model.stop_training or epoch + 1 >= self.params.get("epochs", math.inf)
        if self.hook(epoch, logs or {}, self.seconds, final):
            self.model.stop_training = True
