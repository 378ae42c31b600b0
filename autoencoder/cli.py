"""Command line: a table of subcommands, each a short function calling the package.

Importing this module, `--help`, `shapes` and config errors never import TensorFlow: the
modules below load it inside the functions that need it.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
import traceback

from autoencoder import api, memory
from autoencoder.anomaly import format_report
from autoencoder.anomaly_benchmark import BENCHMARK_PRESET, format_benchmark
from autoencoder.bench import format_bench, layer_profile, run_bench
from autoencoder.comparison import OUTPUT as COMPARE_OUTPUT
from autoencoder.config import load_config
from autoencoder.config.reference import json_schema_text, reference_markdown
from autoencoder.data import data_shape, describe, resolve_input_shape
from autoencoder.denoise import results_markdown
from autoencoder.embed import PROBE_LIMIT, format_embed
from autoencoder.errors import RunFailed, UserError, reader
from autoencoder.evaluate import format_metrics
from autoencoder.export import FORMATS, format_export
from autoencoder.listing import COLUMNS, format_runs, runs_json
from autoencoder.precision import planned as planned_precision
from autoencoder.predict import format_summary
from autoencoder.shapes import format_plan
from autoencoder.tuning import format_study, tune

EPILOG = """examples:
  autoencoder train configs/quickstart.yaml
  autoencoder train configs/bottleneck32.yaml --set data.dataset=mnist --set train.epochs=5
  autoencoder resume outputs/quickstart/20261121-140000
  autoencoder shapes configs/seed_tutorial.yaml
  autoencoder data configs/quickstart.yaml --set data.dataset=mnist
  autoencoder evaluate outputs/quickstart/20261121-140000
  autoencoder denoise configs/denoise_gaussian.yaml
  autoencoder bench configs/seed_tutorial.yaml
  autoencoder predict outputs/quickstart/20261121-140000 scans/ --out cleaned/
  autoencoder export outputs/quickstart/20261121-140000 --format onnx
  autoencoder embed outputs/bottleneck32/20261121-140000
  autoencoder anomaly configs/anomaly.yaml --set anomaly.normal=[3]
  autoencoder anomaly --benchmark mnist
  autoencoder tune configs/quickstart.yaml --space space.yaml --trials 20 --timeout 60m
  autoencoder runs outputs --sort psnr
  autoencoder compare outputs/quickstart/20261121-140000 outputs/quickstart/20261122-090000
  autoencoder schema > docs/config.schema.json
