"""Anomaly detection: thresholds, ROC-AUC on known cases, refusals, one tiny run."""

import csv
import json
import logging
import shutil

import numpy as np
import pytest
from conftest import assert_error, cli_without_tensorflow, tiny, write_config, write_digits

from autoencoder import anomaly, runs
from autoencoder.anomaly import (
    SCORE_NAMES,
    Scored,
    check_groups,
    choose_score,
    choose_threshold,
    normal_classes,
    report,
    selection_images,
)
from autoencoder.data import DIGITS, Splits, load_splits
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
# anomaly.score: auto, on known scores and known splits


def test_auto_chooses_the_score_that_separates_best_and_its_aurocs_are_exact():
    normal = {"mse": np.array([0.1, 0.4]), "mae": np.array([0.1, 0.2]), "ssim": [0.5, 0.6]}
    anomalies = {"mse": np.array([0.35, 0.8]), "mae": np.array([0.3, 0.4]), "ssim": [0.1, 0.2]}
    kind, aurocs = choose_score(normal, anomalies)
    # mse: 3 of the 4 (normal, anomaly) pairs in order; mae: all 4; ssim: none.
    assert kind == "mae" and aurocs == {"mse": 0.75, "mae": 1.0, "ssim": 0.0}
    # Equal AUROCs go by SCORE_NAMES' order, whatever order the scores come in.
    same = {k: np.array([0.0, 0.5]) for k in ("knn", "ssim", "mae", "mse")}
    kind, aurocs = choose_score(same, {k: np.array([0.5, 1.0]) for k in same})
    assert kind == "mse" and list(aurocs) == list(SCORE_NAMES)
    assert aurocs["mse"] == 0.875  # the tied pair (0.5, 0.5) counts a half


def _marked_splits(per_split=40):
    """Splits whose every image holds its own split and index: (split number, index)."""
    rng = np.random.default_rng(3)
    parts = []
    for number in range(3):
        pixels = np.zeros((per_split, 4, 4, 1), np.uint8)
        pixels[:, 0, 0, 0], pixels[:, 0, 1, 0] = number, np.arange(per_split)
        parts += [pixels, rng.integers(0, 4, per_split)]
    return Splits(*parts, source="marked")


def test_auto_chooses_on_other_classes_training_pool_images_never_the_test_split():
    splits = _marked_splits()
    picked = selection_images(splits, [0, 1], count=30, seed=5)
    assert picked.count("train") == picked.count("test") == 0  # it holds nothing else
    pixels, labels = picked.pixels("val"), picked.labels("val")
    assert len(pixels) == 30 and not np.isin(labels, [0, 1]).any()
    for (split, index), label in zip(pixels[:, 0, :2, 0], labels):
        assert split in (0, 1)  # the train and val splits, never test (2)
        assert splits.labels(("train", "val")[split])[index] == label
    again = selection_images(splits, [0, 1], count=30, seed=5)
    assert np.array_equal(again.pixels("val"), pixels)  # seeded
    everything = selection_images(splits, [0, 1], count=10_000, seed=5)
    assert everything.count("val") == int(np.sum(~np.isin(splits.y_train, [0, 1]))) + int(
        np.sum(~np.isin(splits.y_val, [0, 1]))
    )
    with pytest.raises(UserError) as info:
        selection_images(splits, [0, 1, 2, 3], count=30, seed=5)
    assert str(info.value) == (
        "anomaly.score: auto chooses the score on images of the other classes outside the test "
        "split, and the training pool holds only 0, 1, 2, 3; set anomaly.score to mse, mae, "
        "ssim or knn, or add images of other classes to the training pool (they are not trained on)"
    )


def test_auto_without_other_classes_outside_the_test_split_is_refused_before_training(
    tmp_path, digits
):
    x, y = digits
    zeros, ones = x[y == 0], x[y == 1]
    write_digits(tmp_path / "d" / "train", zeros[:20], [0] * 20)
    write_digits(tmp_path / "d" / "test", zeros[20:25], [0] * 5)
    write_digits(tmp_path / "d" / "test", ones[:5], [1] * 5, start=100)
    config = tiny(
        tmp_path / "runs",
        "data.dataset=folder",
        f"data.path={tmp_path / 'd'}",
        "data.limit=null",
        "anomaly.normal=['0']",
        "anomaly.score=auto",
    )
    written = write_config(tmp_path / "a.yaml", config)
    result, loaded = cli_without_tensorflow("anomaly", written, "--quiet")
    assert_error(
        result,
        "anomaly.score: auto chooses the score on images of the other classes outside the test "
        "split, and the training pool holds only 0; set anomaly.score to mse, mae, ssim or knn, or "
        "add images of other classes to the training pool (they are not trained on)",
    )
    assert not loaded and not (tmp_path / "runs").exists()


