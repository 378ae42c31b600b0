"""A folder of image files against the in-memory IDX source: images/s and peak memory on MNIST.

MNIST is written out as PNG files (train/<digit>/, test/<digit>/: 70,000 files, and a
10,000-file subset), then:

  throughput  the same model trains on the IDX files in memory (I), on the PNG folder streamed
              from its files (S, data.cache: none) and on the folder decoded into memory (C,
              data.cache: memory), in three processes that take turns an epoch at a time, as
              `autoencoder bench` does; images/s is the median timed epoch's.
  memory      `autoencoder train` for one epoch, streamed, on 10,000 and on 70,000 files: the
              peak resident memory of each whole run (scan, training, evaluation, figures).

  python scripts/images_benchmark.py [--mnist $AUTOENCODER_DATA/mnist] [--work /tmp/mnist-png]
      [--config configs/quickstart.yaml] [--warmup 1] [--epochs 3]
  python scripts/images_benchmark.py --table /tmp/mnist-png/images_benchmark.json

The PNG folders stay in --work for the next run (never in the repository).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder.bench import start_contender  # noqa: E402  (a contender process of `autoencoder bench`)
from autoencoder.cli import Parser, count  # noqa: E402
from autoencoder.config import DataConfig, dump_config, load_config  # noqa: E402
from autoencoder.data.images import write_png  # noqa: E402
from autoencoder.data.sources import load_raw  # noqa: E402
from autoencoder.errors import UserError, exit_on_user_error  # noqa: E402

SUBSET = (8_571, 1_429)  # train, test: 10,000 files in MNIST's 6:1 proportion
CONTENDERS = {
    "I": "IDX files, in memory",
    "S": "PNG folder, streamed (cache: none)",
    "C": "PNG folder, cached (cache: memory)",
}


def folders(work: Path) -> dict[str, Path]:
    """Where the 70,000- and 10,000-file PNG folders of MNIST are written."""
    return {name: work / f"mnist-png-{name}" for name in ("70k", "10k")}


def prepare(raw, work: Path) -> None:
    """The PNG folders of MNIST (`raw`, as load_raw gives it), written once."""
    for name, (n_train, n_test) in (("70k", (60_000, 10_000)), ("10k", SUBSET)):
        folder = folders(work)[name]
        done = folder / ".complete"
        if done.exists():
            continue
        started = time.perf_counter()
        for split, x, y, n in (
            ("train", raw.x_train, raw.y_train, n_train),
            ("test", raw.x_test, raw.y_test, n_test),
        ):
            for digit in range(10):
                (folder / split / str(digit)).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                write_png(folder / split / str(y[i]) / f"{i:05d}.png", x[i][..., None])
        done.write_text("")
        print(
            f"wrote {folder} ({n_train + n_test:,} files) in {time.perf_counter() - started:.0f} s"
        )


def contender_configs(args) -> dict:
    """One config per contender: the same model, batch and seed; only the data differ."""
    pngs = folders(args.work)["70k"]
    data = {
        "I": ["data.dataset=mnist", f"data.path={args.mnist}"],
        "S": ["data.dataset=folder", f"data.path={pngs}", "data.cache=none"],
        "C": ["data.dataset=folder", f"data.path={pngs}", "data.cache=memory"],
    }
    return {
        key: load_config(
            args.config, [*overrides, f"name=images-{key}", f"output={args.work / 'runs'}"]
        )
        for key, overrides in data.items()
    }


def write_configs(work: Path, configs: dict) -> dict[str, Path]:
    """Each contender's config file, in a folder of its own (its log goes beside it)."""
    paths = {}
    for key, config in configs.items():
        paths[key] = work / f"contender-{key}" / "config.yaml"
        paths[key].parent.mkdir(exist_ok=True)
        paths[key].write_text(dump_config(config))
    return paths