"""


# ---------------------------------------------------------------------------------------------
# The commands: each parses nothing, calls one function, prints its result.


def _config(args):
    return load_config(args.config, args.overrides)


def cmd_train(args) -> None:
    _print_run(api.train(args.config, args.overrides, resume=args.resume))


def cmd_resume(args) -> None:
    _print_run(api.resume(args.run_dir, overrides=args.overrides))


def _print_run(run) -> None:
    if run is None:  # a worker of a cluster: the chief evaluates and writes the run
        print("worker done; the chief wrote the run directory")
        return
    print(format_metrics(run.metrics, "test"))
    print(f"figures: {run.path / 'figures'}")


def cmd_data(args) -> None:
    print(describe(_config(args)))


def cmd_shapes(args) -> None:
    config = _config(args)
    if "input_shape" not in config.model.model_fields_set:
        config = resolve_input_shape(config)
    plan = api.plan(config)
    dtype, note = planned_precision(config)  # what training picks without a GPU; times nothing
    table = format_plan(plan, denoising=config.data.noise is not None)
    print(table + "\n\n" + memory.format_memory(memory.run_memory(config, plan, dtype)))
    if note:
        print(note)
    _note_if_train_refuses(config)


def _note_if_train_refuses(config) -> None:
    """Say so when the given model.input_shape is not what the data gives; nothing when the
    data is not on this machine (a plan may be made for data elsewhere)."""
    try:
        shape = tuple(data_shape(config))
    except UserError:
        return
    if shape != tuple(config.model.input_shape):
        logging.getLogger(__name__).warning(
            "note: planned as given, %s; the data gives the model %s, so train refuses this "
            "config (--set model.input_shape=null plans the data's)",
            *("x".join(map(str, config.model.input_shape)), "x".join(map(str, shape))),
        )
    elif config.data.dataset == "folder" and not config.data.image_size and not config.data.patches:
        # Only the first image is read here: a scan of every file is training's first step.
        logging.getLogger(__name__).info(
            "note: %dx%d images, as the folder's first image gives them; train reads every "
            "image and refuses a folder of mixed sizes (data.image_size: [H, W] resizes them all)",
            *shape[:2],
        )


def cmd_evaluate(args) -> None:
    print(format_metrics(api.load_run(args.run_dir).evaluate(args.split), args.split))


def cmd_plot(args) -> None:
    for path in api.load_run(args.run_dir).plot():
        print(path)


def cmd_denoise(args) -> None:
    config = _config(args)
    sweep_dir, rows = api.denoise_sweep(config, resume=args.resume)
    print(results_markdown(rows, config))
    print(f"results and figures: {sweep_dir}")


def cmd_bench(args) -> None:
    config = _config(args)
    if args.layers:
        print(layer_profile(config))
        return
    out_dir, result = run_bench(config, epochs=args.epochs, warmup=args.warmup)
    print(f"wrote {out_dir / 'bench.json'}")
    print(format_bench(result))  # its last line: A/B by median step


def cmd_predict(args) -> None:
    # Run(), not load_run(): predict names a folder that is not a run in its own words.
    summary = api.Run(args.run_dir).predict(
        args.inputs,
        args.out,
        overwrite=args.overwrite,
        noise=args.noise,
        threshold=args.threshold,
        skip_bad=args.skip_bad,
    )
    print(format_summary(summary))


def cmd_anomaly(args) -> None:
    if args.benchmark:
        config = load_config(args.config or BENCHMARK_PRESET, args.overrides)
        bench_dir, rows = api.one_class_benchmark(config, args.benchmark)
        print(format_benchmark(rows))
        print(f"results: {bench_dir / 'results.md'}")
        return
    if args.config is None:
        raise UserError(
            "anomaly: no CONFIG given; name one (e.g. configs/anomaly.yaml --set "
            "anomaly.normal=[3]), or run the one-class benchmark: --benchmark mnist"
        )
    run, result = api.detect_anomalies(_config(args))
    print(format_report(result))
    print(f"figures: {run.path / 'figures'}  scores: {run.path / 'anomaly_scores.csv'}")


def cmd_schema(args) -> None:
    sys.stdout.write(reference_markdown() if args.markdown else json_schema_text())


def cmd_export(args) -> None:
    target, manifest = api.Run(args.run_dir).export(args.format, overwrite=args.overwrite)
    print(format_export(manifest, target))


def cmd_embed(args) -> None:
    print(format_embed(api.Run(args.run_dir).embed(args.probe_limit)))


def cmd_tune(args) -> None:
    options = {k: getattr(args, k) for k in ("trials", "timeout", "resume", "pruner", "storage")}
    tuned = tune(args.config, args.space, args.overrides, **options)
    print(format_study(tuned.study, tuned.path, tuned.metric))


def cmd_runs(args) -> None:
    rows = api.list_runs(args.dir, args.sort, args.reverse)
    print(runs_json(rows) if args.json else format_runs(rows, args.dir))


def cmd_compare(args) -> None:
    out_dir, comparison = api.compare(args.runs, args.out)
    print(comparison.table)
    print(f"figures and compare.md: {out_dir}")


# ---------------------------------------------------------------------------------------------
# The parser


def count(minimum: int):
    """An argparse type: a whole number of at least `minimum` (the scripts' counts too)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file (see configs/)")
    _overrides(p)


def _overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable; values are YAML)",
    )


def _train_args(p):
    _config_args(p)
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run (same as `resume`)"
    )


