"""Figures of a run: reconstructions, loss curves, worst reconstructions, error by class; a VAE's
samples from the prior, interpolations between test codes and its two loss terms; maps of codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder import runs
from autoencoder.data import DIGITS, load_splits
from autoencoder.evaluate import evaluate_split, per_image_mse, pick_examples
from autoencoder.model import is_vae, load_model, vae_interpolations, vae_samples
from autoencoder.runs import open_run, read_history

DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _show(ax, image, **kwargs):
    # (H, W, 1) -> (H, W) grey; colour images pass through.
    ax.imshow(
        image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1),
        cmap=kwargs.pop("cmap", "gray"),
        vmin=kwargs.pop("vmin", 0),
        vmax=kwargs.pop("vmax", 1),
        **kwargs,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def label_text(names, label) -> str:
    """A class as a figure names it: 'label 7' for digits, else the class's name."""
    label = int(label)
    if names is None or tuple(names) == DIGITS or label >= len(names):
        return f"label {label}"
    return names[label]


def _aspect(x) -> float:
    """Width over height of the images, to size each figure's columns."""
    return min(3.0, max(1.0, x.shape[2] / x.shape[1]))


def plot_reconstructions(path: Path, x, y, recon, n: int = 10, names=None, noisy=None) -> None:
    """Originals (with their class) above their reconstructions (with per-image MSE)."""
    # names: the class names (digits when None); noisy: a denoiser's noisy inputs, drawn between.
    plt = _pyplot()
    idx = pick_examples(y, min(n, len(x)))
    errors = per_image_mse(x[idx], recon[idx])
    rows = [("original", x)] + ([("noisy input", noisy)] if noisy is not None else [])
    rows.append(("reconstruction", recon))
    width = 1.3 * _aspect(x)
    fig, axes = plt.subplots(
        len(rows), len(idx), figsize=(width * len(idx) + 1.2, 1.5 * len(rows) + 0.4), squeeze=False
    )
    for j, i in enumerate(idx):
        for r, (_, images) in enumerate(rows):
            _show(axes[r, j], images[i])
        axes[0, j].set_title(label_text(names, y[i]), fontsize=9)
        axes[-1, j].set_xlabel(f"MSE {errors[j]:.4f}", fontsize=8)
    for r, (text, _) in enumerate(rows):
        axes[r, 0].set_ylabel(text, fontsize=10)
    what = (
        ", their noisy inputs and the model's outputs"
        if noisy is not None
        else " and their reconstructions"
    )
    fig.suptitle(
        f"Test images{what} (mean MSE of these {len(idx)}: {errors.mean():.4f})", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_loss(path: Path, history: list[dict]) -> None:
    """Train and validation loss by epoch (log scale), and the learning rate."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    timed = any("val/mse" in r for r in history)
    fig, axes = plt.subplots(
        1,
        3 if timed else 2,
        figsize=(14 if timed else 10, 3.8),
        gridspec_kw={"width_ratios": [2, 1.5, 1] if timed else [2, 1]},
    )
    ax, ax_lr = axes[0], axes[-1]
    marker = "o" if len(epochs) <= 30 else None
    ax.plot(epochs, [r["train/loss"] for r in history], marker=marker, label="train/loss")
    if any("val/loss" in r for r in history):
        ax.plot(
            epochs, [r.get("val/loss", np.nan) for r in history], marker=marker, label="val/loss"
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("Loss by epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if timed:
        # Error against wall time: what a fixed training budget buys.
        minutes = np.cumsum([r.get("seconds", np.nan) for r in history]) / 60
        ax_t = axes[1]
        ax_t.plot(
            minutes, [r.get("val/mse", np.nan) for r in history], marker=marker, color="tab:purple"
        )
        ax_t.set_yscale("log")
        ax_t.set_xlabel("training time (minutes)")
        ax_t.set_ylabel("val/mse per pixel (log scale)")
        ax_t.set_title("Validation MSE against wall time")
        ax_t.grid(True, which="both", alpha=0.3)
    ax_lr.plot(epochs, [r.get("lr", np.nan) for r in history], marker=marker, color="tab:green")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("Learning rate (end of epoch)")
    ax_lr.set_ylim(0, max(r.get("lr", 0) for r in history) * 1.15 or 1)  # a flat lr reads flat
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.grid(True, alpha=0.3)
    for a in (ax, axes[-1]):
        a.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_worst(path: Path, x, y, recon, n: int = 8, names=None) -> None:
    """The worst-reconstructed images: original, reconstruction and error map with a colour bar."""
    plt = _pyplot()
    errors = per_image_mse(x, recon)
    idx = np.argsort(errors)[::-1][: min(n, len(x))]
    diff = np.abs(x[idx] - recon[idx]).max(axis=-1)  # the largest error of a pixel's channels
    vmax = float(max(diff.max(), 1e-6))
    width = 1.4 * _aspect(x)
    fig, axes = plt.subplots(3, len(idx), figsize=(width * len(idx) + 2.0, 4.9), squeeze=False)
    for j, i in enumerate(idx):
        _show(axes[0, j], x[i])
        axes[0, j].set_title(f"{label_text(names, y[i])}\nMSE {errors[i]:.4f}", fontsize=8)
        _show(axes[1, j], recon[i])
        im = axes[2, j].imshow(diff[j], cmap="inferno", vmin=0, vmax=vmax)
        axes[2, j].set_xticks([])
        axes[2, j].set_yticks([])
    for row, text in enumerate(("original", "reconstruction", "|error|")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    fig.suptitle(f"The {len(idx)} worst-reconstructed test images", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.91, 0.06, 0.015, 0.26))
    fig.colorbar(im, cax=cax, label="|error|")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_error_by_class(path: Path, x, y, recon, names=None, errors=None) -> None:
    """Mean reconstruction MSE per class, with the image count on each bar."""
    # errors: every image's MSE when given (then x and recon are not needed).
    plt = _pyplot()
    errors = per_image_mse(x, recon) if errors is None else errors
    classes = np.unique(y)
    means = [errors[y == c].mean() for c in classes]
    counts = [int((y == c).sum()) for c in classes]
    digits = names is None or tuple(names) == DIGITS
    ticks = [str(int(c)) if digits else names[int(c)] for c in classes]
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(classes) + 1), 3.8))
    bars = ax.bar(ticks, means, color="tab:blue")
    if sum(len(t) + 2 for t in ticks) > 60:  # would run into each other level
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    # Counts inside the foot of each bar: above the bar they collide with the mean line and,
    # on the tallest bar, with the frame.
    for bar, count in zip(bars, counts):
        ax.annotate(
            f"n={count}",
            (bar.get_x() + bar.get_width() / 2, 0),
            ha="center",
            va="bottom",
            fontsize=7,
            color="white",
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.axhline(errors.mean(), color="tab:red", linestyle="--", label=f"all: {errors.mean():.4f}")
    ax.set_xlabel("class (digit)" if digits else "class")
    ax.set_ylabel("mean MSE per pixel")
    ax.set_title("Reconstruction error by class (test split)")
    ax.set_ylim(0, max(means) * 1.25)  # headroom for the legend
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_all(
    run_dir: Path,
    x,
    y,
    recon,
    history: list[dict],
    *,
    names=None,
    by_class=None,
    noisy=None,
    model=None,
) -> list[Path]:
    """Write every figure of a run into run_dir/figures/ and return their paths.

    Args:
      run_dir: the run directory.
      x, y, recon: the test images (float32), labels and reconstructions, or a selection of
        them (the examples and the worst) when by_class is given.
      history: history.csv's rows (no loss figure when empty).
      names: the class names (digits when None).
      by_class: (every test image's MSE, every test label), for the error-by-class figure.
      noisy: a denoiser's noisy inputs of x, drawn between originals and outputs.
      model: a VAE adds samples.png, interpolations.png and, with a history, vae_terms.png.
    """
    out = Path(run_dir) / "figures"
    out.mkdir(exist_ok=True)
    paths = [out / "reconstructions.png", out / "worst.png", out / "error_by_class.png"]
    plot_reconstructions(paths[0], x, y, recon, names=names, noisy=noisy)
    plot_worst(paths[1], x, y, recon, names=names)
    errors, labels = by_class if by_class is not None else (None, y)
    plot_error_by_class(paths[2], x, labels, recon, names=names, errors=errors)
    if history:
        paths.append(out / "loss.png")
        plot_loss(paths[-1], history)
    if model is not None and is_vae(model):
        paths += vae_figures(out, model, x, y, history, names)
    return paths


def plot_evaluation(
    run_dir: Path, evaluation, history: list[dict], names=None, model=None
) -> list[Path]:
    """plot_all from an evaluate.Evaluation: its kept images and every image's error."""
    return plot_all(
        run_dir,
        evaluation.images,
        evaluation.picked_labels,
        evaluation.recon,
        history,
        names=names,
        by_class=(evaluation.errors, evaluation.labels),
        noisy=evaluation.inputs,
        model=model,
    )


def plot_run(run_dir: str | Path) -> list[Path]:
    """Redraw a finished run's figures from its saved model and config; return their paths."""
    run_dir = Path(run_dir)
    with runs.writing(run_dir, "autoencoder plot"):
        config = open_run(run_dir)
        splits = load_splits(config)
        model = load_model(run_dir / "model.keras")
        evaluation = evaluate_split(config, model, splits, "test")
        history = read_history(run_dir)
        return plot_evaluation(run_dir, evaluation, history, splits.class_names, model)


# ---------------------------------------------------------------------------------------------
# A VAE's figures


def vae_figures(out: Path, model, x, y, history: list[dict], names=None) -> list[Path]:
    """samples.png, interpolations.png and (with a history) vae_terms.png; their paths."""
    paths = [out / "samples.png", out / "interpolations.png"]
    latent = model.decoder.input_shape[-1]
    plot_samples(paths[0], vae_samples(model, 64), latent)
    # Pairs of test images of different classes: the first of each class, taken two by two.
    idx = pick_examples(y, min(10, len(x)))
    starts, ends = idx[0:-1:2], idx[1::2]
    steps = vae_interpolations(model, x[starts], x[ends], steps=8)
    labels = [(int(y[a]), int(y[b])) for a, b in zip(starts, ends)]
    plot_interpolations(paths[1], x[starts], steps, x[ends], labels, names=names)
    if history and any("train/kl" in r for r in history):
        paths.append(out / "vae_terms.png")
        plot_vae_terms(paths[-1], history)
    return paths


def plot_samples(path: Path, samples, latent_dim: int, columns: int = 8) -> None:
    """Images decoded from codes drawn from the prior, in a grid."""
    plt = _pyplot()
    rows = int(np.ceil(len(samples) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(0.9 * columns, 0.9 * rows + 0.7))
    for k, ax in enumerate(np.ravel(axes)):
        if k < len(samples):
            _show(ax, samples[k])
        else:
            ax.axis("off")
    fig.suptitle(
        f"{len(samples)} images decoded from random codes z ~ N(0, I)\n"
        f"(the VAE's prior, {latent_dim} numbers each: new images, not reconstructions)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 1), h_pad=0.2, w_pad=0.2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_interpolations(
    path: Path, starts, steps, ends, labels: list[tuple[int, int]], names=None, title=None
) -> None:
    """Per row: a test image, decodings along the line between its code and the next image's,
    and that image."""
    # names: the class names (digits when None); title: the figure's (a VAE's: the means').
    plt = _pyplot()
    n_rows, n_steps = steps.shape[:2]
    fig, axes = plt.subplots(
        n_rows, n_steps + 2, figsize=(0.95 * (n_steps + 2) + 1.0, 1.0 * n_rows + 0.9), squeeze=False
    )
    for r in range(n_rows):
        _show(axes[r, 0], starts[r])
        for t in range(n_steps):
            _show(axes[r, t + 1], steps[r, t])
        _show(axes[r, -1], ends[r])
        a, b = (_class_name(names, label) for label in labels[r])
        # Two lines when the names are long: one line would run past a row's height.
        joint = f"{a} to {b}" if len(a) + len(b) <= 10 else f"{a}\nto {b}"
        axes[r, 0].set_ylabel(joint, fontsize=9 if len(a) + len(b) <= 20 else 8)
    axes[0, 0].set_title("test\nimage", fontsize=8)
    axes[0, -1].set_title("test\nimage", fontsize=8)
    for t in range(n_steps):
        axes[0, t + 1].set_title(f"t={t / (n_steps - 1):.2f}", fontsize=8)
    fig.suptitle(
        title or "Decoded along straight lines between the codes (means) of two test images",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _class_name(names, label) -> str:
    """A class's own name ('7' for a digit, 'Ankle boot'); its number past the names given."""
    label = int(label)
    return names[label] if names is not None and label < len(names) else str(label)


def plot_latent(path: Path, panels: list[tuple], labels, names=None, title: str = "") -> None:
    """Scatter plots of 2-D points side by side, coloured by class, one legend of class names.

    panels: (title, points (N, 2), x label, y label) each, the same N points in every panel.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    classes = [int(c) for c in np.unique(labels)]
    # Qualitative maps whose neighbours stay distinguishable with colour-blindness: tab10 up to
    # ten classes; beyond, tab20's colours again with a second and third marker shape.
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colours = cmap.colors
    style = {
        c: (colours[k % len(colours)], "os^"[(k // len(colours)) % 3])
        for k, c in enumerate(classes)
    }
    size = 6 if len(labels) > 1500 else 12
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels) + 1.8, 5.0), squeeze=False, layout="constrained"
    )
    for ax, (heading, points, xlabel, ylabel) in zip(axes[0], panels):
        for c in classes:
            colour, marker = style[c]
            mine = labels == c
            ax.scatter(
                points[mine, 0],
                points[mine, 1],
                s=size,
                color=colour,
                marker=marker,
                alpha=0.7,
                linewidths=0,
            )
        ax.set_title(heading, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.25)
    handles = [
        Line2D([], [], linestyle="", marker=style[c][1], color=style[c][0], markersize=7)
        for c in classes
    ]
    fig.legend(
        handles,
        [_class_name(names, c) for c in classes],
        loc="outside right center",
        title="digit" if names is None or tuple(names) == DIGITS else "class",
        ncols=1 + (len(classes) - 1) // 20,
        fontsize=9,
    )
    if title:
        fig.suptitle(title, fontsize=12)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_vae_terms(path: Path, history: list[dict]) -> None:
    """A VAE's reconstruction and KL terms per image by epoch, and the KL weight."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) <= 30 else None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.5, 1.5, 1]})
    for ax, term, title in (
        (axes[0], "reconstruction", "Reconstruction term per image"),
        (axes[1], "kl", "KL(q(z|x) || N(0, I)) per image"),
    ):
        for split in ("train", "val"):
            key = f"{split}/{term}"
            if any(key in r for r in history):
                values = [r.get(key, np.nan) for r in history]
                ax.plot(epochs, values, marker=marker, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image" if term == "kl" else "loss summed over pixels")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    weights = [r.get("train/kl_weight", np.nan) for r in history]
    axes[2].plot(epochs, weights, marker=marker, color="tab:green")
    axes[2].set_ylim(0, np.nanmax(weights + [0]) * 1.15 or 1)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("KL weight (end of epoch)")
    axes[2].set_title("KL weight (warm-up)", fontsize=10)
    axes[2].grid(True, alpha=0.3)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _spread(values: list, k: int) -> list:
    """Up to k items of a sorted list, evenly spaced, first and last included."""
    if len(values) <= k:
        return list(values)
    return [values[round(i * (len(values) - 1) / (k - 1))] for i in range(k)]


def plot_triplets(path: Path, images: dict, kind: str, levels: int = 4) -> None:
    """For a few eval levels: a noisy row and its denoised row; the clean images at the bottom.

    images: "clean" -> (n, H, W, C); ("noisy", eval) and (train, eval) -> the same n images.
    Each level is denoised by the model trained at the nearest level.
    """
    plt = _pyplot()
    evals = _spread(sorted({k[1] for k in images if k != "clean" and k[0] == "noisy"}), levels)
    trains = sorted({k[0] for k in images if k != "clean" and k[0] != "noisy"})
    rows = []
    for level in evals:
        nearest = min(trains, key=lambda t: (abs(t - level), t))
        rows.append((f"noisy\n{level:g}", images[("noisy", level)]))
        rows.append((f"denoised\n(model {nearest:g})", images[(nearest, level)]))
    rows.append(("clean", images["clean"]))
    n = len(images["clean"])
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.0 * n + 1.3, 1.0 * len(rows) + 0.6), squeeze=False
    )
    for r, (label, batch) in enumerate(rows):
        for j in range(n):
            _show(axes[r, j], batch[j])
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"{kind} noise: noisy input, model output and clean test images", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_psnr_vs_level(path: Path, rows: list[dict]) -> None:
    """Test PSNR against eval level: noisy input, best classical filter and each model."""
    plt = _pyplot()
    first = min(r["train_level"] for r in rows)
    base = [r for r in rows if r["train_level"] == first]  # noisy and filter repeat per model
    levels = [r["eval_level"] for r in base]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(levels, [r["noisy_psnr"] for r in base], "k--o", label="noisy input", markersize=4)
    ax.plot(
        levels,
        [r["filter_psnr"] for r in base],
        "-s",
        color="tab:gray",
        label="best classical filter",
        markersize=4,
    )
    for train in sorted({r["train_level"] for r in rows}):
        mine = [r for r in rows if r["train_level"] == train]
        (line,) = ax.plot(
            [r["eval_level"] for r in mine],
            [r["model_psnr"] for r in mine],
            "-o",
            label=f"model trained at {train:g}",
            markersize=4,
        )
        ax.axvline(train, color=line.get_color(), alpha=0.25, linewidth=3)
    ax.set_xlabel(f"evaluation noise level ({rows[0]['kind']})")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("Denoising quality by noise level (shaded: each model's training level)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_robustness(path: Path, rows: list[dict]) -> None:
    """Heatmap of model output PSNR: training level (rows) x evaluation level (columns)."""
    plt = _pyplot()
    trains = sorted({r["train_level"] for r in rows})
    evals = sorted({r["eval_level"] for r in rows})
    grid = np.full((len(trains), len(evals)), np.nan)
    for r in rows:
        grid[trains.index(r["train_level"]), evals.index(r["eval_level"])] = r["model_psnr"]
    fig, ax = plt.subplots(figsize=(0.85 * len(evals) + 2.6, 0.6 * len(trains) + 1.9))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    middle = np.nanmean(grid)
    for i in range(len(trains)):
        for j in range(len(evals)):
            ax.text(
                j,
                i,
                f"{grid[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if grid[i, j] > middle else "white",
            )
    ax.set_xticks(range(len(evals)), [f"{v:g}" for v in evals])
    ax.set_yticks(range(len(trains)), [f"{v:g}" for v in trains])
    ax.set_xlabel("evaluation noise level")
    ax.set_ylabel("training noise level")
    ax.set_title(f"Model output PSNR (dB), {rows[0]['kind']} noise", fontsize=10)
    fig.colorbar(im, ax=ax, label="PSNR (dB)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Anomaly detection


def plot_anomaly_scores(
    path: Path, scores, labels, anomalous, threshold: float, names, kind: str, normal: str
) -> None:
    """Score histograms of the normal and anomalous test images, and the scores by class."""
    plt = _pyplot()
    classes = np.unique(labels)
    fig, (hist, box) = plt.subplots(
        1, 2, figsize=(12.5, 4.6), gridspec_kw={"width_ratios": [1, 1.25]}
    )
    # Reconstruction errors are skewed: a log axis shows both groups' bulk and their tails.
    positive = scores[scores > 0]
    low, high = (float(positive.min()), float(scores.max())) if len(positive) else (1e-6, 1.0)
    log_axis = high / max(low, 1e-12) > 30
    bins = np.geomspace(low, high, 60) if log_axis else np.linspace(low, high, 60)
    for group, colour, text in (
        (~anomalous, "tab:blue", "normal"),
        (anomalous, "tab:red", "anomaly"),
    ):
        hist.hist(
            np.clip(scores[group], low, None),
            bins=bins,
            density=True,
            histtype="stepfilled",
            alpha=0.45,
            color=colour,
            label=f"{text} ({int(group.sum()):,})",
        )
    hist.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    if log_axis:
        hist.set_xscale("log")
    hist.set_xlabel(f"anomaly score ({kind} per image)")
    hist.set_ylabel("density")
    hist.set_title(f"Test scores by group (normal: {normal})", fontsize=10)
    hist.legend(fontsize=8)
    groups = [scores[labels == c] for c in classes]
    parts = box.boxplot(groups, showfliers=False, patch_artist=True, widths=0.6)
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
    if log_axis:
        box.set_yscale("log")
    box.set_ylabel(f"{kind} per image")
    box.set_title("By class (blue: normal, red: anomalies; boxes: quartiles)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_roc(path: Path, anomalous, scores, point: tuple[float, float], title: str) -> None:
    """The ROC curve of the scores, with the chance line and the threshold's operating point."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(anomalous, scores)
    auc = roc_auc_score(anomalous, scores)
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
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
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_anomaly_extremes(
    path: Path, images, recon, labels, scores, anomalous, names, kind: str
) -> None:
    """The highest- then the lowest-scoring test images, each above its reconstruction."""
    plt = _pyplot()
    n = len(images) // 2
    width = 1.35 * _aspect(images)
    fig, axes = plt.subplots(4, n, figsize=(width * n + 1.4, 6.6), squeeze=False)
    for half, offset in ((0, 0), (1, n)):
        for j in range(n):
            i = offset + j
            top, bottom = axes[2 * half, j], axes[2 * half + 1, j]
            _show(top, images[i])
            _show(bottom, recon[i])
            group = "anomaly" if anomalous[i] else "normal"
            top.set_title(
                f"{label_text(names, labels[i])} ({group})\n{scores[i]:.4g}",
                fontsize=7,
                color="tab:red" if anomalous[i] else "tab:blue",
            )
    for row, text in enumerate(("highest", "its recon.", "lowest", "its recon.")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    fig.suptitle(
        f"Test images with the highest and the lowest anomaly scores ({kind} per image)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_benchmark(path: Path, rows: list[dict], dataset: str, reference=None) -> None:
    """The one-class benchmark: each class's AUROC as a bar, a published method's as a mark."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.75 * len(rows)), 4.8))
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
    low = min(aurocs + (marks if reference is not None else []))
    bottom = max(0, low - 8)
    ax.set_ylim(bottom, 100.5)
    for i, value in enumerate(aurocs):  # inside the bar, clear of the reference marks above
        ax.text(i, bottom + 1, f"{value:.1f}", ha="center", va="bottom", fontsize=8, color="white")
    ax.set_xlabel("the normal class (all other classes: anomalies)")
    ax.set_ylabel("test AUROC (%)")
    ax.set_title(f"One-class anomaly detection on {dataset}", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Several runs side by side (`autoencoder compare`)


def plot_compare_curves(path: Path, histories: dict[str, list[dict]], metric: str) -> None:
    """One validation metric of each run, by epoch and by training time (its running sum)."""
    plt = _pyplot()
    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.2))
    # history.csv's `seconds` is each epoch's own: their running sum is the training time.
    clocks = {k: np.cumsum([r.get("seconds", np.nan) for r in h]) for k, h in histories.items()}
    longest = max((np.nanmax(c) for c in clocks.values() if np.isfinite(c).any()), default=0)
    unit, per = ("minutes", 60) if longest >= 120 else ("seconds", 1)
    values = {k: [r.get(metric, np.nan) for r in h] for k, h in histories.items()}
    for label, history in histories.items():
        marker = "o" if len(history) <= 30 else None
        by_epoch.plot([r["epoch"] for r in history], values[label], marker=marker, label=label)
        by_time.plot(clocks[label] / per, values[label], marker=marker, label=label)
    finite = [v for vs in values.values() for v in vs if np.isfinite(v) and v > 0]
    # A log scale only where the curves span a wide range: it reads badly over a narrow one.
    log_scale = bool(finite) and max(finite) / min(finite) > 5
    for ax, x_label in ((by_epoch, "epoch"), (by_time, f"training time ({unit})")):
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(metric + (" (log scale)" if log_scale else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    by_epoch.xaxis.get_major_locator().set_params(integer=True)
    by_epoch.set_title(f"{metric} by epoch")
    by_time.set_title(f"{metric} against training time")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def compare_figsize(x, rows: int) -> tuple[float, float]:
    """plot_compare_reconstructions' size in inches: a column per image, a row per row."""
    return 1.3 * _aspect(x) * len(x) + 2.2, 1.4 * rows + 0.6


def plot_compare_reconstructions(path: Path, x, inputs: list[tuple], outputs: list[tuple]) -> None:
    """The same images, then each run's output of them: a labelled row each.

    Args:
      x: the clean images (N, H, W, C) in [0, 1].
      inputs: (label, images) of noisy inputs some runs were given instead of x (denoisers).
      outputs: (run label, its outputs) in the order of the runs.
    """
    plt = _pyplot()
    rows = [("input", x, None), *((t, a, None) for t, a in inputs)]
    rows += [(t, a, per_image_mse(x, a)) for t, a in outputs]
    fig, axes = plt.subplots(
        len(rows), len(x), figsize=compare_figsize(x, len(rows)), squeeze=False
    )
    for r, (text, images, errors) in enumerate(rows):
        for j in range(len(x)):
            _show(axes[r, j], images[j])
            if errors is not None:
                axes[r, j].set_title(f"{errors[j]:.4f}", fontsize=7, pad=2)
        mean = "" if errors is None else f"\nMSE {errors.mean():.4f}"
        axes[r, 0].set_ylabel(_wrap(text) + mean, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(
        f"The first {len(x)} test images and each run's reconstruction (MSE per image above it)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _wrap(text: str, width: int = 22) -> str:
    """A row label on lines of at most about `width` characters."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
