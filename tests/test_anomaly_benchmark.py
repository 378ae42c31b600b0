"""The one-class benchmark: two classes of the sample end to end, and its results table."""

import csv

import numpy as np
from conftest import cli, tiny, write_config

from autoencoder.anomaly_benchmark import format_benchmark, results_markdown
from autoencoder.config import load_config
from autoencoder.evaluate import SCORE_NAMES
from autoencoder.runtime import cpu_count, cpu_name


def test_the_benchmark_writes_a_row_per_class_and_their_mean(tmp_path):
    extra = ["train.epochs=1", "data.limit=null", "anomaly.normal=[0, 1]", "anomaly.score=auto"]
    config = write_config(tmp_path / "b.yaml", tiny(tmp_path / "runs", *extra))
    result = cli("anomaly", config, "--benchmark", "mnist_sample", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    (bench_dir,) = (tmp_path / "runs" / "tiny-mnist_sample").iterdir()
    with open(bench_dir / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == ["0", "1"]
    for row in rows:  # each class's own choice, on validation images; its test AUROC the headline
        val = {k: float(row[f"val_auroc_{k}"]) for k in SCORE_NAMES}
        assert (
            row["score"] == max(val, key=val.get) and row["auroc"] == row[f"auroc_{row['score']}"]
        )
    aurocs = [float(r["auroc"]) for r in rows]
    # One epoch of a tiny model on 0s or 1s still tells the other digits apart well above chance.
    assert all(0.6 < a <= 1.0 for a in aurocs), aurocs
    assert all(float(r["minutes"]) > 0 for r in rows)
    text = (bench_dir / "results.md").read_text()
    assert "autoencoder anomaly config.yaml --benchmark mnist_sample" in text
    saved = load_config(bench_dir / "config.yaml")  # every --set applied, as the line says
    assert saved.train.epochs == 1 and saved.anomaly.score == "auto"
    assert f"| **mean** | | **{100 * np.mean(aurocs):.1f}** |" in text
    worst = min(rows, key=lambda r: float(r["auroc"]))
    assert f"Lowest: {worst['class']} at {100 * float(worst['auroc']):.1f}." in text
    assert "## The score auto chose" in text
    for row in rows:
        cells = "".join(f" {100 * float(row[f'val_auroc_{k}']):.1f} |" for k in SCORE_NAMES)
        assert f"| {row['class']} |{cells} {SCORE_NAMES[row['score']]} |" in text
    assert f"mean AUROC {100 * np.mean(aurocs):.1f} over 2 classes; lowest " in result.stdout
    assert (bench_dir / "figures" / "auroc.png").stat().st_size > 10_000
    assert not (bench_dir / "checkpoints").exists()
    for row in rows:  # each class's own run, with its figures
        assert (bench_dir / row["run"] / "figures" / "anomaly_roc.png").is_file()
    # The benchmark's folder given where a run, a sweep or a config is wanted: named as what it is.
    first = bench_dir / rows[0]["run"]
    not_run = (
        f"error: {bench_dir}: an anomaly benchmark's folder, not a run; pass one of its runs "
        f"(e.g. {first}); its table is in {bench_dir / 'results.md'}\n"
    )
    before = sorted(p.name for p in bench_dir.iterdir())
    for command in ("evaluate", "resume", "export"):
        result = cli(command, bench_dir)
        assert (result.returncode, result.stderr) == (2, not_run), (command, result.stderr)
    result = cli("denoise", bench_dir / "config.yaml", "--resume", bench_dir)
    assert result.returncode == 2
    assert "an anomaly benchmark's folder, not a denoising sweep; pass the folder" in result.stderr
    result = cli("anomaly", bench_dir)
    assert result.returncode == 2 and result.stderr == (
        f"error: {bench_dir}: an anomaly benchmark's folder, not a config file; `autoencoder "
        f"anomaly {bench_dir / 'config.yaml'} --benchmark mnist_sample` runs it again\n"
    )
    assert sorted(p.name for p in bench_dir.iterdir()) == before  # nothing written into it


def test_a_benchmark_with_a_given_score_says_which_and_lists_no_choice():
    rows = [
        {"class": k, "name": str(k), "score": "mae", "auroc": a, "ap": 0.5, "minutes": 1.0}
        | {f"auroc_{kind}": a for kind in SCORE_NAMES}
        for k, a in [(0, 0.9), (1, 0.8)]
    ]
    config = tiny("/tmp/unused", "anomaly.score=mae")
    text = results_markdown(rows, config, 2.0)
    assert "every test image scored per image by MAE (anomaly.score)" in text
    assert f"on {cpu_name()} with {cpu_count()} CPU cores" in text
    assert "| 1 | MAE | 80.0 | 50.0 | 1.0 | 80.0 | 80.0 | 80.0 |" in text
    assert "\nmean AUROC 90.0 over 1 class; lowest 0 at 90.0" in format_benchmark(rows[:1])
    assert "2 classes in 2.0 minutes" in text
    assert "| **mean** | | **85.0** | 50.0 | 2.0 in all |" in text and "Lowest: 1 at 80.0." in text
    assert "score: auto" not in text and "The score auto chose" not in text