def _resume_args(p):
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `train`")
    _overrides(p)


def _run_dir_args(p):
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `train`")


def _evaluate_args(p):
    _run_dir_args(p)
    p.add_argument("--split", choices=["test", "val"], default="test")


def _denoise_args(p):
    _config_args(p)
    p.add_argument(
        "--resume", metavar="SWEEP_DIR", help="continue a sweep; finished models are reused"
    )


def _bench_args(p):
    _config_args(p)
    p.add_argument(
        "--epochs", type=count(1), default=3, help="timed epochs per contender (default 3)"
    )
    p.add_argument("--warmup", type=count(0), default=1, help="untimed epochs first (default 1)")
    p.add_argument(
        "--layers", action="store_true", help="instead: time each layer alone (a profile)"
    )


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _predict_args(p):
    _run_dir_args(p)
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders of them, .npy/.npz arrays"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out image files that cannot be read (else the first stops the prediction)",
    )
    p.add_argument(
        "--noise",
        type=_level,
        metavar="LEVEL",
        help="add the run's noise kind at LEVEL to each input first (for demonstrations)",
    )
    p.add_argument(
        "--threshold",
        type=_level,
        metavar="SCORE",
        help="flag images scoring above SCORE (the run's anomaly score), not the run's threshold",
    )


def _anomaly_args(p):
    p.add_argument(
        "config", nargs="?", help="YAML config file (with --benchmark: configs/anomaly.yaml)"
    )
    p.add_argument(
        "--benchmark",
        choices=["mnist", "fashion_mnist", "mnist_sample"],
        help="one-class protocol: each class alone as the normal one, a table of AUROCs",
    )
    _overrides(p)


def _export_args(p):
    _run_dir_args(p)
    p.add_argument("--format", choices=FORMATS, default="saved_model", help="default: saved_model")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export")


def _embed_args(p):
    _run_dir_args(p)
    p.add_argument(
        "--probe-limit",
        type=count(100),
        default=PROBE_LIMIT,
        metavar="N",
        help=f"fit each probe on at most N train-split images (default {PROBE_LIMIT:,})",
    )


