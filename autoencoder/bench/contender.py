"""A contender process of `autoencoder bench` (python -m autoencoder.bench KEY CONFIG EPOCHS).

It trains one epoch each time the parent writes "go" on its stdin, and answers each with one
JSON line on its stdout: the epoch's seconds, every step's seconds and what the process used.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autoencoder.bench.profile import measure_matmul
from autoencoder.config import Config, load_config
from autoencoder.data import load_splits, to_tiles
from autoencoder.model import build_models
from autoencoder.noise import model_inputs
from autoencoder.runs import read_history
from autoencoder.runtime import seed_everything, tensorflow
from autoencoder.trainer import fit, run_precision


def _send(message: dict) -> None:
    sys.__stdout__.write(json.dumps(message) + "\n")
    sys.__stdout__.flush()


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _usage() -> dict:
    """This process's CPU seconds and page faults so far (an epoch's share is a difference)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": r.ru_utime + r.ru_stime,
        "sys_seconds": r.ru_stime,
        "minor_faults": r.ru_minflt,
        "major_faults": r.ru_majflt,
    }


def _turn_callbacks(keras, images: int):
    """Two callbacks: wait for "go" before an epoch, report after it.

    They come after the others, so the checkpoints A's trainer writes at an epoch's end count in
    its epoch. Each training step is timed too (Keras runs a step to its end before the batch-end
    callbacks), so the report has every step's seconds besides the epoch's.
    """

    class Start(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if not sys.stdin.readline():
                raise SystemExit(0)  # the parent is gone
            self.stop.started, self.stop.usage = time.perf_counter(), _usage()
            self.stop.steps, self.stop.first_step = [], None

        def on_train_batch_begin(self, batch, logs=None):
            self.stop.step_started = time.perf_counter()
            if self.stop.first_step is None:
                self.stop.first_step = self.stop.step_started

    class Stop(keras.callbacks.Callback):
        started = step_started = 0.0
        first_step: float | None = None
        usage: dict = {}
        steps: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append(time.perf_counter() - self.step_started)

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            used = {key: value - self.usage[key] for key, value in _usage().items()}
            _send(
                {
                    "seconds": seconds,
                    "images": images,
                    "steps": self.steps,
                    "start_gap": (self.first_step or self.started) - self.started,
                    **used,
                    "loss": float((logs or {}).get("loss", float("nan"))),
                }
            )

    start, stop = Start(), Stop()
    start.stop = stop
    return start, stop


def _plain_model(config: Config):
    """The model as a plain Keras script writes it: the same layers, compiled with defaults."""
    import keras

    model = build_models(config.model, plain=True)[0]
    opt = config.train.optimizer
    optimizer = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
    }[opt.name](opt.learning_rate)
    plain = {"bce": "binary_crossentropy", "mse": "mse", "mae": "mae", "l1": "mae"}
    if config.train.loss in plain:
        loss = plain[config.train.loss]
    else:  # the package's own (losses.ImageLoss): Charbonnier, SSIM + L1
        from autoencoder.losses import keras_loss

        loss = keras_loss(config.train.loss)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def contender(key: str, config_path: str, rounds: int) -> None:
    """Body of a contender process: set up, then train `rounds` epochs on the parent's word."""
    if key == "B":
        import keras  # noqa: F401  (first, so TensorFlow starts in the default environment)
    else:
        tensorflow()
    if key == "M":
        gflops = measure_matmul()
        sys.stdin.read()
        _send({"matmul_gflops": gflops, "peak_rss_bytes": _peak_rss()})
        return

    import keras

    config = load_config(config_path)
    # A's precision as `autoencoder train` chooses it (auto may time it), before A says it is
    # ready: the parent starts B and C only then, so their start-up does not slow the timing.
    policy = run_precision(config).policy if key == "A" else "float32"
    seed_everything(config.seed)
    splits = load_splits(config, download=False)
    samples = training_samples(config, len(splits.train_pixels))
    turns = _turn_callbacks(keras, samples)
    _send({"ready": True, "images": samples})
    if key == "A":
        model, report = _trainer(config, splits, rounds, turns, policy)
    else:
        model, report = _plain_fit(config, splits, rounds, turns), {}
    # Faster must not mean worse: the same test figure for every contender (a denoiser's from
    # the run's fixed test noise, a patch model's on the tiles of the test images it takes).
    x_test = splits.images("test")
    given = model_inputs(x_test, config)
    if config.data.patches is not None:
        size = tuple(config.data.patches.size)
        x_test, given = to_tiles(x_test, size), to_tiles(given, size)
    recon = model.predict(given, batch_size=1000, verbose=0)
    test_mse = float(((recon.astype("float64") - x_test) ** 2).mean())
    sys.stdin.read()
    _send({"peak_rss_bytes": _peak_rss(), "test_mse": test_mse, "precision": policy, **report})


def _trainer(config: Config, splits, rounds: int, turns, policy: str) -> tuple:
    """Contender A: trainer.fit itself, as `autoencoder train` calls it, into a scratch run.

    Returns the trained model and what the scratch run holds after it (its history.csv's epochs
    and its files), for the parent to check that A went through trainer.fit.
    """
    # Exactly `rounds` epochs: the parent waits for each, so early stopping must not end early.
    train = config.train.model_copy(
        update={
            "epochs": rounds,
            "early_stopping": config.train.early_stopping.model_copy(update={"patience": None}),
        }
    )
    config = config.model_copy(update={"train": train})
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch)
        (run_dir / "checkpoints").mkdir()
        model = fit(config, run_dir, splits, dtype=policy, extra_callbacks=turns)[0]
        run = {
            "history_epochs": len(read_history(run_dir)),
            "files": sorted(path.name for path in run_dir.iterdir()),
        }
    return model, {"scratch_run": run}


def training_samples(config: Config, images: int) -> int:
    """What an epoch trains on: the training images, or per_image patches of each."""
    patches = config.data.patches
    return images * (patches.per_image if patches is not None else 1)


def plain_patches(x: np.ndarray, patches, seed: int) -> np.ndarray:
    """per_image random crops of each image, drawn once: the array a plain script would hold."""
    (h, w), (ph, pw) = x.shape[1:3], patches.size
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(len(x)), patches.per_image)
    tops = rng.integers(0, h - ph + 1, len(index))
    lefts = rng.integers(0, w - pw + 1, len(index))
    return np.stack([x[i, t : t + ph, s : s + pw] for i, t, s in zip(index, tops, lefts)])


def plain_pairs(config: Config, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) a plain script fits: a denoiser's noise added once, at a seed of its
    own; patches cut from both at the same windows."""
    given = model_inputs(x, config, 2)
    if config.data.patches is not None:  # the model takes patches, not whole images
        given, x = (plain_patches(a, config.data.patches, config.seed) for a in (given, x))
    return given, x


def _plain_fit(config: Config, splits, rounds: int, turns):
    """Contenders B and C: model.fit on the float32 arrays a plain script holds."""
    model = _plain_model(config)
    given, x = plain_pairs(config, splits.images("train"))
    model.fit(
        given,
        x,
        batch_size=config.train.batch_size,
        epochs=rounds,
        shuffle=True,
        verbose=0,
        callbacks=list(turns),
    )
    return model
