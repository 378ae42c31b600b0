"""What every figure shares: figures drawn into files, images in axes, class labels."""

from __future__ import annotations

import numpy as np

from autoencoder.data import DIGITS

DPI = 120


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, layout=None, **grid):
    """(figure, axes) as pyplot.subplots gives them, drawn off pyplot: its backend is left alone.

    A notebook's pyplot keeps its inline backend and its list of open figures; this figure is
    freed with its last reference.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **grid)


def show(ax, image, **kwargs):
    """An image in an axes without ticks: (H, W, 1) as grey, colour clipped to [0, 1]."""
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


def aspect(x) -> float:
    """Width over height of the images, to size each figure's columns."""
    return min(3.0, max(1.0, x.shape[2] / x.shape[1]))


def save(fig, path, title: str | None = None, fontsize: int = 10) -> None:
    """Title the figure, lay it out, write it to `path` and free it."""
    if title is not None:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
