"""Anomaly detection: thresholds, ROC-AUC on known cases, refusals, one tiny run and benchmark."""

import csv
import json

import numpy as np
import pytest
from conftest import assert_error, cli, cli_without_tensorflow, tiny, write_config

from autoencoder import anomaly
from autoencoder.anomaly import Scored, check_groups, choose_threshold, normal_classes, report
from autoencoder.data import DIGITS, load_splits
from autoencoder.errors import UserError

# ---------------------------------------------------------------------------------------------
# The threshold


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_a_quantile_threshold_reproduces_its_quantile(q):
    val = np.random.default_rng(0).gamma(2.0, size=1000)
    t = choose_threshold(val, "quantile", q)
    assert t in val  # one of the validation scores
    share = (1 - q) * len(val) + 1e-9  # (1 - 0.9) * 1000 is 99.99...: counts, with a margin
    assert np.sum(val > t) <= share < np.sum(val >= t)  # at most 1 - q above; one lower, more
    assert choose_threshold(val, "fpr", 1 - q) == t


def test_a_value_threshold_is_used_as_given():
    assert choose_threshold(np.array([1.0, 2.0]), "value", 0.123) == 0.123
    assert choose_threshold(np.zeros(0), "value", 7) == 7.0  # needs no validation images


def test_a_threshold_that_cannot_be_chosen_is_one_line():
    with pytest.raises(UserError) as info:
        choose_threshold(np.zeros(0), "quantile", 0.95)
    assert str(info.value) == (
        "anomaly.threshold.quantile: there are no normal validation images to choose it on; "
        "raise data.validation_split, or set anomaly.threshold.value"
    )
    with pytest.raises(UserError) as info:
        choose_threshold(np.full(40, 0.25), "fpr", 0.05)
    assert str(info.value) == (
        "anomaly.threshold.fpr: all 40 normal validation images score 0.25, so no fpr "
        "separates them; set anomaly.threshold.value, or train the model longer"
    )


def test_threshold_rules_in_the_config():
    from autoencoder.config import load_config

    assert load_config(None, []).anomaly.threshold.rule() == ("quantile", 0.95)
    fpr = load_config(None, ["anomaly.threshold.fpr=0.01"]).anomaly.threshold
    assert fpr.rule() == ("fpr", 0.01)
    with pytest.raises(UserError, match="sets quantile and value; choose one way"):
        load_config(None, ["anomaly.threshold={quantile: 0.9, value: 0.1}"])
    with pytest.raises(UserError, match="anomaly.normal: lists a class twice"):
        load_config(None, ["anomaly.normal=[1, 1]"])


# ---------------------------------------------------------------------------------------------
# ROC-AUC, AP and the confusion matrix


def test_separable_scores_give_an_auroc_of_one_and_identical_groups_a_half():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 2000)
    anomalous = labels == 1
    apart = np.where(anomalous, 2 + rng.random(4000), rng.random(4000))
    result = report(Scored(apart, labels, rng.random(100)), anomalous, threshold=1.5)
    assert result["auroc"] == 1.0 and result["ap"] == 1.0
    assert (result["tp"], result["fn"], result["fp"], result["tn"]) == (2000, 0, 0, 2000)
    same = rng.random(4000)  # both groups from one distribution
    result = report(Scored(same, labels, rng.random(100)), anomalous, threshold=0.9)
    assert abs(result["auroc"] - 0.5) < 0.03 and abs(result["ap"] - 0.5) < 0.03
    assert result["tp"] + result["fn"] == 2000 and abs(result["fpr"] - 0.1) < 0.03


# ---------------------------------------------------------------------------------------------
# Refusals before anything is trained


def test_normal_classes_by_number_or_name():
    config = tiny("/tmp/unused", "anomaly.normal=[3, '7']")
    assert normal_classes(config, DIGITS) == [3, 7]
    names = ("bottle", "crack", "good")
    assert normal_classes(tiny("/tmp/unused", "anomaly.normal=[good]"), names) == [2]


