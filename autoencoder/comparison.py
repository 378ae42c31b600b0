"""Two or more finished runs side by side: validation curves, the same test images
reconstructed by each, and the config keys in which they differ (`autoencoder compare`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder import listing, lock, runs
from autoencoder.config import Config, level_text
from autoencoder.data import load_splits, scaled
from autoencoder.errors import UserError, named
from autoencoder.model import load_model
from autoencoder.noise import model_inputs
from autoencoder.plots import plot_compare_curves, plot_compare_reconstructions

log = logging.getLogger("autoencoder")

EXAMPLES = 8  # test images in reconstructions.png
OUTPUT = Path("outputs/compare")
RUN_FIGURES = ("reconstructions.png", "loss.png", "worst.png", "error_by_class.png")
LABEL_LENGTH = 40  # longer labels made of differing values give way to name + timestamp


@dataclass
class Comparison:
    """What compare wrote: the runs' labels, the keys that differ, the files."""

    labels: list[str]
    keys: list[str]  # dotted config keys whose values differ between the runs, sorted
    table: str  # the diff table, as compare.md has it
    files: list[Path]


def compare_runs(run_dirs: list[str | Path], out: str | Path | None = None):
    """Check the runs, then write curves.png, reconstructions.png and compare.md into a folder.

    Args:
      run_dirs: two or more finished run directories trained on the same data.
      out: the folder to write (must not hold anything); default outputs/compare/<timestamp>/.
    Returns:
      (the folder, a Comparison).
    Raises:
      UserError: fewer than two runs, a folder that is not a run, a run that is not finished,
        runs on different data, or an `out` that holds files; before anything is written.
    """
    checked = check_runs(run_dirs)
    check_output(out)
    configs = [config for _, config in checked]
    keys = sorted(set().union(*(runs.config_diff(configs[0], c) for c in configs[1:])))
    labels = run_labels([path for path, _ in checked], configs, keys)
    # The test images and every model load before the folder is made: data that cannot be
    # found or a model that cannot be read stops the command with nothing written.
    shown = reconstructions(checked, labels)
    made = _outermost_missing(Path(out)) if out is not None else None
    out_dir = output_folder(out)
    if out is None:
        made = out_dir  # a new stamped folder under OUTPUT
    files = [out_dir / "curves.png", out_dir / "reconstructions.png", out_dir / "compare.md"]
    try:
        curves(files[0], checked, labels, keys)
        plot_compare_reconstructions(files[1], *shown)
        table = diff_table(configs, labels, keys)
        files[2].write_text(report(out_dir, checked, labels, table, keys))
    except BaseException:
        # A write that fails (a full disk) leaves no half comparison: what this call made goes.
        for path in files:
            path.unlink(missing_ok=True)
        # The folders this call made, inner first; rmdir leaves any that holds something.
        if made is not None:
            depth = len(out_dir.relative_to(made).parts) + 1
            with contextlib.suppress(OSError):
                for folder in [out_dir, *out_dir.parents][:depth]:
                    folder.rmdir()
        raise
    return out_dir, Comparison(labels, keys, table, files)


# ---------------------------------------------------------------------------------------------
# Refusals, before anything is written


def check_runs(run_dirs: list[str | Path]) -> list[tuple[Path, Config]]:
    """(path, config) of each run, once all are finished runs of the same data."""
    if len(run_dirs) < 2:
        run = "outputs/<name>/<timestamp>"
        example = named(f"autoencoder compare {run} {run}", f"ae.compare(['{run}', '{run}'])")
        raise UserError(
            f"compare: {len(run_dirs)} run given; pass two or more run directories, e.g. {example}"
        )
    checked = []
    for run_dir in map(Path, run_dirs):
        if any(run_dir.resolve() == seen.resolve() for seen, _ in checked):
            raise UserError(f"{run_dir}: given twice; pass each run once")
        config = runs.load_run_config(run_dir)  # not a run, or a damaged config: refused
        runs.check_not_sweep(run_dir)
        check_finished(run_dir, config)
        runs.check_run_shapes(run_dir, config, data=False)
        runs.checked_history(run_dir)  # a damaged one refused here, not once --out is made
        checked.append((run_dir, config))
    for run_dir, config in checked[1:]:
        check_same_data(checked[0], (run_dir, config))
    return checked


def check_finished(run_dir: Path, config: Config) -> None:
    """Refuse a run with no final model: unfinished, failed, or being written now."""
    status = runs.status(run_dir)
    if status == "in use":
        raise UserError(lock.in_use_message(run_dir, lock.holder(run_dir)))
    if status != "finished":
        state = runs.read_state(run_dir)
        done = state["epoch"] if state else 0
        raise UserError(
            f"{run_dir}: {status} at epoch {done} of {config.train.epochs}, so it has no final "
            f"model to reconstruct with; finish it with `{runs.resume_command(run_dir)}`, or "
            f"leave it out"
        )