def throughput(args, configs: dict[str, Path]) -> dict:
    """Epochs in turns I S C I S C ...: images/s (median timed epoch), steps, peak memory."""
    workers, started, ready = {}, {}, {}
    try:
        for key, path in configs.items():
            started[key] = time.perf_counter()
            # Key A for all three: trainer.fit, as `autoencoder train` trains (B and C are
            # bench's plain-Keras contenders); the folders keep their contender-A.log apart.
            workers[key] = start_contender("A", path, args.warmup, args.epochs)
            ready[key] = workers[key].receive()  # after load_splits: the scan, for a folder
            ready[key]["load_seconds"] = time.perf_counter() - started[key]
        times = {key: [] for key in workers}
        steps = {key: [] for key in workers}
        for round_ in range(args.warmup + args.epochs):
            for key, worker in workers.items():
                reply = worker.epoch()
                rate = reply["images"] / reply["seconds"]
                print(
                    f"  epoch {round_ + 1} {key}: {reply['seconds']:.2f} s ({rate:,.0f} images/s)"
                )
                if round_ >= args.warmup:
                    times[key].append(reply["seconds"])
                    steps[key] += reply["steps"]
        finals = {key: worker.finish() for key, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.kill()
    batch = load_config(configs["I"]).train.batch_size
    out = {}
    for key in workers:
        images = ready[key]["images"]
        out[key] = {
            "label": CONTENDERS[key],
            "images": images,
            "epoch_seconds": times[key],
            "images_per_second": images / statistics.median(times[key]),
            "median_step_seconds": statistics.median(steps[key]),
            "images_per_second_steps": batch / statistics.median(steps[key]),
            "start_seconds": ready[key]["load_seconds"],
            "peak_rss_bytes": finals[key]["peak_rss_bytes"],
            "test_mse": finals[key]["test_mse"],
        }
    return out


def memory(args) -> dict:
    """Peak resident memory of a whole one-epoch streamed `autoencoder train` run per folder."""
    out = {}
    for name in ("10k", "70k"):
        command = [
            sys.executable,
            "-m",
            "autoencoder",
            "--quiet",
            "train",
            str(args.config),
            "--set",
            "data.dataset=folder",
            "--set",
            f"data.path={folders(args.work)[name]}",
            "--set",
            "data.cache=none",
            "--set",
            "train.epochs=1",
            "--set",
            f"name=images-memory-{name}",
            "--set",
            f"output={args.work / 'runs'}",
        ]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            print(
                f"error: the streamed training run on mnist-png-{name} failed (exit {code}); "
                f"its message is above",
                file=sys.stderr,
            )
            raise SystemExit(code if code > 0 else 128 - code)
        out[name] = {
            "files": sum(SUBSET) if name == "10k" else 70_000,
            "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
            "seconds": time.perf_counter() - started,
        }
        print(f"  {name}: peak {out[name]['peak_rss_bytes'] / 2**20:,.0f} MiB")
    return out


def table(result: dict) -> str:
    """The markdown tables docs/images.md shows."""
    rates = result["throughput"]
    epochs, steps = (rates["I"][k] for k in ("images_per_second", "images_per_second_steps"))
    lines = [
        "| contender | images/s, median step | vs I | images/s, median epoch | vs I | start "
        "(load, scan) | peak RSS | test MSE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, c in rates.items():
        lines.append(
            f"| {key}: {c['label']} | {c['images_per_second_steps']:,.0f} | "
            f"{c['images_per_second_steps'] / steps:.2f}x | {c['images_per_second']:,.0f} | "
            f"{c['images_per_second'] / epochs:.2f}x | {c['start_seconds']:.1f} s | "
            f"{c['peak_rss_bytes'] / 2**20:,.0f} MiB | {c['test_mse']:.5f} |"
        )
    mem = result["memory"]
    small, large = mem["10k"]["peak_rss_bytes"], mem["70k"]["peak_rss_bytes"]
    lines += [
        "",
        "| streamed run (1 epoch, whole `autoencoder train`) | files | peak RSS | wall time |",
        "|---|---:|---:|---:|",
    ]
    for name, m in mem.items():
        lines.append(
            f"| mnist-png-{name} | {m['files']:,} | {m['peak_rss_bytes'] / 2**20:,.0f} MiB | "
            f"{m['seconds']:.0f} s |"
        )
    lines.append(f"\n70,000 files against 10,000: peak memory {large / small - 1:+.1%}")
    return "\n".join(lines)


def saved(path: Path) -> dict:
    """A result images_benchmark.json holds, read for --table."""
    try:
        result = json.loads(path.read_text())
        table(result)
    except OSError as exc:
        raise UserError(
            f"--table {path}: {exc.strerror}; pass the images_benchmark.json a run wrote"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(
            f"--table {path}: not a result of this script; pass its images_benchmark.json"
        ) from None
    return result


def default_mnist() -> Path:
    """$AUTOENCODER_DATA/mnist when that is set, else the shared data beside the checkout."""
    data = os.environ.get("AUTOENCODER_DATA")
    return Path(data) / "mnist" if data else ROOT.parent / "shared" / "data" / "mnist"


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mnist",
        type=Path,
        default=default_mnist(),
        help=f"folder of MNIST's IDX files (default: $AUTOENCODER_DATA/mnist, here {default_mnist()})",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/mnist-png"),
        help="the PNG folders, kept for the next run, and the results (default: /tmp/mnist-png)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=ROOT / "configs" / "quickstart.yaml",
        help="the model every contender trains (default: configs/quickstart.yaml)",
    )
    parser.add_argument("--warmup", type=count(0), default=1, help="untimed epochs (default 1)")
    parser.add_argument("--epochs", type=count(1), default=3, help="timed epochs (default 3)")
    parser.add_argument("--table", type=Path, help="only print the tables of a saved result")
    args = parser.parse_args()
    if args.table:
        print(table(saved(args.table)))
        return
    args.mnist, args.work = args.mnist.resolve(), args.work.resolve()
    # Everything is checked before the 80,000 PNG files are written and the epochs timed.
    configs = contender_configs(args)
    try:
        raw = load_raw(DataConfig(dataset="mnist", path=str(args.mnist)), "benchmark")
    except UserError as exc:
        raise UserError(f"--mnist: {exc}") from None
    try:
        args.work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"--work {args.work}: {exc.strerror}; pass a folder that can be written"
        ) from None
    started = time.strftime("%Y-%m-%d %H:%M")
    prepare(raw, args.work)
    del raw
    print(f"throughput: {args.warmup} warm-up + {args.epochs} timed epochs each, in turns I S C")
    rates = throughput(args, write_configs(args.work, configs))
    print("memory: one streamed epoch on 10,000 and on 70,000 files")
    result = {
        "date": started,
        "config": str(args.config),
        "warmup": args.warmup,
        "epochs": args.epochs,
        "cpus": os.cpu_count(),
        "throughput": rates,
        "memory": memory(args),
    }
    (args.work / "images_benchmark.json").write_text(json.dumps(result, indent=2, default=float))
    print(table(result))


if __name__ == "__main__":
    exit_on_user_error(main)