@pytest.mark.parametrize(
    "normal, message",
    [
        (
            None,
            "anomaly.normal: not set; list the normal classes, e.g. --set anomaly.normal=[0] (the "
            "other classes are the anomalies; this data's classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)",
        ),
        (
            "[12]",
            "anomaly.normal: 12 is not a class of mnist_sample; its classes: 0, 1, 2, 3, 4, 5, "
            "6, 7, 8, 9 (by name, or number 0 to 9)",
        ),
        (
            "[cat]",
            "anomaly.normal: 'cat' is not a class of mnist_sample; its classes: 0, 1, 2, 3, 4, "
            "5, 6, 7, 8, 9 (by name, or number 0 to 9)",
        ),
    ],
    ids=["unset", "number", "name"],
)
def test_an_unknown_or_missing_normal_class_is_one_line(normal, message):
    extra = [] if normal is None else [f"anomaly.normal={normal}"]
    with pytest.raises(UserError) as info:
        normal_classes(tiny("/tmp/unused", *extra), DIGITS)
    assert str(info.value) == message


def test_a_normal_set_that_leaves_no_anomalies_is_one_line():
    labels = np.array([0, 1, 1, 0])
    assert check_groups(labels, [0], DIGITS).tolist() == [False, True, True, False]
    with pytest.raises(UserError) as info:
        check_groups(labels, [0, 1], DIGITS)
    assert str(info.value) == (
        "anomaly.normal: 0, 1 is every class of the test split, which leaves no anomalies to "
        "score; leave at least one class out of anomaly.normal"
    )
    with pytest.raises(UserError, match="the test split holds no image of 5, so there is"):
        check_groups(labels, [5], DIGITS)


def test_a_normal_class_outside_data_classes_is_one_line():
    config = tiny("/tmp/unused", "data.classes=[0, 1, 2]", "anomaly.normal=[5]")
    with pytest.raises(UserError) as info:
        normal_classes(config, DIGITS)
    assert str(info.value) == (
        "anomaly.normal: 5 is left out by data.classes [0, 1, 2]; list it in data.classes "
        "too, or drop data.classes"
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["anomaly.normal=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"],
            "anomaly.normal: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 is every class of the test split, "
            "which leaves no anomalies to score; leave at least one class out of anomaly.normal",
        ),
        (
            ["anomaly.normal=[11]"],
            "anomaly.normal: 11 is not a class of mnist_sample; its classes: 0, 1, 2, 3, 4, 5, "
            "6, 7, 8, 9 (by name, or number 0 to 9)",
        ),
    ],
    ids=["no anomalies", "unknown class"],
)
def test_cli_refusals_come_before_tensorflow_and_any_run(tmp_path, extra, message):
    config = write_config(tmp_path / "a.yaml", tiny(tmp_path / "runs", *extra))
    result, loaded = cli_without_tensorflow("anomaly", config)
    assert_error(result, message)
    assert not loaded and not (tmp_path / "runs").exists()


def test_anomaly_without_a_config_says_what_to_give():
    result, loaded = cli_without_tensorflow("anomaly")
    assert_error(
        result,
        "anomaly: no CONFIG given; name one (e.g. configs/anomaly.yaml --set "
        "anomaly.normal=[3]), or run the one-class benchmark: --benchmark mnist",
    )
    assert not loaded


# ---------------------------------------------------------------------------------------------
# A tiny run: digit 0 against the other nine


@pytest.fixture(scope="module")
def zero_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly")
    # The sample's whole pool (about 400 zeros); the tiny model without its limit of 320.
    config = tiny(
        out,
        "data.limit=null",
        "train.epochs=10",
        "train.optimizer.learning_rate=0.005",
        "anomaly.normal=[0]",
    )
    return (*anomaly.anomaly_run(config), config)


