"""A VAE's figures (samples from the prior, interpolations between test codes, its two loss
terms) and maps of codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder.data import DIGITS
from autoencoder.evaluate import pick_examples
from autoencoder.model import vae_interpolations, vae_samples
from autoencoder.plots.figure import layout, loss_name, show, subplots, wrap_label, write


def vae_figures(
    out: Path, model, x, y, history: list[dict], names=None, loss: str | None = None
) -> list[Path]:
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
        plot_vae_terms(paths[-1], history, loss)
    return paths


def plot_samples(path: Path, samples, latent_dim: int, columns: int = 8) -> None:
    """Images decoded from codes drawn from the prior, in a grid."""
    rows = int(np.ceil(len(samples) / columns))
    fig, axes = subplots(rows, columns, figsize=(0.9 * columns, 0.9 * rows + 0.7))
    for k, ax in enumerate(np.ravel(axes)):
        if k < len(samples):
            show(ax, samples[k])
        else:
            ax.axis("off")
    fig.suptitle(
        f"{len(samples)} images decoded from random codes z ~ N(0, I)\n"
        f"(the VAE's prior, {latent_dim} numbers each: new images, not reconstructions)",
        fontsize=10,
    )
    layout(fig, rect=(0, 0, 1, 1), h_pad=0.2, w_pad=0.2)
    write(fig, path)


def plot_interpolations(
    path: Path, starts, steps, ends, labels: list[tuple[int, int]], names=None, title=None
) -> None:
    """Per row: a test image, decodings along the line between its code and the next image's,
    and that image."""
    # names: the class names (digits when None); title: the figure's (a VAE's: the means').
    n_rows, n_steps = steps.shape[:2]
    fig, axes = subplots(
        n_rows, n_steps + 2, figsize=(0.95 * (n_steps + 2) + 1.0, 1.0 * n_rows + 0.9), squeeze=False
    )
    pairs = [[_class_name(names, label) for label in pair] for pair in labels]
    # Along the row's height (an inch): long names smaller, on up to four lines; one size for
    # every row, set by the longest pair, so no row's label looks louder than the others.
    longest = max(len(a) + len(b) for a, b in pairs)
    size = 9 if longest <= 10 else 8 if longest <= 24 else 7
    for r, (a, b) in enumerate(pairs):
        show(axes[r, 0], starts[r])
        for t in range(n_steps):
            show(axes[r, t + 1], steps[r, t])
        show(axes[r, -1], ends[r])
        axes[r, 0].set_ylabel(wrap_label(f"{a} to {b}", 0.95, size, lines=4), fontsize=size)
    axes[0, 0].set_title("test\nimage", fontsize=8)
    axes[0, -1].set_title("test\nimage", fontsize=8)
    for t in range(n_steps):
        axes[0, t + 1].set_title(f"t={t / (n_steps - 1):.2f}", fontsize=8)
    fig.suptitle(
        title or "Decoded along straight lines between the codes (means) of two test images",
        fontsize=10,
    )
    layout(fig)
    write(fig, path)


def _class_name(names, label) -> str:
    """A class's own name ('7' for a digit, 'Ankle boot'); its number past the names given."""
    label = int(label)
    return names[label] if names is not None and label < len(names) else str(label)


def plot_latent(path: Path, panels: list[tuple], labels, names=None, title: str = "") -> None:
    """Scatter plots of 2-D points side by side, coloured by class, one legend of class names.

    panels: (title, points (N, 2), x label, y label) each, the same N points in every panel.
    """
    from matplotlib.lines import Line2D

    classes = [int(c) for c in np.unique(labels)]
    # Qualitative maps whose neighbours stay distinguishable with colour-blindness: tab10 up to
    # ten classes; beyond, tab20's colours again with a second and third marker shape.
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colours = cmap.colors
    style = {
        c: (colours[k % len(colours)], "os^"[(k // len(colours)) % 3])
        for k, c in enumerate(classes)
    }
    size = 6 if len(labels) > 1500 else 12
    fig, axes = subplots(
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
    write(fig, path)


def plot_vae_terms(path: Path, history: list[dict], loss: str | None = None) -> None:
    """A VAE's reconstruction and KL terms per image by epoch, and the KL weight."""
    # BCE summed over an image's pixels is its negative log-likelihood: nats, as KL is.
    summed = f"{loss_name(loss)} summed over pixels" + (" (nats)" if loss == "bce" else "")
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) <= 30 else None
    fig, axes = subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.5, 1.5, 1]})
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
        ax.set_ylabel("KL, nats per image" if term == "kl" else summed)
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
    layout(fig)
    write(fig, path)
