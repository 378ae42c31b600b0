"""The parent of `autoencoder bench`: it starts the contenders, gives them turns, writes bench.json."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from autoencoder import atomic, runs, runtime
from autoencoder.config import Config
from autoencoder.data import load_splits, resolve_input_shape
from autoencoder.errors import UserError
from autoencoder.shapes import forward_flops, plan_model

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
    # Here, before the folder is made and the contenders start (they never download): data that
    # cannot be found is one line, not a contender's traceback.
    load_splits(config)
    bench_config = config.model_copy(update={"name": f"{config.name}-bench"})
    out_dir = runs.create_run_dir(bench_config)
    for unused in ("checkpoints", "figures"):  # a run's folders: the bench trains in scratch runs
        (out_dir / unused).rmdir()
    config_file = out_dir / "config.yaml"

    log.info("bench: %s", out_dir)
    log.info("measuring the float32 matrix-multiply rate ...")
    matmul = start_contender("M", config_file, warmup=0, epochs=0).finish()["matmul_gflops"]

    # A patch model trains on per_image crops of each image: the rates count those.
    patches = config.data.patches
    unit = "images" if patches is None else f"{patches.size[0]}x{patches.size[1]} patches"
    turns = _race(config_file, warmup, epochs, config.train.batch_size, unit)
    flops = 3 * sum(forward_flops(layer) for layer in plan.layers)  # forward + two backward
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine(),
        "config": config.name,
        "dataset": config.data.dataset,
        "images": turns.images,
        "samples": unit,
        "batch_size": config.train.batch_size,
        "warmup_epochs": warmup,
        "timed_epochs": epochs,
        "params": plan.total_params,
        "train_flops_per_image": flops,
        "matmul_gflops": matmul,
        "contenders": {
            key: _figures(turns, key, config.train.batch_size, flops, matmul) for key in CONTENDERS
        },
    }
    # A trains through trainer.fit: its scratch run's history.csv has every epoch, beside model.keras.
    result["contenders"]["A"]["scratch_run"] = turns.finals["A"]["scratch_run"]
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


def _by_contender() -> dict[str, list]:
    return {key: [] for key in CONTENDERS}


@dataclass
class _Turns:
    """What the contenders reported, by contender: each timed epoch's seconds, its steps'
    seconds and process details, every epoch's loss, and the reply to `finish`."""

    images: int
    times: dict[str, list[float]] = field(default_factory=_by_contender)
    steps: dict[str, list[float]] = field(default_factory=_by_contender)
    details: dict[str, list[dict]] = field(default_factory=_by_contender)
    losses: dict[str, list[float]] = field(default_factory=_by_contender)
    finals: dict[str, dict] = field(default_factory=dict)


def _race(config_file: Path, warmup: int, epochs: int, batch: int, unit: str) -> _Turns:
    """Start the contenders, give them warmup + epochs epochs in turns A B C, stop them."""
    workers = {}
    try:
        # A first, alone until it is ready: it may time its precision (contender.py).
        workers["A"] = start_contender("A", config_file, warmup, epochs)
        turns = _Turns(workers["A"].receive()["images"])
        others = [key for key in CONTENDERS if key != "A"]
        for key in others:
            workers[key] = start_contender(key, config_file, warmup, epochs)
        for key in others:
            workers[key].receive()  # ready
        log.info(
            f"{turns.images:,} training {unit}, batch {batch}; "
            f"{warmup} warm-up + {_epochs(epochs, 'timed')} each, in turns A B C"
        )
        for round_ in range(warmup + epochs):
            for key, worker in workers.items():
                reply = worker.epoch()
                if round_ >= warmup:
                    turns.times[key].append(reply["seconds"])
                    turns.steps[key] += reply["steps"]
                    turns.details[key].append({name: reply[name] for name in _DETAILS})
                turns.losses[key].append(reply["loss"])
                log.info(
                    f"  epoch {round_ + 1} {key}: {reply['seconds']:.2f} s "
                    f"({reply['images'] / reply['seconds']:,.0f} images/s), loss {reply['loss']:.4f}"
                    + ("  (warm-up)" if round_ < warmup else "")
                )
        turns.finals = {key: w.finish() for key, w in workers.items()}
    finally:
        for worker in workers.values():
            worker.kill()
    return turns