def test_a_fixed_threshold_with_score_auto_is_refused_at_load():
    from autoencoder.config import load_config

    with pytest.raises(UserError) as info:
        load_config(None, ["anomaly.score=auto", "anomaly.threshold.value=0.1"])
    assert str(info.value) == (
        "--set anomaly.threshold.value=0.1: anomaly: anomaly.score auto with "
        "anomaly.threshold.value 0.1: a fixed threshold is on one score's scale, and auto chooses "
        "the score after training; set anomaly.score to mse, mae, ssim or knn, or use "
        "anomaly.threshold.quantile or fpr"
    )
    # A chosen score takes a fixed threshold, auto a chosen one.
    assert load_config(None, ["anomaly.score=ssim", "anomaly.threshold.value=0.1"])
    assert load_config(None, ["anomaly.score=auto", "anomaly.threshold.fpr=0.1"])


def test_predict_refuses_a_run_whose_score_is_auto_but_never_chosen(tmp_path):
    from autoencoder.predict import run_threshold
    from autoencoder.predict.files import config_score

    config = tiny(tmp_path, "anomaly.score=auto")
    assert run_threshold(tmp_path, config) is None  # no metrics.json, no fixed threshold
    with pytest.raises(UserError) as info:
        config_score(tmp_path, config)  # what `predict --threshold T` asks of such a run
    assert str(info.value) == (
        f"{tmp_path}: its anomaly.score is auto and it holds no chosen score (metrics.json "
        f"anomaly/score); train it with `autoencoder anomaly`, which chooses and saves one, or "
        f"set anomaly.score in its config.yaml to mse, mae, ssim or knn"
    )


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
        (
            ["anomaly.normal=[0]", "anomaly.score=knn", "data.patches={size: [16, 16]}"],
            "anomaly.score: knn compares the code of a whole image with the normal training "
            "codes, and data.patches cuts each image into tiles of its own codes; use mse, mae "
            "or ssim with data.patches, or leave data.patches out",
        ),
    ],
    ids=["no anomalies", "unknown class", "knn on tiles"],
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
    assert set(result["auroc_by_score"]) == {"mse", "mae", "ssim", "knn"}
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
    assert len(rows) == 6
    assert all(r["anomaly"] == str(int(float(r["mse"]) > result["threshold"])) for r in rows)


def test_the_api_scores_arrays_as_the_run_scored_its_test_images(zero_run):
    import autoencoder as ae

    run_dir, result, config = zero_run
    with open(run_dir / "anomaly_scores.csv") as handle:
        rows = list(csv.DictReader(handle))[:40]
    test = load_splits(config).pixels("test")
    got = ae.load_run(run_dir).anomaly_scores(test[[int(r["index"]) for r in rows]])
    assert got["kind"] == "mse" and got["threshold"] == pytest.approx(result["threshold"])
    assert got["score"] == pytest.approx([float(r["score"]) for r in rows], rel=1e-4)
    assert got["flagged"].tolist() == [r["flagged"] == "1" for r in rows]
    assert 0 < got["flagged"].sum() < len(rows)  # zeros kept, other digits flagged
    # A threshold of one's own, and every image above 0 is flagged.
    assert ae.load_run(run_dir).anomaly_scores(test[:5], threshold=0)["flagged"].all()
    with pytest.raises(UserError, match=r"^threshold=-1: pass a number, 0 or more"):
        ae.load_run(run_dir).anomaly_scores(test[:5], threshold=-1)


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


