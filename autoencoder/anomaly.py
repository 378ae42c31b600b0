"""`autoencoder anomaly`: train on the normal classes only, score every test image, draw a line.

`anomaly_run(config)` trains a run (pipeline.train) on the classes listed in anomaly.normal,
scores each test image of every class by how badly it is reconstructed, or by how far its code
lies from the normal training images' codes (anomaly.score; knn: neighbors.py), and reports
ROC-AUC and average precision of the other classes (the anomalies) against the normal
ones. The threshold is chosen on the normal validation images, never on the test set, and is
saved with the run (metrics.json `anomaly/threshold` and `anomaly/score`, which `predict` reads).

`anomaly.score: auto` chooses the score on validation images alone, before any test image is
scored: the normal validation images against a seeded sample of the other classes' images from
the training pool (never trained on: the run sees the normal classes only), each kind's AUROC on
them, the highest wins.

The one-class benchmark (each class in turn the normal one) is anomaly_benchmark.py.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder import atomic, lock, runs
from autoencoder.config import Config
from autoencoder.data import Splits, load_splits, scaled, subset_splits
from autoencoder.errors import UserError, named
from autoencoder.evaluate import SCORE_CHOICES, SCORE_NAMES, per_image_score
from autoencoder.neighbors import CodeNeighbors, flat_codes
from autoencoder.noise import model_inputs
from autoencoder.pipeline import train
from autoencoder.plots import (
    plot_anomaly_extremes,
    plot_anomaly_scores,
    plot_roc,
)

log = logging.getLogger(__name__)

# auto's anomalous validation images: as many as the normal validation images, within these
# bounds (an AUROC on a few dozen images moves by whole points; past a few thousand it hardly
# moves, and each image costs a reconstruction and an SSIM).
AUTO_IMAGES = (500, 2000)
FEW_VALIDATION = 20  # below this many normal validation images a quantile is mostly luck
COMMAND = "autoencoder anomaly"  # what its locks say it is
ANOMALY_FIGURES = ("anomaly_scores.png", "anomaly_roc.png", "anomaly_extremes.png")


@dataclass
class Scored:
    """Every test image's score and label, and the normal validation images' scores."""

    test: np.ndarray
    labels: np.ndarray
    val: np.ndarray


# ---------------------------------------------------------------------------------------------
# Checks before anything is trained


def normal_classes(config: Config, names: tuple[str, ...]) -> list[int]:
    """anomaly.normal as label numbers; one line for a class the data does not have."""
    keys = config.anomaly.normal
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    if keys is None:
        raise UserError(
            f"anomaly.normal: not set; list the normal classes, e.g. "
            f"{named('--set anomaly.normal=[0]', 'normal=[0]')} (the other classes are the anomalies; this data's classes: {shown})"
        )
    from autoencoder.data.splits import class_index, class_indices

    out = []
    for key in keys:
        index = class_index(key, names)
        if index is None:
            raise UserError(
                f"anomaly.normal: {key!r} is not a class of {_where(config)}; its classes: "
                f"{shown} (by name, or number 0 to {len(names) - 1})"
            )
        out.append(index)
    kept = config.data.classes
    if kept is not None:
        allowed = class_indices(kept, names, _where(config))
        outside = [names[k] for k in out if k not in allowed]
        if outside:
            raise UserError(
                f"anomaly.normal: {', '.join(outside)} is left out by data.classes {kept}; "
                f"list it in data.classes too, or drop data.classes"
            )
    return out


def _where(config: Config) -> str:
    return config.data.path if config.data.dataset == "folder" else config.data.dataset


def check_groups(labels: np.ndarray, normal: list[int], names: tuple[str, ...]) -> np.ndarray:
    """Which test images are anomalies; one line when either group is empty."""
    anomalous = ~np.isin(labels, normal)
    given = ", ".join(names[k] for k in normal)
    if anomalous.all():
        raise UserError(
            f"anomaly.normal: the test split holds no image of {given}, so there is nothing "
            f"normal to score against; list classes the test split holds"
        )
    if not anomalous.any():
        raise UserError(
            f"anomaly.normal: {given} is every class of the test split, which leaves no "
            f"anomalies to score; leave at least one class out of anomaly.normal"
        )
    return anomalous


def stopped_before_scoring(trained_on: Config) -> bool:
    """A run's config is an `anomaly` run's (data.classes, its normal classes alone); the caller
    knows its metrics.json holds no anomaly results yet."""
    normal, kept = trained_on.anomaly.normal, trained_on.data.classes
    return normal is not None and kept is not None and len(kept) == len(normal)


def _training_config(config: Config, normal: list[int]) -> Config:
    data = config.data.model_copy(update={"classes": normal})
    return config.model_copy(update={"data": data})


# ---------------------------------------------------------------------------------------------
# anomaly.score: auto, chosen on validation images only


def selection_images(splits: Splits, normal: list[int], count: int, seed: int) -> Splits:
    """A seeded sample of the other classes' training-pool images, as the val split of a Splits."""
    # The training pool (train and val splits), never the test split; the Splits returned holds
    # empty train and test splits, so what scores it cannot reach the test split either.
    pool = {s: np.flatnonzero(~np.isin(splits.labels(s), normal)) for s in ("train", "val")}
    cut = len(pool["train"])
    total = cut + len(pool["val"])
    if total == 0:
        given = ", ".join(splits.class_names[k] for k in normal)
        raise UserError(
            f"anomaly.score: auto chooses the score on images of the other classes outside the "
            f"test split, and the training pool holds only {given}; set anomaly.score to "
            f"{SCORE_CHOICES}, or add images of other classes to the training pool (they are not "
            f"trained on)"
        )
    chosen = np.sort(np.random.default_rng(seed).choice(total, min(count, total), replace=False))
    picks = {
        "train": pool["train"][chosen[chosen < cut]],
        "val": pool["val"][chosen[chosen >= cut] - cut],
    }
    source = f"{len(chosen):,} training-pool images of the other classes"
    return subset_splits(splits, picks, source, into="val")


