"""`autoencoder anomaly --benchmark`: the one-class protocol of Ruff et al. (ICML 2018).

Each class in turn is the only normal one (an `anomaly_run` each), every test image is scored,
and results.md / results.csv / figures/auroc.png gather the classes' AUROCs as they finish.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import numpy as np

from autoencoder import atomic, lock, runs
from autoencoder.anomaly import AUTO_IMAGES, COMMAND, anomaly_run, normal_classes
from autoencoder.config import Config
from autoencoder.data import load_splits
from autoencoder.evaluate import SCORE_NAMES
from autoencoder.plots import plot_benchmark
from autoencoder.runtime import cpu_count, cpu_name

log = logging.getLogger(__name__)

# Deep SVDD (one-class), Ruff et al. 2018, Table 1: AUROC per MNIST digit, the same protocol.
DEEP_SVDD_MNIST = (98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5)
# The benchmark's model and training when no CONFIG is given: the preset in this checkout.
BENCHMARK_PRESET = str(Path(__file__).resolve().parents[1] / "configs" / "anomaly.yaml")


def run_benchmark(config: Config, dataset: str) -> tuple[Path, list[dict]]:
    """Each class of `dataset` in turn as the only normal one; a table of their AUROCs.

    Args:
      config: the resolved config (model, training, score); anomaly.normal, when set, limits
        the benchmark to those classes (each still alone as the normal one).
      dataset: mnist, fashion_mnist, or another data.dataset with classes.
    Returns:
      (the benchmark directory with results.md and results.csv, one row per class).
    """
    data = config.data.model_copy(update={"dataset": dataset, "classes": None})
    base = config.model_copy(update={"data": data})
    names = tuple(load_splits(base).class_names)
    keys = config.anomaly.normal or list(range(len(names)))
    classes = normal_classes(base.model_copy(update={"anomaly": _normal(base, keys)}), names)
    bench_dir = runs.create_run_dir(base.model_copy(update={"name": f"{config.name}-{dataset}"}))
    (bench_dir / "checkpoints").rmdir()  # a run directory's; each class's run has its own
    with lock.hold(bench_dir, COMMAND):
        return bench_dir, _benchmark(base, dataset, bench_dir, classes, names)


def _benchmark(base: Config, dataset: str, bench_dir: Path, classes, names) -> list[dict]:
    log.info("benchmark directory: %s", bench_dir)
    rows, start = [], time.perf_counter()
    for k in classes:
        one = base.model_copy(
            update={
                "name": f"class-{k}",
                "output": str(bench_dir / "runs"),
                "anomaly": _normal(base, [k]),
            }
        )
        log.info("class %d (%s) as the normal one", k, names[k])
        run_dir, result = anomaly_run(one)
        rows.append(
            {
                "class": k,
                "name": names[k],
                "score": result["score"],
                "auroc": result["auroc"],
                "ap": result["ap"],
                **{f"auroc_{kind}": v for kind, v in result["auroc_by_score"].items()},
                **{
                    f"val_auroc_{kind}": v
                    for kind, v in result.get("val_auroc_by_score", {}).items()
                },
                "minutes": result["minutes"],
                "run": str(run_dir.relative_to(bench_dir)),
            }
        )
        total = (time.perf_counter() - start) / 60
        atomic.write_text(bench_dir / "results.csv", _rows_csv(rows))
        atomic.write_text(bench_dir / "results.md", results_markdown(rows, base, total))
        reference = DEEP_SVDD_MNIST if dataset == "mnist" else None
        plot_benchmark(bench_dir / "figures" / "auroc.png", rows, dataset, reference, len(classes))
    return rows


def _normal(config: Config, keys: list):
    return config.anomaly.model_copy(update={"normal": list(keys)})


def _rows_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    by_score = [f"auroc_{k}" for k in SCORE_NAMES]
    # Empty unless anomaly.score is auto: each candidate's AUROC on the validation images.
    by_val = [f"val_auroc_{k}" for k in SCORE_NAMES]
    columns = ["class", "name", "score", "auroc", "ap", *by_score, *by_val, "minutes", "run"]
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def results_markdown(rows: list[dict], config: Config, minutes: float) -> str:
    """results.md: the command, the machine, a row per class, the mean, auto's choices."""
    dataset = config.data.dataset
    reference = dataset == "mnist"
    auto = config.anomaly.score == "auto"
    others = "".join(f" by {SCORE_NAMES[k]} |" for k in SCORE_NAMES)
    head = (
        "| normal class | score | AUROC | AP | minutes |"
        + others
        + (" Deep SVDD |" if reference else "")
    )
    rule = "|---|---|---:|---:|---:|" + "---:|" * len(SCORE_NAMES) + ("---:|" if reference else "")
    if auto:
        how = (
            "the score `anomaly.score: auto` chose for that class on validation images only "
            "(its normal validation images against training-pool images of the other classes; "
            "no test image seen: the table below)"
        )
    else:
        how = f"{SCORE_NAMES[config.anomaly.score]} (anomaly.score)"
    lines = [
        f"# One-class anomaly detection on {dataset}",
        "",
        f"Each class alone is the normal one: trained on its training images only, every test "
        f"image scored per image by {how}, the other classes anomalous (Ruff et al., ICML "
        f"2018). The 'by' columns score the same reconstructions each other way, on the test "
        f"images: for comparison only, since taking the best of them would choose on test. "
        f"{_classes(rows)} in {minutes:.1f} minutes on "
        f"{cpu_name()} with {cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}.",
        "",
        "```",
        f"autoencoder anomaly config.yaml --benchmark {dataset}",
        "```",
        "",
        "`config.yaml` is this folder's: the config as the benchmark ran it, every `--set` "
        "applied.",
        "",
        head,
        rule,
    ]
    for row in rows:
        name, kind = _class_text(row), SCORE_NAMES[row["score"]]
        line = (
            f"| {name} | {kind} | {100 * row['auroc']:.1f} | {100 * row['ap']:.1f} | "
            f"{row['minutes']:.1f} |"
        )
        line += "".join(f" {100 * row[f'auroc_{k}']:.1f} |" for k in SCORE_NAMES)
        if reference:
            line += f" {DEEP_SVDD_MNIST[row['class']]:.1f} |"
        lines.append(line)
    mean = 100 * float(np.mean([r["auroc"] for r in rows]))
    ap = 100 * float(np.mean([r["ap"] for r in rows]))
    total = sum(r["minutes"] for r in rows)  # the time the benchmark took, not a mean
    line = f"| **mean** | | **{mean:.1f}** | {ap:.1f} | {total:.1f} in all |"
    line += "".join(f" {100 * np.mean([r[f'auroc_{k}'] for r in rows]):.1f} |" for k in SCORE_NAMES)
    if reference:
        ref = np.mean([DEEP_SVDD_MNIST[r["class"]] for r in rows])
        line += f" {ref:.1f} |"
    lines += [line, ""]
    worst = min(rows, key=lambda r: r["auroc"])
    lines.append(f"Lowest: {_class_text(worst)} at {100 * worst['auroc']:.1f}.")
    if auto:
        lines += ["", *_choices_markdown(rows)]
    return "\n".join(lines) + "\n"


