"""`autoencoder bench`: this project's trainer against the plain Keras script, on one machine.

Three contenders train the same model on the same images at the same batch size:
  A  this project's trainer, as a user runs it (its settings, tf.data pipeline, checkpoints);
  B  the plain Keras script: model.compile, then model.fit on NumPy arrays, default environment;
  C  the same plain script given the environment settings this project applies.
Each runs in its own process (TF_ENABLE_ONEDNN_OPTS only counts before TensorFlow is imported),
and the parent lets them take turns one epoch at a time (A B C A B C ...), so that drift in a
shared machine's speed falls on all three alike and no two ever train at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoencoder import atomic, runs
from autoencoder.config import Config, load_config
from autoencoder.data import load_splits, make_dataset, resolve_input_shape
from autoencoder.errors import UserError
from autoencoder.model import build_models, keras_layers
from autoencoder.runtime import choose_precision, seed_everything, tensorflow
from autoencoder.shapes import forward_flops, plan_model
from autoencoder.trainer import compiled_models

log = logging.getLogger(__name__)

_DETAILS = ("start_gap", "cpu_seconds", "sys_seconds", "minor_faults", "major_faults")
CONTENDERS = {
    "A": "autoencoder trainer",
    "B": "plain Keras, defaults",
    "C": "plain Keras + project settings",
}
# What the project sets before TensorFlow starts; B runs without it.
PROJECT_ENV = ("TF_ENABLE_ONEDNN_OPTS",)


def run_bench(config: Config, epochs: int = 3, warmup: int = 1) -> tuple[Path, dict]:
    """Time contenders A, B and C in turns and write bench.json; return its directory and data.

    Args:
      config: the resolved config (model, data, batch size and optimizer are taken from it).
      epochs: timed epochs per contender (the median is reported).
      warmup: untimed epochs first (graph tracing, first allocations).
    """
    config = resolve_input_shape(config)
    plan = plan_model(config.model)
    bench_config = config.model_copy(update={"name": f"{config.name}-bench"})
    out_dir = runs.create_run_dir(bench_config)
    config_file = out_dir / "config.yaml"

    log.info("bench: %s", out_dir)
    log.info("measuring the float32 matrix-multiply rate ...")
    matmul = _child("M", config_file, warmup=0, epochs=0).finish()["matmul_gflops"]

    workers = {}
    try:
        for key in CONTENDERS:
            workers[key] = _child(key, config_file, warmup, epochs)
        ready = {key: w.receive() for key, w in workers.items()}
        images = ready["A"]["images"]
        log.info(
            f"{images:,} training images, batch {config.train.batch_size}; "
            f"{warmup} warm-up + {epochs} timed epochs each, in turns A B C"
        )
        times: dict[str, list[float]] = {key: [] for key in CONTENDERS}
        steps: dict[str, list[float]] = {key: [] for key in CONTENDERS}
        details: dict[str, list[dict]] = {key: [] for key in CONTENDERS}
        losses: dict[str, list[float]] = {key: [] for key in CONTENDERS}
        for round_ in range(warmup + epochs):
            for key, worker in workers.items():
                reply = worker.epoch()
                if round_ >= warmup:
                    times[key].append(reply["seconds"])
                    steps[key] += reply["steps"]
                    details[key].append({name: reply[name] for name in _DETAILS})
                losses[key].append(reply["loss"])
                log.info(
                    f"  epoch {round_ + 1} {key}: {reply['seconds']:.2f} s "
                    f"({reply['images'] / reply['seconds']:,.0f} images/s), loss {reply['loss']:.4f}"
                    + ("  (warm-up)" if round_ < warmup else "")
                )
        finals = {key: w.finish() for key, w in workers.items()}
    finally:
        for worker in workers.values():
            worker.kill()

    flops = 3 * sum(forward_flops(layer) for layer in plan.layers)  # forward + two backward
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine(),
        "config": config.name,
        "dataset": config.data.dataset,
        "images": images,
        "batch_size": config.train.batch_size,
        "warmup_epochs": warmup,
        "timed_epochs": epochs,
        "params": plan.total_params,
        "train_flops_per_image": flops,
        "matmul_gflops": matmul,
        "contenders": {},
    }
    batch = config.train.batch_size
    per_epoch = -(-images // batch)
    for key, label in CONTENDERS.items():
        seconds = statistics.median(times[key])
        rate = images / seconds
        full_steps = _full_steps(steps[key], images, batch)
        result["contenders"][key] = {
            "label": label,
            "epoch_seconds": times[key],
            "median_epoch_seconds": seconds,
            "images_per_second": rate,
            # A shared machine only ever slows an epoch down: the best epoch is the least
            # disturbed one, a second reading beside the median.
            "images_per_second_best": images / min(times[key]),
            # The median step is what a burst cannot move unless it covers half the steps; it
            # leaves out the per-epoch work (A's checkpoints, iterator start), which the
            # epoch figures keep.
            "step_seconds": steps[key],
            # Per timed epoch: wall seconds not spent in steps, and what the process did then.
            "epochs": [
                {"outside_steps": t - sum(steps[key][i * per_epoch : (i + 1) * per_epoch]), **d}
                for i, (t, d) in enumerate(zip(times[key], details[key]))
            ],
            "median_step_seconds": statistics.median(full_steps),
            "images_per_second_steps": batch / statistics.median(full_steps),
            "achieved_gflops": rate * flops / 1e9,
            "fraction_of_matmul": rate * flops / 1e9 / matmul,
            "peak_rss_bytes": finals[key]["peak_rss_bytes"],
            "test_mse": finals[key]["test_mse"],
            "precision": finals[key]["precision"],
            "losses": losses[key],
        }
    # The headline ratios are by median training step: the host's idle waits before some epochs
    # move epoch figures, never the steps (docs/performance.md). Epoch ratios stay beside them.
    for name, figure in (
        ("", "images_per_second_steps"),
        (" epochs", "images_per_second"),
        (" best", "images_per_second_best"),
    ):
        rate = {key: c[figure] for key, c in result["contenders"].items()}
        result[f"A/B{name}"], result[f"A/C{name}"] = rate["A"] / rate["B"], rate["A"] / rate["C"]
    atomic.write_json(out_dir / "bench.json", result)
    return out_dir, result


def _full_steps(steps: list[float], images: int, batch: int) -> list[float]:
    """The steps of full batches: a short last batch per epoch would read as a faster step."""
    per_epoch = -(-images // batch)
    if images % batch == 0 or per_epoch == 1:
        return steps
    return [t for i, t in enumerate(steps) if (i + 1) % per_epoch]


def format_bench(result: dict) -> str:
    """The table `autoencoder bench` prints, ending with A/C and then A/B by median step."""
    flops, matmul = result["train_flops_per_image"], result["matmul_gflops"]
    lines = [
        f"{result['config']} on {result['dataset']}: {result['images']:,} training images, batch "
        f"{result['batch_size']}, {result['params']:,} parameters, "
        f"{result['train_flops_per_image'] / 1e6:.1f} MFLOP per training image (3 x forward)",
        f"machine: {result['machine']}; float32 matmul {result['matmul_gflops']:.1f} GFLOP/s",
        "",
        f"{'contender':<36} {'precision':<14} {'images/s':>9} {'best':>6} {'steps':>6} "
        f"{'epoch s':>8} {'peak RSS':>9} {'GFLOP/s':>8} {'of matmul':>9} {'test MSE':>9}",
    ]
    for key, c in result["contenders"].items():
        lines.append(
            f"{key}  {c['label']:<33} {c['precision']:<14} "
            f"{c['images_per_second']:>9,.0f} {c['images_per_second_best']:>6,.0f} "
            f"{c['images_per_second_steps']:>6,.0f} {c['median_epoch_seconds']:>8.2f} "
            f"{c['peak_rss_bytes'] / 2**30:>5.2f} GiB {c['achieved_gflops']:>8.1f} "
            f"{c['fraction_of_matmul']:>9.0%} {c['test_mse']:>9.5f}"
        )
    lines += [
        "",
        f"images/s: median of {result['timed_epochs']} timed epochs each, after "
        f"{result['warmup_epochs']} warm-up; best: the fastest epoch; steps: batch size "
        f"/ the median training step of those epochs; GFLOP/s from the median epoch; "
        f"test MSE after all {result['warmup_epochs'] + result['timed_epochs']} epochs",
        f"median epochs: A/B = {result['A/B epochs']:.2f}, A/C = {result['A/C epochs']:.2f}; "
        f"best epochs: A/B = {result['A/B best']:.2f}, A/C = {result['A/C best']:.2f}",
        f"median steps: A/B = {result['A/B']:.2f}, A/C = {result['A/C']:.2f}; "
        f"A's median step runs at "
        f"{result['contenders']['A']['images_per_second_steps'] * flops / 1e9:.0f} GFLOP/s, "
        f"{result['contenders']['A']['images_per_second_steps'] * flops / 1e9 / matmul:.0%} "
        f"of matmul",
        "seconds outside the training steps, per timed epoch (start of the epoch, "
        "callbacks, checkpoints, and any stall): "
        + "; ".join(
            f"{key} " + " ".join(f"{e['outside_steps']:.2f}" for e in c["epochs"])
            for key, c in result["contenders"].items()
        ),
        f"A/C = {result['A/C']:.2f}",
        f"A/B = {result['A/B']:.2f}",
    ]
    return "\n".join(lines)


def layer_profile(config: Config, repeats: int = 7) -> str:
    """Where a training step's time goes: each layer alone, forward and forward + backward.

    Runs in this process with the project's settings, once in float32 and once in the policy
    `train.mixed_precision` picks here. A layer's time is the median of `repeats` timed steps at
    the config's batch size; GFLOP/s counts 3 x the forward FLOPs for forward + backward.
    """
    import numpy as np

    plan = plan_model(config.model)
    tf = tensorflow()
    batch = config.train.batch_size
    auto = choose_precision(config.train.mixed_precision)
    policies = ["float32"] + ([auto] if auto != "float32" else [])
    rows, totals = [], {}
    for policy in policies:
        total = 0.0
        for planned in plan.layers:
            if planned.merge or planned.part == "vae":
                continue  # joins (Add, Concatenate) and a VAE's sampling: not layers of one input
            layers = keras_layers(planned, policy)
            x = tf.constant(
                np.random.default_rng(0).random((batch, *planned.input_shape), dtype=np.float32)
            )
            y = x
            for layer in layers:  # eagerly once, so that the layers build their weights
                y = layer(y, training=True)
            weights = [w for layer in layers for w in layer.trainable_weights]
            # A random upstream gradient, as the layers above would send: with a plain sum the
            # backward pass of a layer's first convolution can collapse into something cheaper.
            upstream = tf.random.uniform(y.shape, seed=1)

            @tf.function
            def step(inputs, layers=layers, weights=weights, upstream=upstream):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    y = inputs
                    for layer in layers:
                        y = layer(y, training=True)
                    loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
                return tape.gradient(loss, [inputs, *weights])

            step(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                [g.numpy() for g in step(x) if g is not None]
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            total += seconds
            flops = 3 * forward_flops(planned) * batch
            rows.append(
                (
                    policy,
                    planned.block,
                    planned.kind,
                    planned.input_shape,
                    planned.output_shape,
                    seconds,
                    flops / seconds / 1e9 if flops else None,
                )
            )
        totals[policy] = total
    lines = [
        f"per-layer forward + backward at batch {batch} (median of {repeats}), {config.name}:",
        "",
        f"{'precision':<15} {'block':<6} {'layer':<16} {'input -> output':<22} {'ms':>8} "
        f"{'share':>6} {'GFLOP/s':>8}",
    ]
    for policy, block, kind, shape_in, shape_out, seconds, gflops in rows:
        shapes = f"{'x'.join(map(str, shape_in))} -> {'x'.join(map(str, shape_out))}"
        lines.append(
            f"{policy:<15} {block:<6} {kind:<16} {shapes:<22} {seconds * 1e3:>8.2f} "
            f"{seconds / totals[policy]:>6.0%} "
            f"{(f'{gflops:.3g}' if gflops else '-'):>8}"  # a tiny layer on busy cores is < 0.1
        )
    lines.append(
        "(every layer includes the gradient with respect to its input, which training "
        "skips for the first layer; GFLOP/s counts 3 x forward)"
    )
    for policy, total in totals.items():
        lines.append(
            f"{policy}: layers alone add up to {total * 1e3:.1f} ms a batch, "
            f"{batch / total:,.0f} images/s before the optimizer, loss and input pipeline"
        )
    return "\n".join(lines)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


# ---------------------------------------------------------------------------------------------
# The parent's side of a contender process


class _Child:
    """A contender process that trains one epoch each time it is told to."""

    def __init__(self, key: str, process: subprocess.Popen):
        self.key, self.process = key, process

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise UserError(
                f"bench: contender {self.key} ({CONTENDERS.get(self.key, 'matmul')}) "
                f"stopped with exit status {code}; run it alone with "
                f"`python -m autoencoder.bench {self.key} CONFIG` to see why"
            )
        return json.loads(line)

    def epoch(self) -> dict:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.receive()

    def finish(self) -> dict:
        self.process.stdin.close()
        reply = self.receive()
        self.process.wait()
        return reply

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _child(key: str, config_file: Path, warmup: int, epochs: int) -> _Child:
    env = dict(os.environ)
    if key == "B":
        for name in PROJECT_ENV:
            env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "autoencoder.bench", key, str(config_file), str(warmup + epochs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return _Child(key, process)


# ---------------------------------------------------------------------------------------------
# The contender's side (python -m autoencoder.bench KEY CONFIG EPOCHS)


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


def _measure_matmul() -> float:
    """Best float32 GFLOP/s of TensorFlow's 2048 x 2048 matmul, with the project's settings."""
    tf = tensorflow()
    n = 2048
    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            matmul(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * n**3 / best / 1e9


def _turn_callbacks(keras, images: int):
    """Two callbacks around the others: wait for "go" before an epoch, report after it.

    Each training step is timed too (Keras runs a step to its end before the batch-end
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
    loss = {"bce": "binary_crossentropy", "mse": "mse", "mae": "mae"}[config.train.loss]
    model.compile(optimizer=optimizer, loss=loss)
    return model


def contender(key: str, config_path: str, rounds: int) -> None:
    """Body of a contender process: set up, then train `rounds` epochs on the parent's word."""
    if key == "B":
        import keras  # noqa: F401  (first, so TensorFlow starts in the default environment)
    else:
        tensorflow()
    if key == "M":
        gflops = _measure_matmul()
        sys.stdin.read()
        _send({"matmul_gflops": gflops, "peak_rss_bytes": _peak_rss()})
        return

    import keras

    config = load_config(config_path)
    seed_everything(config.seed)
    splits = load_splits(config, download=False)
    pixels = splits.train_pixels
    batch = config.train.batch_size
    start, stop = _turn_callbacks(keras, len(pixels))
    _send({"ready": True, "images": len(pixels)})
    if key == "A":
        from autoencoder.callbacks import RunRecorder

        policy = choose_precision(config.train.mixed_precision)
        model = compiled_models(config, math.ceil(len(pixels) / batch), policy)[0]
        dataset = make_dataset(pixels, batch_size=batch, shuffle=True, seed=config.seed)
        with tempfile.TemporaryDirectory() as run_dir:
            (Path(run_dir) / "checkpoints").mkdir()
            model.fit(
                dataset,
                epochs=rounds,
                callbacks=[start, RunRecorder(run_dir, None), stop],
                verbose=0,
                shuffle=False,
            )  # the dataset shuffles, seeded, as in train
    else:
        policy = "float32"
        model = _plain_model(config)
        x = splits.images("train")  # the float32 array a plain script holds
        model.fit(
            x, x, batch_size=batch, epochs=rounds, shuffle=True, verbose=0, callbacks=[start, stop]
        )
    # Faster must not mean worse: the same test figure for every contender.
    x_test = splits.images("test")
    recon = model.predict(x_test, batch_size=1000, verbose=0)
    test_mse = float(((recon.astype("float64") - x_test) ** 2).mean())
    sys.stdin.read()
    _send({"peak_rss_bytes": _peak_rss(), "test_mse": test_mse, "precision": policy})


if __name__ == "__main__":
    # Keras and TensorFlow print to stdout now and then; the parent reads only our JSON lines.
    sys.stdout = sys.stderr
    contender(sys.argv[1], sys.argv[2], int(sys.argv[3]))