def choose_score(
    normal: dict[str, np.ndarray], anomalies: dict[str, np.ndarray]
) -> tuple[str, dict[str, float]]:
    """The kind whose scores best separate two groups of images (highest AUROC), every AUROC."""
    from sklearn.metrics import roc_auc_score

    first = next(iter(normal))
    truth = np.concatenate([np.zeros(len(normal[first])), np.ones(len(anomalies[first]))])
    aurocs = {
        kind: float(roc_auc_score(truth, np.concatenate([normal[kind], anomalies[kind]])))
        for kind in SCORE_NAMES
        if kind in normal
    }
    # max() keeps the first of equals: ties go by SCORE_NAMES' order, whatever the dicts' order.
    return max(aurocs, key=aurocs.get), aurocs


# ---------------------------------------------------------------------------------------------
# Scores and the threshold


def score_split(
    config: Config, model, splits, split: str, kinds=None, codes=None
) -> dict[str, np.ndarray]:
    """Every image's score in `split` by each kind (anomaly.score's alone by default).

    `codes` is (encoder, CodeNeighbors), needed for the knn kind.
    """
    # Chunk by chunk: a streamed split is never whole; each chunk is reconstructed once.
    kinds = kinds or (config.anomaly.score,)
    parts = {kind: [] for kind in kinds}
    for _, images, inputs, recon in runs.reconstruct_chunks(config, model, splits, split):
        for kind in kinds:
            if kind == "knn":
                # The code of what the model is given (noisy, for a denoiser), as the reference's.
                encoder, reference = codes
                parts[kind].append(reference.distances(flat_codes(runs.predict(encoder, inputs))))
            else:
                parts[kind].append(per_image_score(kind, images, recon))
    return {kind: np.concatenate(chunks) for kind, chunks in parts.items()}


