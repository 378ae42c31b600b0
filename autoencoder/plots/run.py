"""A run's figures: reconstructions, loss curves, worst reconstructions, error by class; the
`plot` command that redraws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder import runs
from autoencoder.config.types import level_text
from autoencoder.data import DIGITS, load_splits
from autoencoder.evaluate import evaluate_split, per_image_mse, pick_examples
from autoencoder.model import is_vae, load_model
from autoencoder.plots.figure import (
    aspect,
    label_text,
    layout,
    log_axis,
    loss_name,
    show,
    subplots,
    wrap_label,
    write,
)
from autoencoder.plots.vae import vae_figures
from autoencoder.runs import open_run


def plot_reconstructions(
    path: Path, x, y, recon, n: int = 10, names=None, noisy=None, noise: str | None = None
) -> None:
    """Originals (with their class) above their reconstructions (with per-image MSE)."""
    # names: the class names (digits when None); noisy: a denoiser's noisy inputs, drawn between,
    # of the noise `noise` names ("gaussian 0.4").
    idx = pick_examples(y, min(n, len(x)))
    errors = per_image_mse(x[idx], recon[idx])
    rows = _image_rows(x, recon, noisy, noise)
    width = 1.3 * aspect(x)
    # At least 7.5 inches: the title must fit above one or two columns too.
    figsize = (max(7.5, width * len(idx) + 1.2), 1.5 * len(rows) + 0.4)
    fig, axes = subplots(len(rows), len(idx), figsize=figsize, squeeze=False)
    for j, i in enumerate(idx):
        for r, (_, images) in enumerate(rows):
            show(axes[r, j], images[i])
        axes[0, j].set_title(wrap_label(label_text(names, y[i]), width - 0.15, 9), fontsize=9)
        axes[-1, j].set_xlabel(f"MSE {errors[j]:.4f}", fontsize=8)
        if noisy is not None:  # how much noise this input carries: a blind model's levels vary
            axes[1, j].set_xlabel(f"MSE {_mse(x[i], noisy[i]):.4f}", fontsize=8)
    for r, (text, _) in enumerate(rows):
        axes[r, 0].set_ylabel(text, fontsize=10)
    what = (
        ", their noisy inputs and the model's outputs"
        if noisy is not None
        else " and their reconstructions"
    )
    these = f"mean MSE of these {len(idx)}" if len(idx) > 1 else "MSE"
    fig.suptitle(f"Test images{what} ({these}: {errors.mean():.4f})", fontsize=11)
    layout(fig)
    write(fig, path)


def _image_rows(x, recon, noisy, noise: str | None = None) -> list[tuple[str, np.ndarray]]:
    """(row label, images): the originals, a denoiser's noisy inputs, the model's outputs."""
    if noisy is None:
        return [("original", x), ("reconstruction", recon)]
    named = f"noisy input\n({noise})" if noise else "noisy input"
    return [("original", x), (named, noisy), ("output", recon)]


def _mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def plot_loss(path: Path, history: list[dict], loss: str = "loss") -> None:
    """Train and validation loss by epoch (log scale), and the learning rate; `loss` names it."""
    epochs = [r["epoch"] for r in history]
    timed = any("val/mse" in r for r in history)
    fig, axes = subplots(
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
    _log_panel(ax, "epoch", f"{loss} (log scale)", "Loss by epoch")
    ax.legend()
    if timed:
        # Error against training time (the epochs' seconds, validation included): what a
        # fixed training budget buys.
        clock = runs.training_clock(history)
        longest = np.nanmax(clock) if np.isfinite(clock).any() else 0
        # Seconds for a short run: minutes would be ticks like 0.0600 0.0605 that run together.
        unit, per = ("minutes", 60) if longest >= 120 else ("seconds", 1)
        ax_t = axes[1]
        ax_t.plot(
            clock / per,
            [r.get("val/mse", np.nan) for r in history],
            marker=marker,
            color="tab:purple",
        )
        ax_t.set_xlim(left=0)  # training starts at 0: the first epoch's time is part of the cost
        _log_panel(
            ax_t,
            f"training time ({unit})",
            "val/mse per pixel (log scale)",
            "Validation MSE against training time",
        )
    ax_lr.plot(epochs, [r.get("lr", np.nan) for r in history], marker=marker, color="tab:green")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("Learning rate (end of epoch)")
    ax_lr.set_ylim(0, max(r.get("lr", 0) for r in history) * 1.15 or 1)  # a flat lr reads flat
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.grid(True, alpha=0.3)
    for a in (ax, axes[-1]):
        a.xaxis.get_major_locator().set_params(integer=True)
        if len(epochs) == 1:  # the locator would mark 0.96 ... 1.04 around a single epoch
            a.set_xticks(epochs)
    layout(fig)
    write(fig, path)


def _log_panel(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log-scale y axis, labels, title and a grid at every tick, minor ones too."""
    log_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def plot_worst(
    path: Path, x, y, recon, n: int = 8, names=None, noisy=None, noise: str | None = None
) -> None:
    """The worst-reconstructed images: original, (noisy input,) reconstruction and error map with
    a colour bar."""
    errors = per_image_mse(x, recon)
    idx = np.argsort(errors)[::-1][: min(n, len(x))]
    diff = np.abs(x[idx] - recon[idx]).max(axis=-1)  # the largest error of a pixel's channels
    vmax = float(max(diff.max(), 1e-6))
    rows = _image_rows(x, recon, noisy, noise)
    width, height = 1.4 * aspect(x), 1.5 * (len(rows) + 1) + 0.4
    # At least 6 inches: the title and the colour bar's labels fit beside one column too.
    figsize = (max(6.0, width * len(idx) + 2.0), height)
    fig, axes = subplots(len(rows) + 1, len(idx), figsize=figsize, squeeze=False)
    for j, i in enumerate(idx):
        for r, (_, images) in enumerate(rows):
            show(axes[r, j], images[i])
        name = wrap_label(label_text(names, y[i]), width - 0.15, 8)
        axes[0, j].set_title(f"{name}\nMSE {errors[i]:.4f}", fontsize=8)
        im = axes[-1, j].imshow(diff[j], cmap="inferno", vmin=0, vmax=vmax)
        axes[-1, j].set_xticks([])
        axes[-1, j].set_yticks([])
    for row, (text, _) in enumerate([*rows, ("|error|", None)]):
        axes[row, 0].set_ylabel(text, fontsize=9)
    if len(x) <= n:  # a split this small is shown whole: none of them is picked as worst
        shown = (
            f"The {len(x)} test images, worst-reconstructed first"
            if len(x) > 1
            else ("The one test image")
        )
    else:
        shown = f"The {len(idx)} worst-reconstructed test images"
    fig.suptitle(shown, fontsize=11)
    # 1.2 inches on the right for the colour bar, its ticks and its label, whatever the width.
    right = 1 - 1.2 / figsize[0]
    layout(fig, rect=(0, 0, right, 1))
    cax = fig.add_axes((right + 0.12 / figsize[0], 0.06, 0.2 / figsize[0], 0.8 / (len(rows) + 1)))
    fig.colorbar(im, cax=cax, label="|error|")
    write(fig, path)