@pytest.mark.parametrize("which", ["zero_run", "knn_run"])
def test_plot_redraws_the_anomaly_figures_from_the_runs_own_scores(which, request, tmp_path):
    import autoencoder as ae
    from autoencoder.plots import anomaly as drawn

    run_dir, result, _ = request.getfixturevalue(which)
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    for path in (copy / "figures").glob("anomaly_*.png"):
        path.unlink()
    kept = {name: (copy / name).read_bytes() for name in ("metrics.json", "anomaly_scores.csv")}
    seen = {}
    real = drawn.plot_anomaly_scores

    def spy(path, scores, labels, anomalous, threshold, **kw):
        seen.update(scores=scores, anomalous=anomalous, threshold=threshold)
        return real(path, scores, labels, anomalous, threshold, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(anomaly, "plot_anomaly_scores", spy)
        paths = ae.load_run(copy).plot()
    names = {p.name for p in paths}
    assert {"anomaly_scores.png", "anomaly_roc.png", "anomaly_extremes.png"} <= names
    assert all(p.is_file() for p in paths) and "reconstructions.png" in names
    with open(copy / "anomaly_scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    # The scores the run recorded, by its own kind (knn included), and its threshold.
    assert seen["scores"] == pytest.approx([float(r["score"]) for r in rows], rel=1e-4)
    assert seen["anomalous"].tolist() == [r["group"] == "anomaly" for r in rows]
    assert seen["threshold"] == result["threshold"]
    assert kept == {name: (copy / name).read_bytes() for name in kept}  # figures alone


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
# A tiny run scored by the code's distance (anomaly.score knn)


@pytest.fixture(scope="module")
def knn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("knn")
    extra = ["data.limit=null", "train.epochs=3", "anomaly.normal=[0]", "anomaly.score=knn"]
    config = tiny(out, *extra, "anomaly.neighbors=4")
    return (*anomaly.anomaly_run(config), config)


@pytest.mark.slow
def test_the_knn_score_keeps_the_normal_codes_and_predict_scores_alike(knn_run, tmp_path):
    from autoencoder.data.images import write_png
    from autoencoder.neighbors import CodeNeighbors
    from autoencoder.predict import predict_files

    run_dir, result, config = knn_run
    assert result["score"] == "knn" and result["auroc"] == result["auroc_by_score"]["knn"]
    assert set(result["auroc_by_score"]) == set(SCORE_NAMES)
    assert 0.6 < result["auroc"] <= 1.0  # zeros against the rest, after three short epochs
    # The reference: one 8-number code per normal training image, never a validation image's.
    reference = CodeNeighbors.load(run_dir)
    trained_on = load_splits(
        config.model_copy(update={"data": config.data.model_copy(update={"classes": [0]})})
    )
    assert reference.codes.shape == (trained_on.count("train"), 8)
    assert reference.neighbors == 4
    # predict scores image files by the same codes: the same numbers as anomaly_scores.csv.
    with open(run_dir / "anomaly_scores.csv") as handle:
        rows = list(csv.DictReader(handle))[:8]
    test = load_splits(config).pixels("test")
    for row in rows:
        write_png(tmp_path / f"t{int(row['index']):03d}.png", test[int(row["index"])])
    summary = predict_files(run_dir, sorted(tmp_path.glob("t*.png")), tmp_path / "out")
    assert summary["kind"] == "knn" and summary["threshold"] == pytest.approx(result["threshold"])
    with open(tmp_path / "out" / "scores.csv") as handle:
        predicted = list(csv.DictReader(handle))
    assert [r["score_kind"] for r in predicted] == ["knn"] * len(rows)
    got = [float(r["score"]) for r in predicted]
    assert got == pytest.approx([float(r["score"]) for r in rows], rel=1e-4)
    assert len(set(got)) > 1
    # And the API scores arrays of the same images alike.
    import autoencoder as ae

    scored = ae.load_run(run_dir).anomaly_scores(test[[int(r["index"]) for r in rows]])
    assert scored["kind"] == "knn" and scored["score"] == pytest.approx(got, rel=1e-4)
    # Without its codes the run cannot score by knn: one line, before any output is made.
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    (bare / "anomaly_codes.npz").unlink()
    with pytest.raises(UserError, match=r"anomaly_codes.npz: missing; the knn score compares"):
        predict_files(bare, sorted(tmp_path.glob("t*.png")), tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------------------------------------
# A tiny run with anomaly.score auto, and the same run with a poisoned test split


def _auto_config(out, name):
    extra = ["data.limit=null", "train.epochs=1", "anomaly.normal=[0]", "anomaly.score=auto"]
    return tiny(out, *extra, f"name={name}")


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("auto")
    return anomaly.anomaly_run(_auto_config(out, "clean"))


@pytest.mark.slow
def test_auto_reports_its_choice_and_every_candidates_validation_auroc(auto_run):
    run_dir, result = auto_run
    aurocs = result["val_auroc_by_score"]
    assert list(aurocs) == list(SCORE_NAMES) and result["score"] == max(aurocs, key=aurocs.get)
    assert result["score_setting"] == "auto"
    assert result["auroc"] == result["auroc_by_score"][result["score"]]
    # As many other-class images as normal validation images, at least 500 when there are.
    assert result["val_anomalies"] == 500 and 20 < result["val_images"] < 500
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["anomaly/score"] == result["score"]  # what predict applies: never "auto"
    assert metrics["anomaly/val_auroc_by_score"] == aurocs
    with open(run_dir / "anomaly_scores.csv") as handle:
        assert {r["score_kind"] for r in csv.DictReader(handle)} == {result["score"]}
    lines = anomaly.format_report(result).splitlines()
    assert lines[0].endswith(f"score: {SCORE_NAMES[result['score']]} per image (auto)")
    at = lines.index(
        f"score chosen by anomaly.score auto on validation images only, no test image seen: "
        f"{result['val_images']:,} normal validation images against 500 training-pool images "
        f"of the other classes"
    )
    width = len("code kNN distance")  # the longest name
    assert lines[at + 1] == f"  {'score':<{width}} validation ROC-AUC"
    rows = lines[at + 2 : at + 2 + len(aurocs)]
    for line, (kind, value) in zip(rows, aurocs.items(), strict=True):
        mark = "  chosen" if kind == result["score"] else ""
        assert line == f"  {SCORE_NAMES[kind]:<{width}} {value:.4f}{mark}"
    assert lines[at + 2 + len(aurocs)].startswith("threshold ")


@pytest.mark.slow
def test_score_auto_never_reads_the_test_split(auto_run, tmp_path, monkeypatch):
    """The same run with the test split's labels shuffled and its images noise chooses alike."""
    _, clean = auto_run
    events, given = [], []
    real_load, real_train, real_choose = anomaly.load_splits, anomaly.train, anomaly.choose_score

    def poisoned_load(config, **kwargs):
        splits = real_load(config, **kwargs)
        rng = np.random.default_rng(99)
        splits.y_test = rng.permutation(splits.y_test)
        splits.test_pixels = rng.integers(0, 256, splits.test_pixels.shape, dtype=np.uint8)
        return splits

    def train(*args, **kwargs):
        trained = real_train(*args, **kwargs)
        events.append("trained")
        return trained

    def choose(normal, anomalies):
        given.append((normal, anomalies))
        events.append("chosen")
        return real_choose(normal, anomalies)

    def spy(method):
        def read(self, split):
            events.append((method.__name__, split))
            return method(self, split)

        return read

    monkeypatch.setattr(anomaly, "load_splits", poisoned_load)
    monkeypatch.setattr(anomaly, "train", train)
    monkeypatch.setattr(anomaly, "choose_score", choose)
    monkeypatch.setattr(Splits, "pixels", spy(Splits.pixels))
    monkeypatch.setattr(Splits, "labels", spy(Splits.labels))
    _, poisoned = anomaly.anomaly_run(_auto_config(tmp_path, "poisoned"))

    assert poisoned["score"] == clean["score"]
    assert poisoned["val_auroc_by_score"] == clean["val_auroc_by_score"]
    assert poisoned["threshold"] == clean["threshold"]  # chosen on normal validation images
    assert abs(poisoned["auroc"] - clean["auroc"]) > 0.1  # the poison did reach the test scores
    # Between training and the choice nothing reads the test split; it is read after.
    start, chosen = events.index("trained"), events.index("chosen")
    assert [e for e in events[start + 1 : chosen] if e[1] == "test"] == []
    assert ("pixels", "test") in events[chosen:]
    # The choice sees arrays of validation scores only: the normal images', the others'.
    ((normal, anomalies),) = given
    assert {len(v) for v in normal.values()} == {poisoned["val_images"]}
    assert {len(v) for v in anomalies.values()} == {poisoned["val_anomalies"]}
    assert all(isinstance(v, np.ndarray) for v in [*normal.values(), *anomalies.values()])


@pytest.mark.slow
def test_a_resumed_anomaly_run_is_scored_again_with_its_new_model(knn_run, tmp_path, caplog):
    import autoencoder as ae

    run_dir, before, _ = knn_run
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    (copy / "export" / "saved_model").mkdir(parents=True)  # as an earlier export left it
    scores_before = (copy / "anomaly_scores.csv").read_text()
    caplog.set_level(logging.INFO, logger="autoencoder")
    ae.resume(copy, epochs=4)
    metrics = runs.read_metrics(copy)
    # The report of the resumed model, not dropped by the resume's evaluation.
    assert metrics["anomaly/score"] == "knn" and metrics["anomaly/normal"] == ["0"]
    assert metrics["anomaly/rule"] == before["rule"] and metrics["anomaly/data_classes"] is None
    assert 0.5 < metrics["anomaly/auroc"] <= 1 and metrics["anomaly/threshold"] > 0
    seconds = [float(row["seconds"]) for row in runs.read_history(copy)]
    assert len(seconds) == 4 and metrics["anomaly/minutes"] == pytest.approx(sum(seconds) / 60)
    rows = (copy / "anomaly_scores.csv").read_text().splitlines()
    assert len(rows) == len(scores_before.splitlines()) and rows != scores_before.splitlines()
    assert f"{copy / 'export'} holds models exported before this training" in caplog.text


@pytest.mark.slow
def test_an_anomaly_run_stopped_before_its_scoring_is_scored_by_resume(knn_run, tmp_path, caplog):
    import json

    import autoencoder as ae

    run_dir, _, config = knn_run
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    # As Ctrl-C during training leaves it: no anomaly results, no scores, no reference codes.
    metrics = runs.read_metrics(copy)
    kept = {k: v for k, v in metrics.items() if not k.startswith("anomaly/")}
    (copy / "metrics.json").write_text(json.dumps(kept))
    for name in ("anomaly_scores.csv", "anomaly_codes.npz"):
        (copy / name).unlink()
    caplog.set_level(logging.INFO, logger="autoencoder")
    ae.resume(copy, epochs=4)
    assert (
        f"{copy}: made by `autoencoder anomaly` and stopped before its scoring; scoring it now "
        f"against every class of its data"
    ) in caplog.text
    metrics = runs.read_metrics(copy)
    assert metrics["anomaly/score"] == "knn" and metrics["anomaly/normal"] == ["0"]
    assert 0.5 < metrics["anomaly/auroc"] <= 1 and metrics["anomaly/threshold"] > 0
    assert (copy / "anomaly_scores.csv").is_file() and (copy / "anomaly_codes.npz").is_file()
    # A run trained with `train` from a config that names normal classes is not one.
    assert not anomaly.stopped_before_scoring(config)
    assert anomaly.stopped_before_scoring(runs.load_run_config(copy))


def test_a_folders_scores_name_each_test_file(tmp_path, digits):
    x, y = digits
    zeros, ones = x[y == 0], x[y == 1]
    root = tmp_path / "parts"
    write_digits(root / "train", zeros[:18], [0] * 18)
    write_digits(root / "test", zeros[18:21], [0] * 3, start=100)
    write_digits(root / "test", ones[:2], [1] * 2, start=200)
    config = tiny(
        tmp_path / "runs",
        "data.dataset=folder",
        f"data.path={root}",
        "data.limit=null",
        "train.epochs=1",
        "anomaly.normal=['0']",
        "anomaly.score=mse",
        "anomaly.threshold={value: 0.05}",
    )
    run_dir, _ = anomaly.anomaly_run(config)
    with open(run_dir / "anomaly_scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    expected = [f"test/0/{i:05d}.png" for i in range(100, 103)]
    expected += [f"test/1/{i:05d}.png" for i in (200, 201)]
    assert [r["file"] for r in rows] == expected
    assert [r["group"] for r in rows] == ["normal"] * 3 + ["anomaly"] * 2
    assert all((root / r["file"]).is_file() for r in rows)
