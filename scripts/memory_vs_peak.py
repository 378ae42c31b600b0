"""The memory plan against the peak RSS of real runs (docs/memory.md).

    python scripts/memory_vs_peak.py CONFIG [--set KEY=VALUE ...] [-- CONFIG [--set ...] ...]

Each config is trained with `autoencoder train` in a child process (its own output under a
temporary directory); the table gives the estimate `autoencoder shapes` prints and the child's
peak resident memory, and their difference. Every config is loaded and checked before any is
trained.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder import memory  # noqa: E402
from autoencoder.config import load_config  # noqa: E402
from autoencoder.data import resolve_input_shape  # noqa: E402
from autoencoder.errors import UserError, exit_on_user_error  # noqa: E402
from autoencoder.precision import planned  # noqa: E402
from autoencoder.shapes import plan_model  # noqa: E402

USAGE = "python scripts/memory_vs_peak.py CONFIG [--set KEY=VALUE ...] [-- CONFIG ...]"


def groups(argv: list[str]) -> list[tuple[str, list[str]]]:
    """Each group's config path and its KEY=VALUE overrides; anything else is a UserError."""
    found, current = [], []
    for arg in [*argv, "--"]:
        if arg != "--":
            current.append(arg)
            continue
        if not current:
            continue
        path, rest = current[0], current[1:]
        if path.startswith("-"):
            raise UserError(f"{path}: each group starts with a CONFIG file; usage: {USAGE}")
        sets, values = rest[0::2], rest[1::2]
        for i, flag in enumerate(sets):
            if flag != "--set":
                raise UserError(
                    f"{flag} after {path}: only --set KEY=VALUE pairs follow a CONFIG; "
                    f"put another config after --"
                )
            if i >= len(values):
                raise UserError(
                    f"--set after {path} has no KEY=VALUE; give one, as --set train.epochs=2"
                )
        found.append((path, values))
        current = []
    return found


def peak_of_child(args: list[str], what: str) -> int:
    """Peak RSS in bytes of `python -m autoencoder *args` (Linux reports KiB); `what` names it."""
    # The child imports this checkout's package, as this script does, not an installed copy.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the child's metrics table; this script prints its own
        os.execve(sys.executable, [sys.executable, "-m", "autoencoder", *args], env)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(
            f"error: training {what} failed (exit {code}); its message is above",
            file=sys.stderr,
        )
        raise SystemExit(code if code > 0 else 128 - code)
    return usage.ru_maxrss * 1024


def main() -> None:
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return
    if not argv:
        raise UserError(f"no config given; usage: {USAGE}")
    with tempfile.TemporaryDirectory() as out:
        # Every config is checked before the first is trained: a mistake in the last one is
        # not found after the others' minutes of training.
        checked = []
        for path, overrides in groups(argv):
            config = resolve_input_shape(load_config(path, [*overrides, f"output={out}"]))
            checked.append((path, overrides, config, plan_model(config.model)))
        labels = [
            " ".join([path, *(f"--set {o}" for o in overrides)])
            for path, overrides, _, _ in checked
        ]
        width = max(len("config"), *map(len, labels))
        print(f"{'config':<{width}} {'estimate':>9} {'peak RSS':>9} {'error':>7}")
        for label, (path, overrides, config, plan) in zip(labels, checked):
            sets = [x for o in [*overrides, f"output={out}"] for x in ("--set", o)]
            peak = peak_of_child(["train", path, "--quiet", *sets], label)
            # After the child: under auto its timed choice is cached, and `shapes` shows that.
            estimate = memory.run_memory(config, plan, planned(config)[0])
            error = (estimate.total - peak) / peak
            print(
                f"{label:<{width}} {estimate.total / 2**20:>6,.0f} MB {peak / 2**20:>6,.0f} MB"
                f" {error:>+7.0%}"
            )


if __name__ == "__main__":
    exit_on_user_error(main)
