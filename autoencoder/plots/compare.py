"""Several runs side by side (`autoencoder compare`): their curves and their reconstructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder.evaluate import per_image_mse
from autoencoder.plots.figure import aspect, layout, log_axis, save, show, subplots, write
from autoencoder.runs import training_clock


def plot_compare_curves(path: Path, histories: dict[str, list[dict]], metric: str) -> None:
    """One validation metric of each run, by epoch and by training time (its running sum)."""
    fig, (by_epoch, by_time) = subplots(1, 2, figsize=(12, 4.2))
    clocks = {k: training_clock(h) for k, h in histories.items()}
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
            log_axis(ax)
        ax.set_xlabel(x_label)
        ax.set_ylabel(metric + (" (log scale)" if log_scale else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    by_epoch.xaxis.get_major_locator().set_params(integer=True)
    epochs = sorted({r["epoch"] for h in histories.values() for r in h})
    if len(epochs) <= 2:  # the locator cannot find two whole numbers: it would tick 0.96, 0.98, ...
        by_epoch.set_xticks(epochs)
    by_epoch.set_title(f"{metric} by epoch")
    by_time.set_title(f"{metric} against training time")
    layout(fig)
    write(fig, path)


def compare_figsize(x, rows: int) -> tuple[float, float]:
    """plot_compare_reconstructions' size in inches: a column per image, a row per row."""
    return 1.3 * aspect(x) * len(x) + 2.2, 1.4 * rows + 0.6


def plot_compare_reconstructions(path: Path, x, inputs: list[tuple], outputs: list[tuple]) -> None:
    """The same images, then each run's output of them: a labelled row each.

    Args:
      x: the clean images (N, H, W, C) in [0, 1].
      inputs: (label, images) of noisy inputs some runs were given instead of x (denoisers).
      outputs: (run label, its outputs) in the order of the runs.
    """
    # Beside noisy inputs, the clean images are what the outputs are scored against.
    first = "clean test images" if inputs else "input"
    rows = [(first, x, None), *((t, a, None) for t, a in inputs)]
    rows += [(t, a, per_image_mse(x, a)) for t, a in outputs]
    fig, axes = subplots(len(rows), len(x), figsize=compare_figsize(x, len(rows)), squeeze=False)
    for r, (text, images, errors) in enumerate(rows):
        for j in range(len(x)):
            show(axes[r, j], images[j])
            if errors is not None:
                axes[r, j].set_title(f"{errors[j]:.4f}", fontsize=7, pad=2)
        mean = "" if errors is None else f"\nMSE {errors.mean():.4f}"
        axes[r, 0].set_ylabel(_wrap(text) + mean, fontsize=8, rotation=0, ha="right", va="center")
    save(
        fig,
        path,
        f"The first {len(x)} test images and each run's output (MSE against the clean image "
        f"above each)"
        if inputs
        else f"The first {len(x)} test images and each run's reconstruction (MSE per image above "
        f"it)",
    )


def _wrap(text: str, width: int = 22) -> str:
    """A row label on lines of at most about `width` characters."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
