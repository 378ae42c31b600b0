"""Denoising sweeps: one model per training noise level, each scored at every evaluation level.

`run_sweep(config)` writes <output>/<name>/<timestamp>/ with models/level-<L>/<timestamp>/ (full
run directories made by `pipeline.train`), results.csv, results.md and figures/. Every model, the
noisy input and the classical filter are scored on the same test images with the same fixed
noise (denoise.eval_seed), so rows compare across models and runs. With denoise.blind, one more
model, models/blind-<low>-<high>/, trains on levels drawn per image from that range and is
scored at the same levels; its rows carry its PSNR minus that of the model trained at the row's
level.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np

from autoencoder import atomic, lock, runs
from autoencoder.config import Config, NoiseConfig, dump_config, level_text
from autoencoder.data import load_splits
from autoencoder.errors import UserError, named
from autoencoder.evaluate import per_image_mse, psnr, ssim
from autoencoder.model import load_model
from autoencoder.noise import noisy_eval
from autoencoder.pipeline import train
from autoencoder.plots import plot_psnr_vs_level, plot_robustness, plot_triplets

log = logging.getLogger(__name__)

# Classical baselines; the best on the validation split is reported on test, per noise level.
GAUSSIAN_SIGMAS = (0.5, 0.7, 1.0, 1.4)
FILTER_VAL_IMAGES = 2000  # plenty to rank five filters; keeps full-MNIST sweeps quick
COLUMNS = (
    "kind",
    "train_level",
    "eval_level",
    "noisy_psnr",
    "noisy_ssim",
    "filter",
    "filter_psnr",
    "filter_ssim",
    "model_psnr",
    "model_ssim",
    "images",
    "model",  # the model's folder under models/: level-<L>, or blind-<low>-<high>
    "blind_minus_level_psnr",  # blind rows: minus the PSNR of the model trained at eval_level
    "label",  # the model as results.md and the figures name it: 0.5, or blind 0-0.7
    "epochs",  # the epochs the model trained (denoise.blind_epochs may give the blind one more)
)
EXAMPLES = 8  # images per row in figures/triplets.png
COMMAND = "autoencoder denoise"  # what the sweep's locks say it is


def run_sweep(config: Config, resume: str | Path | None = None) -> tuple[Path, list[dict]]:
    """Train (or reuse) a model per denoise.train_levels (and denoise.blind), score them, report.

    Args:
      config: the resolved config; its model, train and data sections apply to every model.
      resume: an earlier sweep directory; finished models are reused, unfinished ones resumed.
    Returns:
      (the sweep directory, the rows of results.csv).
    """
    warn_unused_noise(config)
    if resume is not None:
        _check_is_sweep(resume)
        with runs.writing(resume, COMMAND):
            sweep_dir = check_sweep_resume(resume, config)
            try:
                splits = load_splits(config)
            except KeyboardInterrupt:
                raise KeyboardInterrupt(
                    f"while reading the data; the sweep is as it was: go on with "
                    f"`{go_on(sweep_dir)}`"
                ) from None
            return _sweep(config, sweep_dir, splits)
    # Before the sweep's folder is made: data that cannot be found leaves nothing behind.
    splits = load_splits(config)
    sweep_dir = runs.create_run_dir(config)
    (sweep_dir / "checkpoints").rmdir()  # each model keeps its own checkpoints
    with lock.hold(sweep_dir, COMMAND):
        return _sweep(config, sweep_dir, splits)


def warn_unused_noise(config: Config) -> None:
    """Say so when the config sets data.noise, which the sweep replaces with its own levels."""
    noise, d = config.data.noise, config.denoise
    if noise is None:
        return
    log.warning(
        "data.noise (%s, level %s) is not used by `autoencoder denoise`: each model trains on %s "
        "noise at denoise.train_levels %s; set denoise.kind, denoise.clip, denoise.train_levels "
        "or denoise.blind instead",
        noise.kind,
        level_text(noise.level),
        d.kind,
        ", ".join(level_text(level) for level in d.train_levels),
    )


def _check_is_sweep(folder: str | Path) -> None:
    """Refuse a missing folder, a run's or an anomaly benchmark's folder given to --resume."""
    folder = Path(folder)
    if not folder.exists():
        what = "no such folder"
    elif folder.is_dir() and not (folder / "config.yaml").is_file():
        what = "a folder without the config.yaml a sweep writes"
    elif (runs.check_is_run(folder) / "checkpoints").exists():
        what = "a training run, not a denoising sweep"
    elif runs.is_anomaly_benchmark(folder):
        what = "an anomaly benchmark's folder, not a denoising sweep"
    else:
        return
    raise UserError(
        f"{named(f'--resume {folder}', f'resume={str(folder)!r}')}: {what}; pass the folder "
        f"`autoencoder denoise` printed (results and figures: ...), or leave "
        f"{named('--resume', 'resume')} out to start a sweep"
    )


# What may change when a sweep goes on: its models' epochs (more: they train on) and minutes,
# and where its images are.
SWEEP_CHANGES = {"train.epochs", "train.minutes", "data.path", "denoise.blind_epochs"}


def go_on(sweep_dir: Path) -> str:
    """The command that goes on with a sweep, from the config it saved."""
    config = Path(sweep_dir) / "config.yaml"
    return named(
        f"autoencoder denoise {config} --resume {sweep_dir}",
        f"ae.denoise_sweep('{config}', resume='{sweep_dir}')",
    )


def check_sweep_resume(sweep_dir: str | Path, config: Config) -> Path:
    """The sweep's folder; UserError when the config differs in what its models were made by."""
    sweep_dir = Path(sweep_dir)
    shown = runs.changed_keys(runs.load_run_config(sweep_dir), config, SWEEP_CHANGES)
    if shown:
        raise UserError(
            f"{sweep_dir}: cannot go on with the sweep: the config differs from the sweep's in "
            f"{shown}; only train.epochs, train.minutes, denoise.blind_epochs and data.path may "
            f"change (`{go_on(sweep_dir)}`, with {named('--set', 'overrides')} for those); start "
            f"a new sweep for others"
        )
    return sweep_dir


