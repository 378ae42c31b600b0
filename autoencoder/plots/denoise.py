"""The denoising sweep's figures: noisy and denoised images by level, PSNR against the level,
and each model's robustness to levels it was not trained at; a blind model (rows whose
train_level is None) has its own row or line in each. Rows name their model by their `label`
(denoise.model_label)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder.plots.figure import layout, show, subplots, write


def _spread(values: list, k: int) -> list:
    """Up to k items of a sorted list, evenly spaced, first and last included."""
    if len(values) <= k:
        return list(values)
    return [values[round(i * (len(values) - 1) / (k - 1))] for i in range(k)]


def plot_triplets(path: Path, images: dict, kind: str, levels: int = 4) -> None:
    """For a few eval levels: a noisy row and its denoised row; the clean images at the bottom.

    images: "clean" -> (n, H, W, C); ("noisy", eval), (train, eval) and a blind model's
    ("blind", eval) -> the same n images. Each level is denoised by the model trained at the
    nearest level, and by the blind model when there is one.
    """
    evals = _spread(sorted({k[1] for k in images if k != "clean" and k[0] == "noisy"}), levels)
    trains = sorted({k[0] for k in images if k != "clean" and k[0] not in ("noisy", "blind")})
    rows = []
    for level in evals:
        nearest = min(trains, key=lambda t: (abs(t - level), t))
        rows.append((f"noisy\n{level:g}", images[("noisy", level)]))
        rows.append((f"denoised\n(model {nearest:g})", images[(nearest, level)]))
        if ("blind", level) in images:
            rows.append(("denoised\n(blind model)", images[("blind", level)]))
    rows.append(("clean", images["clean"]))
    n = len(images["clean"])
    fig, axes = subplots(
        len(rows), n, figsize=(1.0 * n + 1.3, 1.0 * len(rows) + 0.6), squeeze=False
    )
    for r, (label, batch) in enumerate(rows):
        for j in range(n):
            show(axes[r, j], batch[j])
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"{kind} noise: noisy input, model output and clean test images", fontsize=11)
    # tight_layout packs the first row up against the title; keep a tenth of an inch clear.
    layout(fig, rect=(0, 0, 1, 1 - 0.1 / fig.get_figheight()))
    write(fig, path)


def plot_psnr_vs_level(path: Path, rows: list[dict]) -> None:
    """Test PSNR against eval level: noisy input, best classical filter and each model."""
    first = min(r["train_level"] for r in rows if r["train_level"] is not None)
    base = [r for r in rows if r["train_level"] == first]  # noisy and filter repeat per model
    levels = [r["eval_level"] for r in base]
    fig, ax = subplots(figsize=(10, 4.5))
    ax.plot(levels, [r["noisy_psnr"] for r in base], "k--o", label="noisy input", markersize=4)
    ax.plot(
        levels,
        [r["filter_psnr"] for r in base],
        "-s",
        color="tab:gray",
        label="best classical filter",
        markersize=4,
    )
    for train in sorted({r["train_level"] for r in rows if r["train_level"] is not None}):
        mine = [r for r in rows if r["train_level"] == train]
        (line,) = ax.plot(
            [r["eval_level"] for r in mine],
            [r["model_psnr"] for r in mine],
            "-o",
            label=f"model trained at {train:g}",
            markersize=4,
        )
        ax.axvline(train, color=line.get_color(), alpha=0.25, linewidth=3)
    blind = [r for r in rows if r["train_level"] is None]
    if blind:
        n = blind[0].get("epochs")
        others = sorted({r.get("epochs") for r in rows if r["train_level"] is not None} - {None})
        # Said only when they differ: the comparison is then not one of equal training.
        more = f",\n{n} epochs, the others {'/'.join(map(str, others))}"  # keeps the legend narrow
        more = more if n and others and others != [n] else ""
        ax.plot(
            [r["eval_level"] for r in blind],
            [r["model_psnr"] for r in blind],
            "-D",
            color="black",
            linewidth=2,
            label=f"{blind[0]['label']} (one model, level drawn per image{more})",
            markersize=5,
        )
    ax.set_xlabel(f"evaluation noise level ({rows[0]['kind']})")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("Denoising quality by noise level (shaded: each model's training level)")
    ax.grid(True, alpha=0.3)
    # Beside the axes, not on them: the curves fill every corner of the plot.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    layout(fig)
    write(fig, path, bbox_inches="tight")


def plot_robustness(path: Path, rows: list[dict]) -> None:
    """Heatmap of model output PSNR: training level (rows) x evaluation level (columns)."""
    trains = list(dict.fromkeys(r["label"] for r in rows))  # rows come sorted by model
    evals = sorted({r["eval_level"] for r in rows})
    grid = np.full((len(trains), len(evals)), np.nan)
    for r in rows:
        grid[trains.index(r["label"]), evals.index(r["eval_level"])] = r["model_psnr"]
    fig, ax = subplots(figsize=(0.85 * len(evals) + 2.6, 0.6 * len(trains) + 1.9))
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
    ax.set_yticks(range(len(trains)), trains)
    ax.set_xlabel("evaluation noise level")
    ax.set_ylabel("training noise level")
    ax.set_title(f"Model output PSNR (dB), {rows[0]['kind']} noise", fontsize=10)
    fig.colorbar(im, ax=ax, label="PSNR (dB)")
    layout(fig)
    write(fig, path)