def _tune_args(p):
    _config_args(p)
    p.add_argument(
        "--space", metavar="SPACE.yaml", help="the search (as the config's tune: section); "
        "default: the config's tune: section",
    )  # fmt: skip
    p.add_argument(
        "--trials",
        type=count(1),
        metavar="N",
        help="the study's total trials (default tune.trials)",
    )
    p.add_argument("--timeout", metavar="DURATION", help="stop starting trials after 90s, 60m, 2h")
    p.add_argument(
        "--resume", metavar="STUDY_DIR", help="go on with a study, or join it from another process"
    )
    p.add_argument(
        "--pruner", choices=["median", "hyperband", "none"], help="default tune.pruner (median)"
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna database URL (default sqlite:///STUDY_DIR/study.db)",
    )


def _runs_args(p):
    p.add_argument(
        "dir", nargs="?", default="outputs", metavar="DIR", help="where to look (default outputs)"
    )
    p.add_argument(
        "--sort",
        choices=list(COLUMNS),
        default="started",
        help="the column to sort by; psnr and ssim largest first, the others smallest first (the best run first)",
    )
    p.add_argument(
        "--reverse", action="store_true", help="the other way round (missing still last)"
    )
    p.add_argument("--json", action="store_true", help="a JSON list of objects instead")


def _compare_args(p):
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more finished run directories")
    p.add_argument(
        "--out", metavar="DIR", help=f"a new folder to write (default {COMPARE_OUTPUT}/<timestamp>)"
    )


def _schema_args(p):
    p.add_argument(
        "--markdown", action="store_true", help="instead: the Markdown reference of every key"
    )


# name: (arguments, function, one-line help, description)
COMMANDS = {
    "train": (
        _train_args,
        cmd_train,
        "train a model from a YAML config",
        "Train from a config and write a run directory under <output>/<name>/<timestamp>/ "
        "with the resolved config, models, history, metrics and figures.",
    ),
    "resume": (
        _resume_args,
        cmd_resume,
        "continue a run from its last completed epoch",
        "Continue an interrupted (or finished) run with its own config.yaml; "
        "--set train.epochs=N or train.minutes=M trains it further.",
    ),
    "data": (
        _config_args,
        cmd_data,
        "check the data a config would use, without training",
        "Print the data source, split sizes, class counts and mean pixel.",
    ),
    "shapes": (
        _config_args,
        cmd_shapes,
        "print the layer-by-layer shape plan of a model, without training",
        "Plan every layer's shape, parameters and the transposed-convolution arithmetic; "
        "refuse impossible decoders.",
    ),
    "evaluate": (
        _evaluate_args,
        cmd_evaluate,
        "evaluate a trained run on the test or validation split",
        "Compute MSE, MAE, PSNR, SSIM, BCE (and its floor), per-class MSE and a PCA "
        "baseline; merge them into metrics.json.",
    ),
    "plot": (
        _run_dir_args,
        cmd_plot,
        "(re)draw a run's figures",
        "Write reconstructions.png, loss.png, worst.png and error_by_class.png into "
        "RUN_DIR/figures/ (a VAE's samples too; an anomaly run's anomaly_*.png, its test "
        "images scored again).",
    ),
    "denoise": (
        _denoise_args,
        cmd_denoise,
        "denoising sweep: one model per training noise level, scored at every evaluation level",
        "Train a model per denoise.train_levels on noisy inputs with clean targets (and, with "
        "denoise.blind, one blind model on levels drawn from that range), score each at every "
        "denoise.eval_levels against the noisy input and the best classical filter; write "
        "results.csv, results.md and figures/.",
    ),
    "bench": (
        _bench_args,
        cmd_bench,
        "time this trainer against the plain Keras script on the same model and data",
        "Train the config's model in three processes that take turns an epoch at a time: (A) "
        "this project's trainer, (B) plain model.fit on NumPy arrays with default settings, (C) "
        "the same with this project's settings. Print images/s, peak memory, achieved FLOP/s "
        "against a measured matmul rate; write bench.json; end with `A/B = <ratio>` by median "
        "training step.",
    ),
    "predict": (
        _predict_args,
        cmd_predict,
        "reconstruct your own images or arrays with a trained run's model",
        "Run a trained model on image files, folders and .npy/.npz arrays: outputs keep the "
        "input names under --out (PNG, or .npy/.npz), images larger than the model are tiled "
        "with overlap and blended, smaller ones padded; scores.csv holds each image's "
        "reconstruction error. Nothing that exists is replaced without --overwrite.",
    ),
    "anomaly": (
        _anomaly_args,
        cmd_anomaly,
        "anomaly detection: train on the normal classes, score every test image",
        "Train on anomaly.normal's classes only, score each test image by its reconstruction "
        "error (anomaly.score), report ROC-AUC and average precision of the other classes "
        "against the normal ones, choose the threshold on normal validation images "
        "(anomaly.threshold) and save it with the run for `predict`; figures of the scores, "
        "the ROC curve and the extremes. --benchmark: the one-class protocol over every class.",
    ),
    "export": (
        _export_args,
        cmd_export,
        "export a run's models as a SavedModel, LiteRT (.tflite) or ONNX file",
        "Write the autoencoder, encoder and decoder under RUN_DIR/export/<format>/ with "
        "Keras's model.export(), load each back with its own runtime, compare its outputs on "
        "test images with the Keras model's and refuse beyond the tolerance; print the input "
        "and output names and shapes, and write them to manifest.json.",
    ),
    "embed": (
        _embed_args,
        cmd_embed,
        "what a run's code knows: linear probes, a map of the codes, interpolations",
        "Encode the train and test splits with encoder.keras (a VAE: its mean); fit a linear "
        "probe (logistic regression) on the train codes and score it on the test codes, beside "
        "the same probe on raw pixels, on PCA of the pixels and on shuffled labels; write "
        "codes.npy, labels.npy, the accuracies into metrics.json, and figures/latent.png (PCA "
        "and t-SNE maps) and figures/latent_interpolation.png (decoded between test codes).",
    ),
    "tune": (
        _tune_args,
        cmd_tune,
        "search config values with Optuna: each trial an ordinary run",
        "Search the config keys named by a space (--space SPACE.yaml, or the config's tune: "
        "section) with Optuna's sampler; prune unpromising trials after each epoch; each trial "
        "is a run under STUDY_DIR/trials/. Write trials.csv, best.yaml, results.md and figures/ "
        "in STUDY_DIR; --resume STUDY_DIR goes on after an interruption, or joins another "
        "worker (docs/experiments.md).",
    ),
    "runs": (
        _runs_args,
        cmd_runs,
        "list the runs under a folder: status, epochs, minutes, best val/loss, test metrics",
        "One line per run directory under DIR (also the runs inside sweeps and benchmarks): "
        "name, started, status (finished, unfinished, failed, in use, damaged), epochs "
        "(completed/configured), minutes of training (spent/train.minutes for a run with a "
        "budget), val_loss (the best), the test psnr (dB), ssim and sse (squared error per "
        "image), path; '-' where a run has none. Does not load TensorFlow.",
    ),
    "compare": (
        _compare_args,
        cmd_compare,
        "compare finished runs: curves, the same test images, the config keys that differ",
        "For two or more finished runs on the same data: curves.png (validation loss by epoch "
        "and by minutes of training), reconstructions.png (the first test images of the first "
        "run, reconstructed by each) and compare.md (the config keys that differ, each run's "
        "metrics and figures), written to a new folder.",
    ),
    "schema": (
        _schema_args,
        cmd_schema,
        "print the config files' JSON Schema (for editors), or the Markdown reference",
        "Print the JSON Schema of a config file, generated from the typed schema: editors with "
        "a YAML language server check configs against it (docs/config.schema.json); --markdown "
        "prints the reference of every key instead (docs/config.md).",
    ),
}


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, as every other mistake: what, and how to see more."""

    def error(self, message: str):
        given = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if given:  # argparse lists every choice; the closest is the likely one
            choices = re.findall(r"'([^']*)'", given.group(2))
            lower = {c.lower(): c for c in choices}
            close = [lower[c] for c in difflib.get_close_matches(given.group(1).lower(), lower, 1)]
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {given.group(2)}"
            message = f"{message.split(' (choose from ')[0]}; {hint}"
        self.exit(2, f"error: {self.prog}: {message} (`{self.prog} --help` lists the options)\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # the subcommand's help lists what it takes, not the top-level one
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(
                2,
                f"error: {prog}: unrecognized arguments: {' '.join(extras)} (`{prog} --help` "
                f"lists the options)\n",
            )
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every subcommand."""
    common = Parser(add_help=False)
    # SUPPRESS: a flag given before the subcommand is not reset by the subparser's default.
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
    )
    common.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="warnings and results only: no progress bars or messages",
    )
    parser = Parser(
        prog="autoencoder",
        parents=[common],
        description="Train, inspect and denoise with convolutional autoencoders "
        "(TensorFlow / Keras 3).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (arguments, function, summary, description) in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=summary, description=description)
        arguments(p)
        p.set_defaults(function=function)
    return parser


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("autoencoder")
    package.handlers[:] = [handler]
    package.setLevel(logging.WARNING if quiet else logging.INFO)
    package.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one clear line per mistake and exit status 2 for user mistakes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    _setup_logging(getattr(args, "quiet", False))
    try:
        with reader("command line"):
            args.function(args)
        return 0
    except UserError as exc:
        if debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except RunFailed as exc:  # a bug, not a mistake: exit 1, but the run is kept
        if debug:
            traceback.print_exception(exc.__cause__ or exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
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