def plot_error_by_class(path: Path, x, y, recon, names=None, errors=None) -> None:
    """Mean reconstruction MSE per class, with the image count on each bar."""
    # errors: every image's MSE when given (then x and recon are not needed).
    errors = per_image_mse(x, recon) if errors is None else errors
    classes = np.unique(y)
    means = [errors[y == c].mean() for c in classes]
    counts = [int((y == c).sum()) for c in classes]
    digits = names is None or tuple(names) == DIGITS
    ticks = [str(int(c)) if digits else names[int(c)] for c in classes]
    fig, ax = subplots(figsize=(max(7, 0.6 * len(classes) + 1), 3.8))
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
    layout(fig)
    write(fig, path)


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
    loss: str | None = None,
    noise: str | None = None,
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
      loss: train.loss, to name the loss on the figures' axes.
      noise: the noise of a denoiser's inputs, for their row ("gaussian 0.4").
    """
    out = Path(run_dir) / "figures"
    out.mkdir(exist_ok=True)
    paths = [out / "reconstructions.png", out / "worst.png", out / "error_by_class.png"]
    plot_reconstructions(paths[0], x, y, recon, names=names, noisy=noisy, noise=noise)
    plot_worst(paths[1], x, y, recon, names=names, noisy=noisy, noise=noise)
    errors, labels = by_class if by_class is not None else (None, y)
    plot_error_by_class(paths[2], x, labels, recon, names=names, errors=errors)
    if history:
        paths.append(out / "loss.png")
        vae = model is not None and is_vae(model)
        label = f"{loss_name(loss)} + KL, per image" if vae else loss_name(loss)
        plot_loss(paths[-1], history, label)
    if model is not None and is_vae(model):
        paths += vae_figures(out, model, x, y, history, names, loss)
    return paths


def plot_evaluation(
    run_dir: Path, evaluation, history: list[dict], names=None, model=None, config=None
) -> list[Path]:
    """plot_all from an evaluate.Evaluation: its kept images and every image's error; the
    run's config names its loss and noise."""
    noise = config.data.noise if config is not None else None
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
        loss=config.train.loss if config is not None else None,
        noise=f"{noise.kind} {level_text(noise.level)}" if noise is not None else None,
    )


def plot_run(run_dir: str | Path) -> list[Path]:
    """Redraw a finished run's figures from its saved model and config; return their paths."""
    run_dir = Path(run_dir)
    with runs.writing(run_dir, "autoencoder plot"):
        config = open_run(run_dir)
        history = runs.checked_history(run_dir)  # a damaged one refused before TensorFlow
        splits = load_splits(config)
        runs.warn_changed_data_files(run_dir, splits)
        model = load_model(run_dir / "model.keras")
        evaluation = evaluate_split(config, model, splits, "test")
        return plot_evaluation(run_dir, evaluation, history, splits.class_names, model, config)
