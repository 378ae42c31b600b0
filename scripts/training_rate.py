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

import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder.cli import Parser, count  # noqa: E402
from autoencoder.config import load_config  # noqa: E402
from autoencoder.errors import UserError, exit_on_user_error  # noqa: E402
from autoencoder.precision import POLICIES  # noqa: E402

# A comma starts a new override only where a KEY= follows it: values such as [0.1, 0.3] or
# {level: 0.2, kind: gaussian} have commas of their own.
NEXT_SET = re.compile(r",(?=\s*[A-Za-z_][\w.]*=)")


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("config", metavar="CONFIG", help="the YAML config timed as is")
    parser.add_argument(
        "--dtype",
        default="mixed_bfloat16",
        choices=POLICIES,
        help="the Keras dtype policy every variant trains in (default: mixed_bfloat16)",
    )
    parser.add_argument(
        "--rounds",
        type=count(1),
        default=3,
        help="times each variant is timed, in turns (default 3)",
    )
    parser.add_argument(
        "--variant",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "SETS"),
        help="also time the config with these overrides, KEY=VALUE[,KEY=VALUE...] (repeatable)",
    )
    parser.add_argument("--xla", action="store_true", help="time each variant with XLA as well")
    args = parser.parse_args()
    variants = {"as is": []} | {
        name: [s.strip() for s in NEXT_SET.split(sets)] for name, sets in args.variant
    }
    configs = {}
    for name, sets in variants.items():
        try:
            configs[name] = load_config(args.config, sets)
        except UserError as exc:
            if not sets:
                raise
            where = f"--variant {name}: "
            raise UserError("\n".join(where + line for line in str(exc).splitlines())) from None
    from autoencoder.trainer import training_rate  # TensorFlow, once the arguments are good

    timed = [(name, config, "auto") for name, config in configs.items()]
    if args.xla:
        timed += [(f"{name}, XLA", config, True) for name, config in configs.items()]
    rates = {name: [] for name, _, _ in timed}
    for _ in range(args.rounds):
        for name, config, jit in timed:
            rate = training_rate(config, args.dtype, jit_compile=jit)
            rates[name].append(rate * config.train.batch_size)
    rounds = f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
    print(f"{args.config}, {args.dtype}: training images a second, {rounds} in turns")
    for name, seen in rates.items():
        each = ", ".join(f"{r:.0f}" for r in seen)
        sets = variants[name.removesuffix(", XLA")]
        print(f"  {name:<24} median {statistics.median(seen):6.0f}   ({each})   {sets}")


if __name__ == "__main__":
    exit_on_user_error(main)
