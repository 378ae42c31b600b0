"""Anomaly detection's figures: score histograms, the ROC curve, the extreme images and the
one-class benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder.plots.figure import (
    aspect,
    label_text,
    layout,
    log_axis,
    save,
    show,
    subplots,
    wrap_label,
    write,
)


def plot_anomaly_scores(
    path: Path, scores, labels, anomalous, threshold: float, names, kind: str, normal: str
) -> None:
    """Score histograms of the normal and anomalous test images, and the scores by class."""
    classes = np.unique(labels)
    fig, (hist, box) = subplots(1, 2, figsize=(12.5, 4.6), gridspec_kw={"width_ratios": [1, 1.25]})
    # Reconstruction errors are skewed: a log axis shows both groups' bulk and their tails.
    positive = scores[scores > 0]
    low, high = (float(positive.min()), float(scores.max())) if len(positive) else (1e-6, 1.0)
    wide = high / max(low, 1e-12) > 30
    bins = np.geomspace(low, high, 60) if wide else np.linspace(low, high, 60)
    for group, colour, text in (
        (~anomalous, "tab:blue", "normal"),
        (anomalous, "tab:red", "anomaly"),
    ):
        # Each group's share of its own images a bin: groups of 100 and 9,000 compare, and
        # the axis reads as a fraction (a density on a log axis reads in the hundreds).
        values = np.clip(scores[group], low, None)
        hist.hist(
            values,
            bins=bins,
            weights=np.full(len(values), 1 / max(len(values), 1)),
            histtype="stepfilled",
            alpha=0.45,
            color=colour,
            label=f"{text} ({int(group.sum()):,})",
        )
    hist.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    if wide:
        log_axis(hist, "x")
    hist.set_xlabel(f"anomaly score ({kind} per image)")
    hist.set_ylabel("share of the group's images")
    hist.set_title(f"Test scores by group (normal: {normal})", fontsize=10)
    hist.legend(fontsize=8, loc="best")
    parts = box.bxp(
        [_box_stats(scores[labels == c]) for c in classes],
        showfliers=False,
        patch_artist=True,
        widths=0.6,
    )
    normal_classes = {int(c) for c in classes if not anomalous[labels == c].any()}
    for patch, c in zip(parts["boxes"], classes):
        patch.set_facecolor("tab:blue" if int(c) in normal_classes else "tab:red")
        patch.set_alpha(0.5)
    box.axhline(threshold, color="black", linestyle="--", linewidth=1)
    ticks = [
        names[int(c)] if names is not None and int(c) < len(names) else str(c) for c in classes
    ]
    slanted = len(classes) > 6 and max(map(len, ticks)) > 3  # long names would overlap flat
    box.set_xticks(range(1, len(classes) + 1))
    box.set_xticklabels(
        ticks, rotation=30 if slanted else 0, ha="right" if slanted else "center", fontsize=8
    )
    box.set_xlabel("class")
    if wide:
        log_axis(box)
    box.set_ylabel(f"{kind} per image")
    box.set_title(
        "By class (blue: normal, red: anomalies)\nboxes: quartiles; whiskers: 1st to 99th "
        "percentile; dashed: the threshold",
        fontsize=9,
    )
    layout(fig)
    write(fig, path)


def _box_stats(values) -> dict:
    """A box of quartiles whose whiskers end at the 1st and 99th percentiles themselves."""
    from matplotlib.cbook import boxplot_stats

    # Not matplotlib's whis=(1, 99), which stops at the last score inside the percentiles: in a
    # class of a few images that is the quartile, and the extremes would vanish with the fliers.
    (stats,) = boxplot_stats(values)
    stats["whislo"], stats["whishi"] = np.percentile(values, [1, 99])
    return stats


def plot_roc(path: Path, anomalous, scores, point: tuple[float, float], title: str) -> None:
    """The ROC curve of the scores, with the chance line and the threshold's operating point."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(anomalous, scores)
    auc = roc_auc_score(anomalous, scores)
    fig, ax = subplots(figsize=(5.6, 5.2))
    ax.plot(fpr, tpr, color="tab:red", label=f"autoencoder (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (0.5)")
    ax.plot(
        *point, "o", color="black", label=f"threshold: {point[1]:.1%} caught, {point[0]:.1%} false"
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (normal test images flagged)")
    ax.set_ylabel("true-positive rate (anomalies flagged)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    layout(fig)
    write(fig, path)


def plot_anomaly_extremes(
    path: Path, images, recon, labels, scores, anomalous, names, kind: str
) -> None:
    """The highest- then the lowest-scoring test images, each above its reconstruction."""
    n = len(images) // 2
    width = 1.35 * aspect(images)
    # One number of decimals for every score, enough for three digits of the smallest.
    smallest = float(np.min(np.abs(scores[np.nonzero(scores)]), initial=1.0))
    decimals = int(np.clip(2 - np.floor(np.log10(smallest)), 0, 6))
    # 7.2 inches high: the lower half's titles clear the row above them.
    fig, axes = subplots(4, n, figsize=(width * n + 1.4, 7.2), squeeze=False)
    for half, offset in ((0, 0), (1, n)):
        for j in range(n):
            i = offset + j
            top, bottom = axes[2 * half, j], axes[2 * half + 1, j]
            show(top, images[i])
            show(bottom, recon[i])
            group = "anomaly" if anomalous[i] else "normal"
            top.set_title(
                f"{wrap_label(f'{label_text(names, labels[i])} ({group})', width - 0.1, 7)}\n"
                f"{scores[i]:.{decimals}f}",
                fontsize=7,
                color="tab:red" if anomalous[i] else "tab:blue",
            )
    for row, text in enumerate(("highest", "its recon.", "lowest", "its recon.")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    save(
        fig, path, f"Test images with the highest and the lowest anomaly scores ({kind} per image)"
    )


DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def plot_benchmark(
    path: Path, rows: list[dict], dataset: str, reference=None, classes: int | None = None
) -> None:
    """The one-class benchmark: each class's AUROC as a bar, a published method's as a mark;
    `classes` is how many the benchmark has, when some are still to come."""
    fig, ax = subplots(figsize=(max(5.0, 1.0 + 0.75 * len(rows)), 4.8))
    x = np.arange(len(rows))
    aurocs = [100 * r["auroc"] for r in rows]
    ax.bar(x, aurocs, color="tab:blue", width=0.6, label="autoencoder")
    if reference is not None:
        marks = [reference[r["class"]] for r in rows]
        ax.plot(x, marks, "_", color="black", markersize=22, mew=2, label="Deep SVDD (2018)")
    ax.axhline(
        np.mean(aurocs),
        color="tab:blue",
        linestyle="--",
        linewidth=1,
        label=f"mean {np.mean(aurocs):.1f}",
    )
    names = [r["name"] for r in rows]
    slanted = max(map(len, names)) > 3
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    # From 50, chance: bars from a higher floor would make 80 look a third of 97.
    low = min(aurocs + (marks if reference is not None else []))
    bottom = 50 if low >= 52 else max(0, low - 8)
    ax.set_ylim(bottom, 100.5)
    for i, value in enumerate(aurocs):  # inside the bar, clear of the reference marks above
        ax.text(i, bottom + 1, f"{value:.1f}", ha="center", va="bottom", fontsize=8, color="white")
    ax.set_xlabel("the normal class (all other classes: anomalies)")
    ax.set_ylabel("test AUROC (%; 50 is chance)")
    title = f"One-class anomaly detection on {DATASET_TITLES.get(dataset, dataset)}"
    if classes is not None and len(rows) < classes:  # redrawn as each class finishes
        title += f" ({len(rows)} of {classes} classes so far)"
    ax.set_title(title, fontsize=10)
    # Beside the axes: below them it met the x label once the class names were slanted.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    layout(fig)
    write(fig, path)