def _sweep(config: Config, sweep_dir: Path, splits) -> tuple[Path, list[dict]]:
    log.info("sweep directory: %s", sweep_dir)
    d = config.denoise
    levels = [*d.train_levels, *([d.blind] if d.blind is not None else [])]
    try:
        model_dirs = {level: model_run(config, sweep_dir, level, splits) for level in levels}
        atomic.write_text(sweep_dir / "config.yaml", dump_config(config))  # its epochs, as trained
        rows, images = evaluate_sweep(config, splits, model_dirs)
        write_report(sweep_dir, config, rows, images)
    except KeyboardInterrupt:
        # The model's own message would resume that model alone; during the scoring, going on
        # reuses the trained models and scores them again.
        raise KeyboardInterrupt(
            f"the sweep is kept, each model at its last completed epoch: go on with "
            f"`{go_on(sweep_dir)}`"
        ) from None
    return sweep_dir, rows


def level_name(level: float | tuple[float, float]) -> str:
    """The folder of the model trained at a level (level-L), or on a range (blind-low-high)."""
    return f"{'blind' if isinstance(level, tuple) else 'level'}-{level_text(level)}"


def model_label(level: float | tuple[float, float], draw: str = "uniform") -> str:
    """The model of a level or range as tables and figures name it: the level, or blind low-high
    (and its draw, when not uniform)."""
    if not isinstance(level, tuple):
        return level_text(level)
    return f"blind {level_text(level)}" + ("" if draw == "uniform" else f" {draw}")


def level_config(config: Config, sweep_dir: Path, level: float | tuple[float, float]) -> Config:
    """The sweep's config with data.noise at one training level or range, under sweep/models/."""
    d = config.denoise
    blind = isinstance(level, tuple)
    draw = d.blind_draw if blind else "uniform"
    data = config.data.model_copy(
        update={"noise": NoiseConfig(kind=d.kind, level=level, clip=d.clip, draw=draw)}
    )
    epochs = d.blind_epochs if blind and d.blind_epochs is not None else config.train.epochs
    # Absolute, so a resume from another working directory passes train's config check.
    return config.model_copy(
        update={
            "data": data,
            "train": config.train.model_copy(update={"epochs": epochs}),
            "name": level_name(level),
            "output": str((Path(sweep_dir) / "models").resolve()),
        }
    )


