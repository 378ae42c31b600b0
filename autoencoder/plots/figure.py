"""What every figure shares: figures drawn into files, images in axes, class labels."""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from contextlib import contextmanager

import numpy as np

from autoencoder.data import DIGITS

log = logging.getLogger(__name__)

DPI = 120
# matplotlib's warning for each character its fonts cannot draw (a class folder named 猫).
GLYPH = re.compile(r"Glyph (\d+) .*missing from font\(s\) (.+?)\.?$")


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


def wrap_label(text: str, inches: float, fontsize: float, lines: int = 2) -> str:
    """Text on lines that fit `inches` at `fontsize`, broken after spaces, '_', '-' or '/'
    (inside a word only when one is longer than a line); past `lines`, cut with '...'."""
    # An average character of DejaVu Sans is about 0.6 of the font size wide.
    chars = max(4, int(inches * 72 / (0.6 * fontsize)))
    words = re.findall(r"[^ _\-/]+[ _\-/]*|[ _\-/]+", text)
    out = [""]
    for word in words:
        while len(word) > chars:  # a word longer than a line: broken where the line ends
            room = chars - len(out[-1])
            out[-1] += word[:room]
            out.append("")
            word = word[room:]
        if len(out[-1]) + len(word.rstrip()) > chars and out[-1]:
            out.append("")
        out[-1] += word
    out = [line.rstrip() for line in out if line.strip()]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: chars - 3] + "..."
    return "\n".join(out) or text


LOSS_NAMES = {
    "bce": "BCE",
    "mse": "MSE",
    "mae": "MAE",
    "l1": "L1",
    "charbonnier": "Charbonnier",
    "ssim_l1": "SSIM + L1",
}


def loss_name(loss: str | None) -> str:
    """train.loss as a label: "BCE", "SSIM + L1"; "loss" when unknown."""
    return LOSS_NAMES.get(loss, "loss")


def log_axis(ax, which: str = "y") -> None:
    """A log scale whose ticks read as plain numbers (0.6, 0.05), not 6x10^-1."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        # matplotlib's choice of which ticks to label, written as numbers are.
        def __call__(self, x, pos=None):
            if not super().__call__(x, pos):
                return ""
            # Three digits, more over a narrow range: 0.6885 and 0.689, not 0.689 twice.
            low, high = sorted(abs(v) for v in self.axis.get_view_interval())
            spread = (high - low) / high if high > 0 else 1.0
            digits = 3 if spread >= 0.05 else min(6, 3 + math.ceil(math.log10(0.05 / spread)))
            return f"{x:.{digits}g}"

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def aspect(x) -> float:
    """Width over height of the images, to size each figure's columns."""
    return min(3.0, max(1.0, x.shape[2] / x.shape[1]))


def save(fig, path, title: str | None = None, fontsize: int = 10) -> None:
    """Title the figure, lay it out, write it to `path` and free it."""
    if title is not None:
        fig.suptitle(title, fontsize=fontsize)
    layout(fig)
    write(fig, path)


def layout(fig, **kwargs) -> None:
    """fig.tight_layout, whose text measuring reports missing characters as write does."""
    with _glyphs_logged():
        fig.tight_layout(**kwargs)


def write(fig, path, **kwargs) -> None:
    """fig.savefig at the figures' DPI; characters the font lacks are one logged line, not a
    matplotlib warning per character and figure."""
    with _glyphs_logged():
        fig.savefig(path, dpi=DPI, **kwargs)


@contextmanager
def _glyphs_logged():
    """matplotlib's missing-glyph warnings inside the block as one line; others as they were."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    missing, fonts = set(), set()
    for w in caught:
        found = GLYPH.match(str(w.message))
        if found:
            missing.add(chr(int(found.group(1))))
            fonts.add(found.group(2))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:
        _no_glyphs("".join(sorted(missing)), ", ".join(sorted(fonts)))


@functools.cache  # once per process for the same characters, not once per figure
def _no_glyphs(characters: str, fonts: str) -> None:
    log.warning(
        "figures: the font (%s) has no %s, which show as empty boxes; install a font that has "
        "them (e.g. apt-get install fonts-noto-cjk) and name it as a fallback in a file "
        "matplotlibrc in matplotlib.get_configdir(): font.family: DejaVu Sans, Noto Sans CJK JP",
        fonts,
        " ".join(characters),
    )