def test_the_run_trains_on_the_normal_class_only_and_scores_every_test_image(zero_run):
    run_dir, result, config = zero_run
    saved = (run_dir / "config.yaml").read_text()
    assert "classes: [0]" in saved  # the run itself: zeros only
    test = load_splits(config).labels("test")
    assert result["test_normal"] == int(np.sum(test == 0))
    assert result["test_anomalies"] == int(np.sum(test != 0)) == len(test) - result["test_normal"]
    with open(run_dir / "anomaly_scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(test) and [int(r["label"]) for r in rows] == test.tolist()
    assert {r["group"] for r in rows if r["label"] == "0"} == {"normal"}
    flagged = [int(float(r["score"]) > result["threshold"]) for r in rows]
    assert [int(r["flagged"]) for r in rows] == flagged
    assert sum(flagged) == result["tp"] + result["fp"]
    # Zeros are what it learned: well above chance even after ten short epochs.
    assert 0.75 < result["auroc"] <= 1.0 and 0.9 < result["ap"] <= 1.0
    assert result["val_fpr"] <= 0.05 and result["val_images"] > 20
    # The same reconstructions scored every way; the configured one is the headline.
    assert set(result["auroc_by_score"]) == {"mse", "mae", "ssim"}
    assert result["auroc_by_score"]["mse"] == result["auroc"]
    assert all(0.5 < v <= 1.0 for v in result["auroc_by_score"].values())


def test_the_threshold_is_saved_with_the_run_for_predict(zero_run, tmp_path):
    from autoencoder.data.images import write_png
    from autoencoder.predict import predict_files

    run_dir, result, config = zero_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["anomaly/threshold"] == result["threshold"]
    assert metrics["anomaly/score"] == "mse" and metrics["anomaly/normal"] == ["0"]
    splits = load_splits(config)
    for i, image in enumerate(splits.pixels("test")[:6]):
        write_png(tmp_path / f"t{i}.png", image)
    summary = predict_files(run_dir, sorted(tmp_path.glob("t*.png")), tmp_path / "out")
    assert summary["threshold"] == pytest.approx(result["threshold"])
    with open(tmp_path / "out" / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["anomaly"] == str(int(float(r["mse"]) > result["threshold"])) for r in rows)


def test_the_run_draws_its_figures(zero_run):
    import matplotlib.image as mpimg

    run_dir, _, _ = zero_run
    for name, (height, width) in {
        "anomaly_scores": (500, 1400),
        "anomaly_roc": (550, 600),
        "anomaly_extremes": (700, 1200),
    }.items():
        image = mpimg.imread(run_dir / "figures" / f"{name}.png")
        assert image.shape[0] >= height and image.shape[1] >= width, (name, image.shape)
        assert image[..., :3].std() > 0.05  # drawn on, not blank


def test_format_report_prints_the_confusion_matrix(zero_run):
    _, result, _ = zero_run
    text = anomaly.format_report(result)
    lines = text.splitlines()
    assert lines[0].startswith("anomaly: normal = 0; test: ")
    assert lines[1] == f"ROC-AUC {result['auroc']:.4f}   average precision {result['ap']:.4f}"
    assert f"  normal ({result['test_normal']:,})" in text
    assert lines[-3].split()[-2:] == [f"{result['tn']:,}", f"{result['fp']:,}"]
    assert lines[-2].split()[-2:] == [f"{result['fn']:,}", f"{result['tp']:,}"]


# ---------------------------------------------------------------------------------------------
# The benchmark, on two classes of the sample, end to end from the command line


def test_the_benchmark_writes_a_row_per_class_and_their_mean(tmp_path):
    config = write_config(
        tmp_path / "b.yaml",
        tiny(tmp_path / "runs", "train.epochs=1", "data.limit=null", "anomaly.normal=[0, 1]"),
    )
    result = cli("anomaly", config, "--benchmark", "mnist_sample", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    (bench_dir,) = (tmp_path / "runs" / "tiny-mnist_sample").iterdir()
    with open(bench_dir / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == ["0", "1"]
    assert all(r["auroc"] == r["auroc_mse"] for r in rows)  # the tiny config scores by MSE
    aurocs = [float(r["auroc"]) for r in rows]
    assert all(0.0 <= a <= 1.0 for a in aurocs) and all(float(r["minutes"]) > 0 for r in rows)
    text = (bench_dir / "results.md").read_text()
    assert "autoencoder anomaly --benchmark mnist_sample" in text
    assert f"| **mean** | **{100 * np.mean(aurocs):.1f}** |" in text
    assert f"mean AUROC {100 * np.mean(aurocs):.1f} over 2 classes" in result.stdout
    assert (bench_dir / "figures" / "auroc.png").stat().st_size > 10_000
    assert not (bench_dir / "checkpoints").exists()
    for row in rows:  # each class's own run, with its figures
        assert (bench_dir / row["run"] / "figures" / "anomaly_roc.png").is_file()