def data_source(config: Config) -> str:
    """'mnist_sample', a folder, with the classes kept, the test share when not the default and
    how images were fitted to data.image_size."""
    data = config.data
    source = data.path if data.dataset == "folder" else data.dataset
    # The classes kept and the share held out both change which images the test split holds.
    if data.classes is not None:
        source += f" (classes {', '.join(map(str, data.classes))})"
    if data.test_split != type(data)().test_split:
        source += f" (test_split {data.test_split:g})"
    # crop and pad give other pixels of one file than resize does
    if data.image_size is not None and data.fit != type(data)().fit:
        source += f" (fit {data.fit})"
    return source


def image_shape(config: Config) -> tuple:
    """(H, W, C) of the whole images a run is tested on; H and W None for a patch model whose
    images have no size the config gives (a folder's: evaluated whole, tile by tile)."""
    if config.data.patches is None:
        return tuple(config.model.input_shape)
    return config.data.image_shape() or (None, None, config.model.input_shape[2])


def data_text(config: Config) -> str:
    """'mnist_sample, 28x28x1 images': what a comparison needs to be the same."""
    h, w, c = image_shape(config)
    size = f"{h}x{w}x{c}" if h else f"{c}-channel"
    return f"{data_source(config)}, {size} images"


def check_same_data(first: tuple[Path, Config], other: tuple[Path, Config]) -> None:
    """Refuse two runs whose data source or images differ (a patch model's are its whole
    images, which evaluate scores it on)."""
    (a, config_a), (b, config_b) = first, other
    shape_a, shape_b = image_shape(config_a), image_shape(config_b)
    sizes = None in (shape_a[0], shape_b[0]) or shape_a[:2] == shape_b[:2]
    same = data_source(config_a) == data_source(config_b) and shape_a[2] == shape_b[2]
    if not (same and sizes):
        raise UserError(
            f"{b}: trained on {data_text(config_b)}, but {a} on {data_text(config_a)}; compare "
            f"runs trained on the same data"
        )


def check_output(out: str | Path | None) -> None:
    """Refuse an --out that exists and is not an empty folder."""
    if out is None:
        return
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"--out {out}: already exists and is not an empty folder; name a new folder, or "
            f"leave --out out to write under {OUTPUT}/<timestamp>"
        )


def _outermost_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that mkdir(parents=True) would make; None if it exists."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def output_folder(out: str | Path | None) -> Path:
    """A new folder for the comparison: out (checked by check_output), or OUTPUT/<timestamp>/."""
    if out is None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        return runs.stamped_dir(OUTPUT, "--out", "comparisons")
    out = Path(out)  # check_output refused a folder that holds files
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---------------------------------------------------------------------------------------------
# Labels and the diff table


def run_labels(paths: list[Path], configs: list[Config], keys: list[str]) -> list[str]:
    """Short distinct names: the differing values when few, else the run name and timestamp."""
    shown = [k for k in keys if k != "output"]  # where a run was written says little
    if 0 < len(shown) <= 2:
        labels = [", ".join(f"{_leaf(k)}={value_text(c, k)}" for k in shown) for c in configs]
        if _distinct(labels) and max(map(len, labels)) <= LABEL_LENGTH:
            return labels
    labels = [f"{c.name} {p.name}" for p, c in zip(paths, configs)]
    return labels if _distinct(labels) else [f"{i}: {t}" for i, t in enumerate(labels, 1)]


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _distinct(labels: list[str]) -> bool:
    return len(set(labels)) == len(labels)


def value_text(config: Config, key: str, width: int = 50) -> str:
    """The value of a dotted key ('model.encoder[0].filters') as short text."""
    value = config.model_dump(mode="json")
    for part in re.findall(r"[^.\[\]]+", key):
        if isinstance(value, list):
            value = value[int(part)] if int(part) < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(b, dict) and "type" in b for b in value)
    ):
        # Block lists of different lengths differ as wholes: their JSON cut at the width would
        # show the first block's keys only, so each block is summed up instead, untruncated.
        return "; ".join(block_text(b) for b in value)
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def block_text(block: dict) -> str:
    """One block in a few words: 'residual 64 /2 silu bn', 'space_to_depth 2x2'."""
    parts = [block["type"]]
    if block.get("size"):
        parts.append(f"{block['size']}x{block['size']}")
    if block.get("filters"):
        parts.append(str(block["filters"]))
    kernel, strides = block.get("kernel_size"), block.get("strides")
    if kernel and list(kernel) != [3, 3]:
        parts.append("x".join(map(str, kernel)))
    if strides and set(strides) != {1}:
        parts.append("/" + "x".join(map(str, strides[:1] if len(set(strides)) == 1 else strides)))
    if block.get("activation"):
        parts.append(block["activation"])
    if block.get("batch_norm"):
        parts.append("bn")
    return " ".join(parts)