def _choices_markdown(rows: list[dict]) -> list[str]:
    """auto's choice per class: each candidate's validation AUROC, and how often each won."""
    counts = {k: sum(r["score"] == k for r in rows) for k in SCORE_NAMES}
    tally = ", ".join(
        f"{SCORE_NAMES[k]} for {n} class{'es' * (n > 1)}" for k, n in counts.items() if n
    )
    lines = [
        "## The score auto chose",
        "",
        f"For each class, each candidate's AUROC on validation images only: the normal class's "
        f"validation images against a seeded sample of the other classes' training-pool images "
        f"(as many as the normal validation images, but at least {AUTO_IMAGES[0]:,} and at most "
        f"{AUTO_IMAGES[1]:,}; never trained on, never test images). The highest wins; ties go "
        f"to the first column. Chosen: {tally}.",
        "",
        "| normal class |" + "".join(f" {SCORE_NAMES[k]} |" for k in SCORE_NAMES) + " chosen |",
        "|---|" + "---:|" * len(SCORE_NAMES) + "---|",
    ]
    for row in rows:
        cells = "".join(f" {100 * row[f'val_auroc_{k}']:.1f} |" for k in SCORE_NAMES)
        lines.append(f"| {_class_text(row)} |{cells} {SCORE_NAMES[row['score']]} |")
    return lines


def _class_text(row: dict) -> str:
    """'3' for a digit, '7 Sneaker' where the class has a name of its own."""
    return row["name"] if row["name"] == str(row["class"]) else f"{row['class']} {row['name']}"


def format_benchmark(rows: list[dict]) -> str:
    """What `autoencoder anomaly --benchmark` prints."""
    width = max(len(SCORE_NAMES[row["score"]]) for row in rows)
    lines = [f"{'normal class':<18} {'score':<{width}} {'AUROC':>6} {'AP':>6} {'minutes':>8}"]
    for row in rows:
        lines.append(
            f"{_class_text(row)[:18]:<18} {SCORE_NAMES[row['score']]:<{width}} "
            f"{100 * row['auroc']:>6.1f} {100 * row['ap']:>6.1f} {row['minutes']:>8.1f}"
        )
    mean = 100 * float(np.mean([r["auroc"] for r in rows]))
    worst = min(rows, key=lambda r: r["auroc"])
    lines.append(
        f"mean AUROC {mean:.1f} over {_classes(rows)}; lowest {_class_text(worst)} at "
        f"{100 * worst['auroc']:.1f}"
    )
    return "\n".join(lines)


def _classes(rows: list[dict]) -> str:
    return f"{len(rows)} class{'' if len(rows) == 1 else 'es'}"
