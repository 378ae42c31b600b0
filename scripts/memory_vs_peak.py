"""The memory plan against the peak RSS of real runs (docs/memory.md).

    python scripts/memory_vs_peak.py CONFIG [--set KEY=VALUE ...] [-- CONFIG ...]

Each config is trained with `autoencoder train` in a child process (its own output under a
temporary directory); the table gives the estimate `autoencoder shapes` prints and the child's
peak resident memory, and their difference.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder import memory  # noqa: E402
from autoencoder.config import load_config  # noqa: E402
from autoencoder.precision import planned  # noqa: E402
from autoencoder.shapes import plan_model  # noqa: E402


def runs(argv: list[str]) -> list[list[str]]:
    groups, current = [], []
    for arg in argv:
        if arg == "--":
            groups.append(current)
            current = []
        else:
            current.append(arg)
    return [g for g in [*groups, current] if g]


def peak_of_child(args: list[str]) -> int:
    """Peak RSS in bytes of `python -m autoencoder *args` (Linux reports KiB)."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the child's metrics table; this script prints its own
        os.execv(sys.executable, [sys.executable, "-m", "autoencoder", "--quiet", *args])
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training failed: {' '.join(args)}")
    return usage.ru_maxrss * 1024


def main() -> None:
    print(f"{'config':<44} {'estimate':>9} {'peak RSS':>9} {'error':>7}")
    with tempfile.TemporaryDirectory() as out:
        for group in runs(sys.argv[1:]):
            path, overrides = group[0], [a for a in group[1:] if a != "--set"]
            overrides.append(f"output={out}")
            config = load_config(path, overrides)
            plan = plan_model(config.model)
            sets = [x for o in overrides for x in ("--set", o)]
            peak = peak_of_child(["train", path, *sets])
            # After the child: under auto its timed choice is cached, and `shapes` shows that.
            estimate = memory.run_memory(config, plan, planned(config)[0])
            label = " ".join([Path(path).name, *overrides[:-1]])
            error = (estimate.total - peak) / peak
            print(
                f"{label:<44} {estimate.total / 2**20:>6,.0f} MB {peak / 2**20:>6,.0f} MB {error:>+7.0%}"
            )


if __name__ == "__main__":
    main()