def fit_codes(config: Config, encoder, splits) -> CodeNeighbors:
    """The normal training images' codes, as the knn score's reference."""
    # A denoiser's inputs carry fixed noise, keyed apart from the test (0) and validation (1)
    # splits' so no training image shares a validation image's noise.
    chunks = [
        flat_codes(runs.predict(encoder, model_inputs(scaled(pixels), config, 2, start)))
        for start, pixels in splits.chunks("train")
    ]
    return CodeNeighbors.fit(np.concatenate(chunks), config.anomaly.neighbors, config.seed)


def score_kinds(config: Config) -> tuple[str, ...]:
    """The kinds scored (and, with auto, chosen among); one line for knn on tiles."""
    if config.data.patches is None:
        return tuple(SCORE_NAMES)
    if config.anomaly.score == "knn":
        raise UserError(
            "anomaly.score: knn compares the code of a whole image with the normal training "
            "codes, and data.patches cuts each image into tiles of its own codes; use mse, mae "
            "or ssim with data.patches, or leave data.patches out"
        )
    return tuple(kind for kind in SCORE_NAMES if kind != "knn")


def choose_threshold(val: np.ndarray, rule: str, number: float) -> float:
    """The threshold a rule gives on the normal validation scores (images above it flagged).

    Args:
      val: the scores of normal validation images.
      rule: "quantile" (at most 1 - number of them above it), "fpr" (at most number of them
        above it) or "value" (number itself).
    Raises:
      UserError: no validation scores, or all of them equal (no quantile means anything).
    """
    if rule == "value":
        return float(number)
    if len(val) == 0:
        raise UserError(
            f"anomaly.threshold.{rule}: there are no normal validation images to choose it on; "
            f"raise data.validation_split, or set anomaly.threshold.value"
        )
    if float(np.max(val)) == float(np.min(val)):
        raise UserError(
            f"anomaly.threshold.{rule}: all {len(val):,} normal validation images score "
            f"{float(val[0]):.6g}, so no {rule} separates them; set anomaly.threshold.value, "
            f"or train the model longer"
        )
    q = number if rule == "quantile" else 1.0 - number
    # "inverted_cdf": the lowest validation score with at most a (1 - q) share of them above it.
    return float(np.quantile(val, q, method="inverted_cdf"))