def model_run(
    config: Config, sweep_dir: Path, level: float | tuple[float, float], splits=None
) -> Path:
    """The run directory of the model for one level or range: reused, resumed, or trained on
    `splits` (the sweep's data: a level changes the noise, which the splits do not hold)."""
    cfg = level_config(config, sweep_dir, level)
    found = runs.find_runs(Path(cfg.output, cfg.name))
    started = [run for run in found if (run / runs.STATE).is_file()]
    if not started:
        return train(cfg, None, COMMAND, splits).run_dir
    run = started[-1]
    saved_config = runs.load_run_config(run)
    # The model's copy of the denoise section is the sweep's as it started: blind_epochs may
    # have changed since, which reaches the model as its train.epochs. (A moved sweep's output
    # differs too: a resume keeps the run's own, pipeline._train.)
    cfg = cfg.model_copy(update={"denoise": saved_config.denoise})
    saved = saved_config.train
    same = (saved.epochs, saved.minutes) == (cfg.train.epochs, cfg.train.minutes)
    if runs.status(run) == "finished" and same:
        return run
    trained = runs.read_state(run)["epoch"]
    if cfg.train.epochs < trained:
        key = "denoise.blind_epochs" if isinstance(level, tuple) else "train.epochs"
        raise UserError(
            f"{run}: this model of the sweep has trained {trained} epochs, more than "
            f"{key}={cfg.train.epochs}; give at least {trained} to go on with the sweep"
        )
    return train(cfg, run, COMMAND, splits).run_dir  # unfinished, or more epochs or minutes


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate_sweep(config: Config, splits, model_dirs: dict):
    """Rows of COLUMNS (model x eval level) and the triplet figure's images, by training level."""
    # model_dirs: a training level, or a blind model's (low, high) range -> its run directory.
    x_test = splits.images("test")[: config.denoise.eval_images]
    x_val = splits.images("val")[:FILTER_VAL_IMAGES]
    levels = {
        level: baselines(config, x_test, x_val, level) for level in config.denoise.eval_levels
    }
    images = {
        "clean": x_test[:EXAMPLES],
        **{("noisy", level): noisy[:EXAMPLES] for level, (noisy, _) in levels.items()},
    }
    rows = []
    # Model by model, so each traces its predict function once rather than once per level.
    for trained, path in model_dirs.items():
        model = load_model(path / "model.keras")
        epochs = runs.read_metrics(path).get("epochs_run")
        blind = isinstance(trained, tuple)
        for eval_level, (noisy, base) in levels.items():
            out = runs.predict_images(model, noisy, splits.patches)
            rows.append(
                {
                    "train_level": None if blind else trained,
                    "model": level_name(trained),
                    "label": model_label(trained, config.denoise.blind_draw),
                    "epochs": epochs,
                    **base,
                    **scores("model", x_test, out),
                }
            )
            images[("blind" if blind else trained, eval_level)] = out[:EXAMPLES]
    # The per-level models first, each by eval level, then the blind model's rows.
    rows.sort(key=lambda r: (r["train_level"] is None, r["train_level"] or 0, r["eval_level"]))
    own = {r["eval_level"]: r["model_psnr"] for r in rows if r["train_level"] == r["eval_level"]}
    for r in rows:
        vs = r["train_level"] is None and r["eval_level"] in own
        r["blind_minus_level_psnr"] = r["model_psnr"] - own[r["eval_level"]] if vs else None
    return [{c: r[c] for c in COLUMNS} for r in rows], images


def baselines(config: Config, x_test: np.ndarray, x_val: np.ndarray, level: float):
    """(noisy test images, row fields of the noisy input and the best filter) at one level."""
    d = config.denoise
    noise = NoiseConfig(kind=d.kind, level=level, clip=d.clip)
    noisy = noisy_eval(x_test, noise, d.eval_seed)
    # Validation noise uses the seed the trainer validates with (eval_seed + 1).
    name, filtered = best_filter(x_val, noisy_eval(x_val, noise, d.eval_seed + 1), noisy)
    return noisy, {
        "kind": d.kind,
        "eval_level": level,
        **scores("noisy", x_test, noisy),
        "filter": name,
        **scores("filter", x_test, filtered),
        "images": len(x_test),
    }


def scores(prefix: str, clean: np.ndarray, images: np.ndarray) -> dict:
    """{prefix_psnr, prefix_ssim} of images against the clean ones (dataset-level PSNR)."""
    return {
        f"{prefix}_psnr": psnr(float(per_image_mse(clean, images).mean())),
        f"{prefix}_ssim": ssim(clean, images),
    }