def diff_table(configs: list[Config], labels: list[str], keys: list[str]) -> str:
    """A Markdown table: a row per differing key, a column per run."""
    if not keys:
        return "The runs' configs are the same in every key."
    lines = ["| key | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for key in keys:
        cells = [value_text(config, key).replace("|", "\\|") for config in configs]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures


def curves(path: Path, checked, labels: list[str], keys: list[str]) -> None:
    """Validation loss by epoch and by minutes; val/mse when the runs' losses differ."""
    histories = {label: runs.read_history(p) for label, (p, _) in zip(labels, checked)}
    plot_compare_curves(path, histories, compared_metric(keys, list(histories.values())))


def compared_metric(keys: list[str], histories: list[list[dict]]) -> str:
    """val/loss, or val/mse when the runs' losses are of different kinds."""
    # Losses of different kinds (BCE and MSE, a VAE's nats and a per-pixel error) are not on
    # one scale; every run logs val/mse, which is.
    kinds = ("train.loss", "model.kind", "train.kl")
    mixed = any(key.startswith(kinds) for key in keys)
    if mixed and all(any("val/mse" in r for r in h) for h in histories):
        return "val/mse"
    return "val/loss"


def reconstructions(checked, labels: list[str]) -> tuple:
    """The first test images of the first run, the noisy inputs (if any) and what each run makes
    of them: plot_compare_reconstructions's arguments after the path."""
    first = checked[0][1]
    x = scaled(np.asarray(load_splits(first).pixels("test")[:EXAMPLES]))
    inputs, outputs, fed = {}, [], []
    for label, (run_dir, config) in zip(labels, checked):
        log.info("reconstructing with %s", run_dir)
        given = model_inputs(x, config)  # a denoiser's test noise, as evaluate adds it
        fed.append("clean")
        if config.data.noise is not None:
            noise = config.data.noise
            fed[-1] = f"{noise.kind} {level_text(noise.level)}"
            inputs.setdefault(f"noisy input ({noise.kind} {level_text(noise.level)})", given)
        model = load_model(run_dir / "model.keras")
        recon = runs.predict_images(model, given, config.data.patches)
        outputs.append((label, np.clip(np.asarray(recon, np.float32), 0, 1)))
    if inputs:  # beside noisy rows, each run's row says which input it was given
        outputs = [(f"{label} (given {what})", y) for (label, y), what in zip(outputs, fed)]
    return x, list(inputs.items()), outputs


# ---------------------------------------------------------------------------------------------
# compare.md


def report(out_dir: Path, checked, labels: list[str], table: str, keys=()) -> str:
    """compare.md: the runs, the keys that differ, the figures, each run's own figures."""
    rows = [listing.run_row(p, p.parent) for p, _ in checked]
    for row in rows:
        if row["problem"]:  # said, not a silent row of dashes
            log.warning("%s; compare.md shows '-' for that run's figures", row["problem"])
    histories = [runs.read_history(p) for p, _ in checked]
    metric = compared_metric(list(keys), histories)
    head = "best val/loss" if metric == "val/loss" else "best val/mse (the losses differ in kind)"
    lines = [
        f"# {len(checked)} runs compared",
        "",
        f"| run | path | epochs | trained in | {head} | test PSNR (dB) | SSIM | squared error "
        f"/ image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (run_dir, _), label, row, history in zip(checked, labels, rows, histories):
        # The precision it trained in: train.mixed_precision auto reads alike for either.
        policy = runs.read_precision(run_dir) or {}
        cells = dict(zip(listing.COLUMNS, listing.row_cells(row)))
        best = cells["val_loss"]
        if metric == "val/mse":
            values = [r["val/mse"] for r in history if "val/mse" in r]
            best = f"{min(values):.4g}" if values else "-"
        lines.append(
            f"| {label} | {row['path']} | {cells['epochs']} | {policy.get('policy', '-')} | {best} | "
            f"{cells['psnr']} | {cells['ssim']} | {cells['sse']} |"
        )
    lines += ["", "## Config keys that differ", "", table, ""]
    lines += ["## Validation curves", "", "![validation curves](curves.png)", ""]
    lines += ["## The same test images", "", "![reconstructions](reconstructions.png)", ""]
    lines += ["## Each run's own test figures", "", *own_figures(out_dir, checked, labels), ""]
    return "\n".join(lines)


def own_figures(out_dir: Path, checked, labels: list[str]) -> list[str]:
    """A Markdown table of each run's figures/, a column per run, linked relative to out_dir."""
    lines = ["| figure | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name in RUN_FIGURES:
        cells = []
        for run_dir, _ in checked:
            figure = run_dir / "figures" / name
            link = Path(os.path.relpath(figure.resolve(), out_dir.resolve())).as_posix()
            cells.append(f"![{name}]({link})" if figure.is_file() else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