def report(scored: Scored, anomalous: np.ndarray, threshold: float) -> dict:
    """ROC-AUC, average precision, and the confusion matrix at the threshold."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    flagged = scored.test > threshold
    normal = ~anomalous
    tp, fn = int(np.sum(flagged & anomalous)), int(np.sum(~flagged & anomalous))
    fp, tn = int(np.sum(flagged & normal)), int(np.sum(~flagged & normal))
    return {
        "auroc": float(roc_auc_score(anomalous, scored.test)),
        "ap": float(average_precision_score(anomalous, scored.test)),
        "threshold": float(threshold),
        "val_fpr": float(np.mean(scored.val > threshold)) if len(scored.val) else None,
        "val_images": int(len(scored.val)),
        "test_normal": int(normal.sum()),
        "test_anomalies": int(anomalous.sum()),
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "tn": tn,
        "tpr": tp / max(tp + fn, 1),
        "fpr": fp / max(fp + tn, 1),
        "precision": tp / max(tp + fp, 1),
    }


# ---------------------------------------------------------------------------------------------
# One run


def anomaly_run(config: Config) -> tuple[Path, dict]:
    """Train on anomaly.normal, score every test image, choose and save the threshold.

    Args:
      config: the resolved config; its data section names the data (every class is scored),
        anomaly.normal the classes the model is trained on.
    Returns:
      (the run directory, the report format_report prints; also in its metrics.json as
      anomaly/<key>).
    Raises:
      UserError: an unknown or missing normal class, a test split without anomalies or without
        normal images, no normal validation images for a quantile or for score auto, no images
        of the other classes outside the test split for score auto: all before training; after
        it, a threshold that cannot be chosen (the run is kept).
    """
    # The test split of every class the data holds (as data.classes keeps them), normal or not.
    full = load_splits(config)
    names = tuple(full.class_names)
    normal = normal_classes(config, names)
    check_groups(full.labels("test"), normal, names)  # refused before training
    trained_on = _training_config(config, normal)
    rule, number = config.anomaly.threshold.rule()
    normal_splits = load_splits(trained_on)  # read once: counted now, scored after training
    held = normal_splits.count("val")
    if rule != "value" and held == 0:
        choose_threshold(np.zeros(0), rule, number)  # refuses, before any training
    selection = None
    if config.anomaly.score == "auto":
        if held == 0:
            raise UserError(
                "anomaly.score: auto chooses the score on the normal validation images, and "
                "there are none; raise data.validation_split, or set anomaly.score to "
                f"{SCORE_CHOICES}"
            )
        count = int(np.clip(held, *AUTO_IMAGES))
        selection = selection_images(full, normal, count, config.seed)  # refused before training
    kinds = score_kinds(config)  # refused before training
    if rule != "value" and held < FEW_VALIDATION:
        log.warning(
            "only %d normal validation images: a %s threshold on so few is mostly luck", held, rule
        )
    start = time.perf_counter()
    trained = train(trained_on, command=COMMAND, splits=normal_splits)
    minutes = (time.perf_counter() - start) / 60
    run_dir, (model, encoder, _) = trained.run_dir, trained.models
    with lock.hold(run_dir, COMMAND):
        codes = None
        if "knn" in kinds:
            codes = encoder, fit_codes(trained_on, encoder, normal_splits)
            codes[1].save(run_dir)
        result = _score_run(
            config, run_dir, model, full, trained_on, normal_splits, minutes, selection, codes
        )
        return run_dir, result


def rescore_run(run_dir: Path, previous: dict, models) -> dict:
    """Score a resumed anomaly run's test images again with its new model, as anomaly_run does.

    Args:
      run_dir: the run `autoencoder anomaly` made and `autoencoder resume` has trained further.
      previous: its metrics.json before the resume (the anomaly/ keys say which classes its
        data held).
      models: (autoencoder, encoder, decoder) as resumed.
    Returns:
      The report, as anomaly_run's.
    """
    trained_on = runs.load_run_config(run_dir)  # its data.classes: the normal ones
    config = _scored_config(trained_on, previous)
    full = load_splits(config)
    normal = normal_classes(config, tuple(full.class_names))
    normal_splits = load_splits(trained_on)
    selection = None
    if config.anomaly.score == "auto":
        count = int(np.clip(normal_splits.count("val"), *AUTO_IMAGES))
        selection = selection_images(full, normal, count, config.seed)
    model, encoder, _ = models
    minutes = sum(float(row.get("seconds") or 0) for row in runs.read_history(run_dir)) / 60
    with lock.hold(run_dir, COMMAND):
        codes = None
        if "knn" in score_kinds(config):
            codes = encoder, fit_codes(trained_on, encoder, normal_splits)
            codes[1].save(run_dir)
        return _score_run(
            config, run_dir, model, full, trained_on, normal_splits, minutes, selection, codes
        )


def _scored_config(trained_on: Config, metrics: dict) -> Config:
    """The config of the data an anomaly run scored: every class its data held."""
    # None (all classes) for runs made before anomaly/data_classes was saved.
    data = trained_on.data.model_copy(update={"classes": metrics.get("anomaly/data_classes")})
    return trained_on.model_copy(update={"data": data})


def redraw_figures(run_dir: Path, model, encoder=None) -> list[Path]:
    """Draw an anomaly run's figures again (as `plot` does), its test images scored anew.

    Nothing but the figures is written: the threshold and the scores' figures are the run's.
    """
    metrics = runs.read_metrics(run_dir)
    result = {k.removeprefix("anomaly/"): v for k, v in metrics.items() if k.startswith("anomaly/")}
    config = _scored_config(runs.load_run_config(run_dir), metrics)
    full = load_splits(config)
    names = tuple(full.class_names)
    anomalous = check_groups(full.labels("test"), normal_classes(config, names), names)
    kind = result["score"]
    codes = (encoder, CodeNeighbors.load(run_dir)) if kind == "knn" else None
    test = score_split(config, model, full, "test", (kind,), codes)[kind]
    scored = Scored(test=test, labels=full.labels("test"), val=np.zeros(0))
    return _draw(run_dir, config, full, model, scored, anomalous, result, names)


def _score_run(
    config, run_dir, model, full, trained_on, normal_splits, minutes, selection=None, codes=None
) -> dict:
    """Choose the score (auto), score the test images, choose the threshold, write the run."""
    names = tuple(full.class_names)
    normal = normal_classes(config, names)
    rule, number = config.anomaly.threshold.rule()
    kinds = score_kinds(config)
    val = score_split(trained_on, model, normal_splits, "val", kinds, codes)
    chosen = {}
    if selection is None:
        kind = config.anomaly.score
    else:
        # Before any test image is scored, and from these validation arrays alone.
        others = score_split(trained_on, model, selection, "val", kinds, codes)
        kind, val_aurocs = choose_score(val, others)
        chosen = {
            "val_auroc_by_score": val_aurocs,
            "val_anomalies": int(selection.count("val")),
        }
        log.info(
            "anomaly.score auto: %s (validation AUROC %s; no test image seen)",
            SCORE_NAMES[kind],
            ", ".join(f"{SCORE_NAMES[k]} {v:.4f}" for k, v in val_aurocs.items()),
        )
    anomalous = check_groups(full.labels("test"), normal, names)
    # Every kind of score on the same reconstructions: which one suits this data is in the report.
    every = score_split(config, model, full, "test", kinds, codes)
    scored = Scored(test=every[kind], labels=full.labels("test"), val=val[kind])
    try:
        threshold = choose_threshold(scored.val, rule, number)
    except UserError as exc:
        raise UserError(f"{exc} (the trained run is kept: {run_dir})") from None
    from sklearn.metrics import roc_auc_score

    result = report(scored, anomalous, threshold)
    result.update(
        auroc_by_score={k: float(roc_auc_score(anomalous, v)) for k, v in every.items()},
        score=kind,
        score_setting=config.anomaly.score,
        **chosen,
        rule=rule,
        rule_value=number,
        normal=[names[k] for k in normal],
        data_classes=config.data.classes,
        minutes=minutes,
        run_dir=str(run_dir),
    )
    _write(run_dir, config, full, model, scored, anomalous, result, names)
    return result


def _write(run_dir, config, splits, model, scored, anomalous, result, names) -> None:
    runs.merge_metrics(run_dir, {f"anomaly/{k}": v for k, v in result.items() if k != "run_dir"})
    files = splits.report.get("test_files")
    atomic.write_text(
        run_dir / "anomaly_scores.csv", _scores_csv(scored, anomalous, result, names, files)
    )
    _draw(run_dir, config, splits, model, scored, anomalous, result, names)


def _draw(run_dir, config, splits, model, scored, anomalous, result, names) -> list[Path]:
    """The three anomaly figures: scores by class, ROC, the extremes; their paths."""
    kind = SCORE_NAMES[result["score"]]
    normal_text = ", ".join(map(str, result["normal"]))
    figures = run_dir / "figures"
    plot_anomaly_scores(
        figures / "anomaly_scores.png",
        scored.test,
        scored.labels,
        anomalous,
        result["threshold"],
        names=names,
        kind=kind,
        normal=normal_text,
    )
    plot_roc(
        figures / "anomaly_roc.png",
        anomalous,
        scored.test,
        (result["fpr"], result["tpr"]),
        title=f"ROC of the test scores ({kind}); normal: {normal_text}, the rest anomalies",
    )
    n = min(config.anomaly.examples, len(scored.test) // 2)
    order = np.argsort(scored.test, kind="stable")
    picked = np.concatenate([order[::-1][:n], order[:n]])
    images, recon = _gather(config, model, splits, picked)
    plot_anomaly_extremes(
        figures / "anomaly_extremes.png",
        images,
        recon,
        scored.labels[picked],
        scored.test[picked],
        anomalous[picked],
        names=names,
        kind=kind,
    )
    return [figures / name for name in ANOMALY_FIGURES]


def _gather(config, model, splits, picked: np.ndarray):
    """The test images at `picked` (in that order) and their reconstructions."""
    found: dict[int, tuple] = {}
    wanted = set(picked.tolist())
    for start, images, _, recon in runs.reconstruct_chunks(config, model, splits, "test"):
        for i in range(len(images)):
            if start + i in wanted:
                found[start + i] = (images[i], recon[i])
    return (
        np.stack([found[i][0] for i in picked.tolist()]),
        np.stack([found[i][1] for i in picked.tolist()]),
    )


def _scores_csv(scored: Scored, anomalous, result: dict, names, files=None) -> str:
    """One row a test image; `files` (a folder's, relative to data.path) names each image."""
    out = io.StringIO()
    writer = csv.writer(out)
    where = ["file"] if files is not None else []
    writer.writerow(["index", *where, "label", "class", "group", "score", "score_kind", "flagged"])
    kind = result["score"]  # auto's choice, never "auto"
    for i, (label, score) in enumerate(zip(scored.labels, scored.test)):
        group = "anomaly" if anomalous[i] else "normal"
        flagged = int(score > result["threshold"])
        file = [files[i]] if files is not None else []
        row = [int(label), names[int(label)], group, f"{score:.6g}", kind, flagged]
        writer.writerow([i, *file, *row])
    return out.getvalue()


def format_report(result: dict) -> str:
    """What `autoencoder anomaly` prints: the scores' quality, the threshold, the confusion."""
    kind = SCORE_NAMES[result["score"]]
    rule = result["rule"]
    if rule == "value":
        how = "anomaly.threshold.value, as given"
    else:
        share = 1 - result["rule_value"] if rule == "quantile" else result["rule_value"]
        how = (
            f"{rule} {result['rule_value']:g} of {result['val_images']:,} normal validation "
            f"images: {100 * result['val_fpr']:.1f}% of them above it (target {100 * share:g}%)"
        )
    normal, anomalies = result["test_normal"], result["test_anomalies"]
    width = max(len(f"anomaly ({anomalies:,})"), len(f"normal ({normal:,})"))
    auto = result.get("score_setting") == "auto"
    lines = [
        f"anomaly: normal = {', '.join(map(str, result['normal']))}; test: {normal:,} normal, "
        f"{anomalies:,} anomalies; score: {kind} per image" + (" (auto)" if auto else ""),
        f"ROC-AUC {result['auroc']:.4f}   average precision {result['ap']:.4f}",
        "test ROC-AUC by score: "
        + ", ".join(f"{SCORE_NAMES[k]} {v:.4f}" for k, v in result["auroc_by_score"].items()),
        *(_score_choice_lines(result) if auto else []),
        f"threshold {result['threshold']:.6g} ({how})",
        "at the threshold:",
        f"  {'':<{width}}  passed  flagged",
        f"  {f'normal ({normal:,})':<{width}}  {result['tn']:>6,}  {result['fp']:>7,}",
        f"  {f'anomaly ({anomalies:,})':<{width}}  {result['fn']:>6,}  {result['tp']:>7,}",
        f"  anomalies caught {100 * result['tpr']:.1f}%, normals flagged "
        f"{100 * result['fpr']:.1f}%, flagged that are anomalies {100 * result['precision']:.1f}%",
    ]
    return "\n".join(lines)


def _score_choice_lines(result: dict) -> list[str]:
    """auto's choice: each candidate's validation ROC-AUC, and the images it was measured on."""
    aurocs = result["val_auroc_by_score"]
    width = max(len(SCORE_NAMES[k]) for k in aurocs)
    lines = [
        f"score chosen by anomaly.score auto on validation images only, no test image seen: "
        f"{result['val_images']:,} normal validation images against "
        f"{result['val_anomalies']:,} training-pool images of the other classes",
        f"  {'score':<{width}} validation ROC-AUC",
    ]
    for k, v in aurocs.items():
        mark = "  chosen" if k == result["score"] else ""
        lines.append(f"  {SCORE_NAMES[k]:<{width}} {v:.4f}{mark}")
    return lines