def classical_filters() -> dict:
    """Name -> function on a batch (N, H, W, C): 3x3 median and Gaussian blurs of a few widths."""
    from scipy import ndimage

    # Filter within each image only: size / sigma 0 on the batch and channel axes.
    out = {"median 3x3": lambda x: ndimage.median_filter(x, size=(1, 3, 3, 1))}
    for sigma in GAUSSIAN_SIGMAS:
        out[f"gaussian s={sigma:g}"] = lambda x, s=sigma: ndimage.gaussian_filter(
            x, sigma=(0, s, s, 0)
        )
    return out


def best_filter(clean_val: np.ndarray, noisy_val: np.ndarray, noisy_test: np.ndarray):
    """(name, filtered test images) of the filter with the lowest validation MSE."""
    filters = classical_filters()
    name = min(filters, key=lambda n: per_image_mse(clean_val, filters[n](noisy_val)).mean())
    return name, filters[name](noisy_test)


# ---------------------------------------------------------------------------------------------
# Report


def write_report(sweep_dir: Path, config: Config, rows: list[dict], images: dict) -> None:
    """results.csv, results.md and the three figures."""
    atomic.write_text(sweep_dir / "results.csv", results_csv(rows))
    atomic.write_text(sweep_dir / "results.md", results_markdown(rows, config) + "\n")
    figures = sweep_dir / "figures"
    figures.mkdir(exist_ok=True)
    plot_triplets(figures / "triplets.png", images, config.denoise.kind)
    plot_psnr_vs_level(figures / "psnr_vs_level.png", rows)
    plot_robustness(figures / "robustness.png", rows)


def results_csv(rows: list[dict]) -> str:
    """Rows as CSV with the COLUMNS header; floats to 4 decimals."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        [{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    )
    return out.getvalue()


# How results.md says the blind model's levels were drawn from its range.
DRAWN = {"uniform": "uniformly from", "triangular": "with falling (triangular) density over"}


def blind_epochs_text(config: Config) -> str:
    """', for N epochs (the per-level models M each)' when the blind model's epochs differ."""
    n, each = config.denoise.blind_epochs, config.train.epochs
    return "" if n in (None, each) else f", for {n} epochs (the per-level models {each} each)"


def results_markdown(rows: list[dict], config: Config) -> str:
    """A markdown table of the rows, with a line saying what was measured."""
    d = config.denoise
    blind = any(r["train_level"] is None for r in rows)
    lines = [
        f"{d.kind} noise{' (clipped to [0, 1])' if d.clip else ''}, {rows[0]['images']:,} test "
        f"images of {config.data.dataset}, evaluation seed {d.eval_seed}. PSNR in dB "
        f"(10 log10(1 / mean MSE)), SSIM mean over images; the filter is the best of 3x3 median "
        f"and Gaussian blurs on the validation split."
        + (
            f" The blind model trained with each image at its own level drawn {DRAWN[d.blind_draw]} "
            f"{level_text(d.blind)}{blind_epochs_text(config)}; blind - level is its PSNR minus "
            f"that of the model trained at the row's eval level."
            if blind
            else ""
        ),
        "",
        "| train level | eval level | noisy PSNR | noisy SSIM | filter | filter PSNR | filter SSIM "
        "| model PSNR | model SSIM |" + (" blind - level (dB) |" if blind else ""),
        "|---:|---:|---:|---:|:---|---:|---:|---:|---:|" + ("---:|" if blind else ""),
    ]
    for r in rows:
        line = (
            f"| {r['label']} | {r['eval_level']:g} | {r['noisy_psnr']:.2f} | "
            f"{r['noisy_ssim']:.3f} | {r['filter']} | {r['filter_psnr']:.2f} | "
            f"{r['filter_ssim']:.3f} | {r['model_psnr']:.2f} | {r['model_ssim']:.3f} |"
        )
        if blind:
            delta = r["blind_minus_level_psnr"]
            line += f" {'' if delta is None else f'{delta:+.2f}'} |"
        lines.append(line)
    return "\n".join(lines)


def read_results(sweep_dir: str | Path) -> list[dict]:
    """results.csv back as rows with numbers, None where a cell is empty (for tests, notebooks)."""
    with open(Path(sweep_dir) / "results.csv", newline="") as handle:
        return [{k: _cell(k, v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _cell(column: str, text: str):
    """One results.csv cell as its value: text, an int (epochs), a float, or None when empty."""
    if column in ("kind", "filter", "model", "label"):
        return text
    if not text:
        return None
    return int(text) if column == "epochs" else float(text)
