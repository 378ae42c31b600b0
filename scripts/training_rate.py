"""Training images per second of a config's model and of variants of it, in turns.

    python scripts/training_rate.py CONFIG [--dtype mixed_bfloat16] [--rounds 3] [--xla]
        [--variant NAME KEY=VALUE[,KEY=VALUE...]] ...

Each variant (the config itself is "as is") is timed with the trainer's own measure (the median
training step of the compiled model on one batch, `trainer.training_rate`), the variants in
turns for several rounds: on a shared host the speed moves between minutes, and taking turns
spreads that over every variant instead of favouring whichever ran at a quiet moment. --xla
times each variant a second time compiled with XLA (`jit_compile=True`), which Keras leaves off
on a machine without a GPU.
"""

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder.config import load_config  # noqa: E402
from autoencoder.errors import UserError  # noqa: E402
from autoencoder.trainer import training_rate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--dtype", default="mixed_bfloat16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "SETS"))
    parser.add_argument("--xla", action="store_true", help="time each variant with XLA as well")
    args = parser.parse_args()
    variants = {"as is": []} | {name: sets.split(",") for name, sets in args.variant}
    try:
        configs = {name: load_config(args.config, sets) for name, sets in variants.items()}
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line and exit status 2, as the CLI's
        raise SystemExit(2) from None
    timed = [(name, config, "auto") for name, config in configs.items()]
    if args.xla:
        timed += [(f"{name}, XLA", config, True) for name, config in configs.items()]
    rates = {name: [] for name, _, _ in timed}
    for _ in range(args.rounds):
        for name, config, jit in timed:
            rate = training_rate(config, args.dtype, jit_compile=jit)
            rates[name].append(rate * config.train.batch_size)
    print(f"{args.config}, {args.dtype}: training images a second, {args.rounds} rounds in turns")
    for name, seen in rates.items():
        each = ", ".join(f"{r:.0f}" for r in seen)
        sets = variants[name.removesuffix(", XLA")]
        print(f"  {name:<24} median {statistics.median(seen):6.0f}   ({each})   {sets}")


if __name__ == "__main__":
    main()
