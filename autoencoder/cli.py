"""Command line: argument parsing only; each subcommand calls one function of the package.

TensorFlow is imported by the commands that need it, never here, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from autoencoder.errors import UserError

EPILOG = """examples:
  autoencoder train configs/quickstart.yaml
  autoencoder train configs/bottleneck32.yaml --set data.dataset=mnist --set train.epochs=5
  autoencoder shapes configs/seed_tutorial.yaml
  autoencoder data configs/quickstart.yaml --set data.dataset=mnist
  autoencoder evaluate outputs/quickstart/20261121-140000
  autoencoder denoise configs/denoise_gaussian.yaml
  autoencoder bench configs/seed_tutorial.yaml
"""


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable; "
        "values are parsed as YAML)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    parser = argparse.ArgumentParser(
        prog="autoencoder",
        parents=[common],
        description="Train, inspect and denoise with convolutional autoencoders (TensorFlow / Keras 3).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model from a YAML config",
        description="Train from a config and write a run directory under "
        "<output>/<name>/<timestamp>/ with the resolved config, models, "
        "history, metrics and figures.",
    )
    _config_args(p)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "data",
        parents=[common],
        help="check the data a config would use, without training",
        description="Print the data source, split sizes, class counts and mean pixel.",
    )
    _config_args(p)

    p = sub.add_parser(
        "shapes",
        parents=[common],
        help="print the layer-by-layer shape plan of a model, without training",
        description="Plan every layer's shape, parameters and the transposed-"
        "convolution arithmetic; refuse impossible decoders.",
    )
    _config_args(p)

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate a trained run on the test or validation split",
        description="Compute MSE, MAE, PSNR, SSIM, BCE (and its floor), per-class "
        "MSE and a PCA baseline; write metrics.json.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=["test", "val"], default="test")

    p = sub.add_parser(
        "denoise",
        parents=[common],
        help="denoising sweep: one model per "
        "training noise level, scored at every "
        "evaluation level",
        description="Train a model per denoise.train_levels on noisy inputs with "
        "clean targets, score each at every denoise.eval_levels "
        "against the noisy input and the best classical filter; write "
        "results.csv, results.md and figures/.",
    )
    _config_args(p)
    p.add_argument(
        "--resume",
        metavar="SWEEP_DIR",
        help="continue an interrupted sweep; finished models are not retrained",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "bench",
        parents=[common],
        help="time this trainer against the plain Keras script on the same model and data",
        description="Train the config's model in three processes that take turns "
        "an epoch at a time: (A) this project's trainer, (B) plain "
        "model.fit on NumPy arrays with default settings, (C) the same "
        "with this project's settings. Print images/s, peak memory, "
        "achieved FLOP/s against a measured matmul rate; write "
        "bench.json; end with `A/B = <ratio>`.",
    )
    _config_args(p)
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="timed epochs per contender (default 3; the median is reported)",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    p.add_argument(
        "--layers",
        action="store_true",
        help="instead: time each layer alone, forward + backward (a profile)",
    )

    p = sub.add_parser(
        "plot",
        parents=[common],
        help="(re)draw a run's figures",
        description="Write reconstructions.png, loss.png, worst.png and "
        "error_by_class.png into RUN_DIR/figures/.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    return parser


def run(args: argparse.Namespace) -> int:
    """Dispatch one parsed command."""
    if args.command == "train":
        from autoencoder.config import load_config
        from autoencoder.runs import check_resume
        from autoencoder.shapes import plan_model

        # Before TensorFlow (seconds to import), so that these errors come at once.
        config = load_config(args.config, args.overrides)
        plan_model(config.model)
        if args.resume:
            check_resume(args.resume, config)
        from autoencoder.train import train

        train(config, resume=args.resume, quiet=args.quiet)
    elif args.command == "data":
        from autoencoder.config import load_config
        from autoencoder.data import describe

        print(describe(load_config(args.config, args.overrides)))
    elif args.command == "shapes":
        from autoencoder.config import load_config
        from autoencoder.shapes import format_plan, plan_model

        print(format_plan(plan_model(load_config(args.config, args.overrides).model)))
    elif args.command == "evaluate":
        from autoencoder.evaluate import evaluate_run

        evaluate_run(args.run_dir, split=args.split)
    elif args.command == "denoise":
        from autoencoder.config import load_config

        config = load_config(args.config, args.overrides)
        from autoencoder.denoise import run_sweep

        run_sweep(config, resume=args.resume, quiet=args.quiet)
    elif args.command == "bench":
        from autoencoder.config import load_config
        from autoencoder.shapes import plan_model

        config = load_config(args.config, args.overrides)
        plan_model(config.model)
        if args.epochs < 1 or args.warmup < 0:
            raise UserError(
                f"bench: --epochs must be at least 1 and --warmup at least 0, got "
                f"{args.epochs} and {args.warmup}"
            )
        from autoencoder.bench import layer_profile, run_bench

        if args.layers:
            print(layer_profile(config))
        else:
            run_bench(config, epochs=args.epochs, warmup=args.warmup, quiet=args.quiet)
    elif args.command == "plot":
        from autoencoder.plots import plot_run

        plot_run(args.run_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one clear line and exit status 2 for user mistakes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        return run(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:
        # A file-system failure outside the wrapped writes (a read-only run directory for
        # `evaluate` or `plot`, say): still one line.
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"error: {where}{exc.strerror or exc}; check that the path exists, is writable and "
            f"that the disk has space",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: 130 (128 + SIGINT), as shells expect
        if debug:
            traceback.print_exc()
        print(f"interrupted {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