def _figures(turns: _Turns, key: str, batch: int, flops: float, matmul: float) -> dict:
    """Contender `key`'s entry of bench.json: its rates, steps, memory and test MSE."""
    images, times, steps = turns.images, turns.times[key], turns.steps[key]
    seconds = statistics.median(times)
    rate = images / seconds
    full_steps = _full_steps(steps, images, batch)
    per_epoch = -(-images // batch)
    step_images = min(batch, images)  # a training split smaller than a batch: one short step
    return {
        "label": CONTENDERS[key],
        "epoch_seconds": times,
        "median_epoch_seconds": seconds,
        "images_per_second": rate,
        # A shared machine only ever slows an epoch down: the best epoch is the least
        # disturbed one, a second reading beside the median.
        "images_per_second_best": images / min(times),
        # The median step is what a burst cannot move unless it covers half the steps; it
        # leaves out the per-epoch work (A's checkpoints, iterator start), which the
        # epoch figures keep.
        "step_seconds": steps,
        # Per timed epoch: wall seconds not spent in steps, and what the process did then.
        "epochs": [
            {"outside_steps": t - sum(steps[i * per_epoch : (i + 1) * per_epoch]), **d}
            for i, (t, d) in enumerate(zip(times, turns.details[key]))
        ],
        "median_step_seconds": statistics.median(full_steps),
        "images_per_second_steps": step_images / statistics.median(full_steps),
        "achieved_gflops": rate * flops / 1e9,
        "fraction_of_matmul": rate * flops / 1e9 / matmul,
        **{name: turns.finals[key][name] for name in ("peak_rss_bytes", "test_mse", "precision")},
        "losses": turns.losses[key],
    }


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
        f"{result['config']} on {result['dataset']}: {result['images']:,} training "
        f"{result.get('samples', 'images')}, batch "
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
        f"images/s: median of {_epochs(result['timed_epochs'], 'timed')} each"
        f"{_after_warmup(result['warmup_epochs'])}; best: the fastest epoch; steps: batch size "
        f"/ the median training step of those epochs; GFLOP/s from the median epoch; "
        f"test MSE after {_epochs(result['warmup_epochs'] + result['timed_epochs'], 'trained')}",
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


def _machine() -> str:
    return (
        f"{runtime.cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}"
    )


# ---------------------------------------------------------------------------------------------
# The parent's side of a contender process


def _after_warmup(count: int) -> str:
    """ ", after 2 warm-up epochs", or nothing when none was run."""
    return f", after {_epochs(count, 'warm-up')}" if count else ""


def _epochs(count: int, kind: str) -> str:
    """ "1 timed epoch", "3 timed epochs"."""
    return f"{count} {kind} epoch{'s' if count != 1 else ''}"


class ContenderProcess:
    """A contender process that trains one epoch each time it is told to."""

    def __init__(self, key: str, process: subprocess.Popen, log_path: Path):
        self.key, self.process, self.log_path = key, process, log_path

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise UserError(
                f"bench: contender {self.key} ({CONTENDERS.get(self.key, 'matmul')}) "
                f"stopped with exit status {code}; its messages are in {self.log_path}"
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


def start_contender(key: str, config_file: Path, warmup: int, epochs: int) -> ContenderProcess:
    """Start contender `key` (or "M", the matmul measurement) for warmup + epochs epochs."""
    env = dict(os.environ)
    if key == "B":
        for name in PROJECT_ENV:
            env.pop(name, None)
    # Its stderr (TensorFlow's start-up lines, a scratch run's warnings) to a file beside
    # bench.json: the terminal shows the bench's own lines, the file what a failure needs.
    log_path = config_file.parent / f"contender-{key}.log"
    with open(log_path, "w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autoencoder.bench",
                key,
                str(config_file),
                str(warmup + epochs),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    return ContenderProcess(key, process, log_path)
