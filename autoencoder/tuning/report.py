"""What a study leaves beside its runs: trials.csv, best.yaml, results.md and figures/.

Read from the study's storage, so any worker (or a later `--resume`) writes the whole study.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autoencoder import api, atomic, runs
from autoencoder.config import dump_config
from autoencoder.errors import UserError
from autoencoder.plots.figure import layout, show, subplots, write
from autoencoder.tuning.space import CHECKPOINTS

BEST_RUNS = 3  # runs whose reconstructions are drawn side by side
IMAGES = 8
FEW_TRIALS = 10  # complete trials below which importances are flagged as a rough guide
STUDY_FILES = ("trials.csv", "best.yaml", "results.md", "figures/")
DASHBOARD = "pip install optuna-dashboard; optuna-dashboard {storage}"


def pruner_text(pruner, setup=None) -> str:
    """The pruner as results.md and the log name it, with when the median pruner starts and,
    for trials of minutes (a timed setup), that it compares them at equal minutes."""
    kind = type(pruner).__name__
    timed = setup is not None and setup.timed
    if kind == "NopPruner":
        return "none"
    text = {"HyperbandPruner": "hyperband"}.get(kind, kind)
    if kind == "MedianPruner":
        startup = pruner._n_startup_trials  # noqa: SLF001 - Optuna keeps them private
        # Optuna's warm-up steps are epochs counted from 1; a timed study's are the Reporter's.
        epoch = setup.warmup_epochs + 1 if timed else pruner._n_warmup_steps  # noqa: SLF001
        later = f", from a trial's epoch {epoch} on" if epoch > 1 else ""
        text = f"median (prunes once {startup} trial{'s' * (startup != 1)} completed{later}"
        text += "; " if timed else ")"
    elif timed:
        text += " ("
    if timed:
        text += f"trials compared at every {100 // CHECKPOINTS}% of their minutes)"
    return text


def state_of(trial) -> str:
    """complete, pruned, failed, infeasible (skipped before it started) or running."""
    if trial.user_attrs.get("infeasible"):
        return "infeasible"
    return {"FAIL": "failed"}.get(trial.state.name, trial.state.name.lower())


def minutes(trial) -> float | None:
    """The trial's wall time: setup, training, evaluation and figures."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds() / 60


def reasons(study) -> dict[int, str]:
    """Why each trial that stopped early did, by number; a stopped trial tried again says as
    which trial."""
    trials = study.get_trials(deepcopy=False)
    again = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    out = {}
    for t in trials:
        reason = t.user_attrs.get("reason", "")
        if t.number in again:
            reason += f"; its settings tried again as trial {again[t.number]}"
        if reason:
            out[t.number] = reason
    return out


def _number(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def ranked(study) -> list:
    """The complete trials, best first."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")


def trials_csv(study, keys: list[str]) -> str:
    """One row per trial: number, state, objective, the parameters, minutes (wall time),
    train_minutes (its completed epochs'), run_dir, reason."""
    out = io.StringIO()
    columns = ["number", "state", "objective", *keys]
    columns += ["minutes", "train_minutes", "run_dir", "reason"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    why = reasons(study)
    for t in study.get_trials(deepcopy=False):
        writer.writerow(
            {
                "number": t.number,
                "state": state_of(t),
                "objective": "" if t.value is None else f"{t.value:.6g}",
                **{k: t.params.get(k, "") for k in keys},
                "minutes": _number(minutes(t), 2),
                "train_minutes": _number(t.user_attrs.get("train_minutes"), 2),
                "run_dir": t.user_attrs.get("run_dir", ""),
                "reason": why.get(t.number, ""),
            }
        )
    return out.getvalue()


def best_yaml(study_dir: Path, trial, setup) -> str:
    """The best trial's resolved config, named and placed as the study's config: ready to train."""
    config = runs.load_run_config(study_dir / trial.user_attrs["run_dir"])
    # Placed as the study's config: its runs go beside the study (<output>/<name>/tune-...),
    # wherever a resume was started from or the folder was moved to.
    output = str(Path(study_dir).parent.parent)
    config = config.model_copy(update={"name": setup.base.name, "output": output})
    metric = setup.tune.objective.metric
    header = (
        f"# The best trial of the study {study_dir}: trial {trial.number}, {metric} "
        f"{trial.value:.6g}\n# (train.epochs is the trial's). Train it: autoencoder train "
        f"{study_dir / 'best.yaml'}\n"
    )
    return header + dump_config(config)


def results_markdown(study, study_dir: Path, setup, storage: str) -> str:
    """A summary: the objective, trials by state, the best trial, every trial ranked."""
    objective = setup.tune.objective
    trials = study.get_trials(deepcopy=False)
    counts = {}
    for t in trials:
        counts[state_of(t)] = counts.get(state_of(t), 0) + 1
    lines = [
        f"# Study {study_dir.name}",
        "",
        f"Objective: {objective.goal()} {objective.metric} ({objective.epoch} epoch of each "
        f"trial); {len(trials)} trials: "
        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())),
        "",
        f"Pruner: {pruner_text(study.pruner, setup)}",
        "",
    ]
    best = ranked(study)
    if best:
        b = best[0]
        lines += [
            f"Best: trial {b.number}, {objective.metric} {b.value:.6g}, "
            + ", ".join(f"{k} = {_value(v)}" for k, v in b.params.items()),
            "",
            "Train it: `autoencoder train " + str(study_dir / "best.yaml") + "`",
            "",
        ]
    keys = [p.key for p in setup.params]
    header = ["trial", "state", objective.metric, *keys, "training minutes", "wall minutes"]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    order = best + [t for t in trials if t.state.name != "COMPLETE"]
    for t in order:
        value = "" if t.value is None else f"{t.value:.4g}"
        params = " | ".join(_value(t.params.get(k, "")) for k in keys)
        trained = _number(t.user_attrs.get("train_minutes"), 1)
        lines.append(
            f"| {t.number} | {state_of(t)} | {value} | {params} | {trained} "
            f"| {_number(minutes(t), 1)} |"
        )
    why = reasons(study)
    if why:
        lines += ["", "Why trials stopped early:", ""]
        lines += [f"- trial {t.number}: {why[t.number]}" for t in order if t.number in why]
    figures = sorted(f"figures/{p.name}" for p in (study_dir / "figures").glob("*.png"))
    if figures:
        lines += ["", "Figures: " + ", ".join(figures)]
    lines += ["", f"Browse it live: `{DASHBOARD.format(storage=storage)}`", ""]
    return "\n".join(lines)


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_tables(study, study_dir: Path, setup, storage: str) -> None:
    """trials.csv, results.md and best.yaml, each written atomically."""
    keys = [p.key for p in setup.params]
    atomic.write_text(study_dir / "trials.csv", trials_csv(study, keys))
    atomic.write_text(study_dir / "results.md", results_markdown(study, study_dir, setup, storage))
    best = ranked(study)
    if best and "run_dir" in best[0].user_attrs:
        atomic.write_text(study_dir / "best.yaml", best_yaml(study_dir, best[0], setup))


def write_figures(study, study_dir: Path, setup) -> list[Path]:
    """figures/objective.png, importance.png and reconstructions.png, when there is enough."""
    out = study_dir / "figures"
    out.mkdir(exist_ok=True)
    written = []
    if any(t.value is not None for t in study.get_trials(deepcopy=False)):
        plot_objective(out / "objective.png", study, setup.tune.objective)
        written.append(out / "objective.png")
    if plot_importance(out / "importance.png", study, setup.tune.objective.metric):
        written.append(out / "importance.png")
    if plot_best_runs(out / "reconstructions.png", study, study_dir, setup.tune.objective.metric):
        written.append(out / "reconstructions.png")
    if not any(out.iterdir()):
        out.rmdir()  # no trial gave a value yet: no empty folder named in the study's files
    return written


def plot_objective(path: Path, study, objective) -> None:
    """The objective of each trial over trial number and over minutes, with the best so far."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    start = min(t.datetime_start for t in trials)
    fig, axes = subplots(1, 2, figsize=(11, 4))
    for ax, x_of, axis in (
        (axes[0], lambda t: t.number, "trial"),
        (
            axes[1],
            lambda t: (t.datetime_complete - start).total_seconds() / 60,
            "minutes since the study's first trial started",
        ),
    ):
        ordered = sorted(trials, key=x_of)
        for state, marker, colour in (("complete", "o", "C0"), ("pruned", "x", "C3")):
            shown = [t for t in ordered if state_of(t) == state]
            label = "pruned (its last reported value)" if state == "pruned" else state
            if shown:
                ax.scatter(
                    [x_of(t) for t in shown],
                    [t.value for t in shown],
                    marker=marker,
                    c=colour,
                    label=label,
                )
        if axis == "trial":
            # No value to place: a dotted line at its number, so every trial is accounted for.
            lost = [
                t.number
                for t in study.get_trials(deepcopy=False)
                if t.value is None and state_of(t) in ("failed", "infeasible")
            ]
            for k, number in enumerate(lost):
                label = "failed or infeasible (no value)" if k == 0 else None
                ax.axvline(number, c="0.6", ls=":", lw=1.2, zorder=0, label=label)
        done = [t for t in ordered if state_of(t) == "complete"]
        if done:
            pick = min if objective.goal() == "minimize" else max
            best = [pick(t.value for t in done[: i + 1]) for i in range(len(done))]
            xs = [x_of(t) for t in done]
            # Held to the last trial shown: pruned trials after the best do not end the line
            # (else a study of one complete trial draws none).
            end = max(x_of(t) for t in ordered)
            if end > xs[-1]:
                xs, best = [*xs, end], [*best, best[-1]]
            ax.step(xs, best, where="post", c="C2", label="best so far")
        ax.set_xlabel(axis)
        ax.set_ylabel(objective.metric)
        ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"{objective.metric} of each trial")
    axes[1].set_title(f"{objective.metric} over time")
    fig.suptitle(f"Study {path.parent.parent.name}: {objective.goal()} {objective.metric}")
    layout(fig)
    write(fig, path)


def plot_importance(path: Path, study, metric: str) -> bool:
    """Optuna's parameter importances as bars (fANOVA): False when fewer than 2 complete
    trials, or no parameter varied."""
    done = ranked(study)
    varied = {k for t in done for k in t.params if len({repr(u.params.get(k)) for u in done}) > 1}
    if len(done) < 2 or not varied:
        return False
    import optuna

    importances = optuna.importance.get_param_importances(study)
    names = list(importances)[::-1]
    fig, ax = subplots(figsize=(7, 1 + 0.5 * len(names)))
    bars = ax.barh(names, [importances[n] for n in names], color="C0")
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=9)
    ax.set_xlabel(f"importance for {metric} (fANOVA, sums to 1)")
    ax.set_xlim(0, 1.12)  # room for the label of a bar at 1
    title = f"Parameter importances over {len(done)} complete trials"
    if len(done) < FEW_TRIALS:
        # fANOVA fits a forest to the trials: from a handful, its ranking is mostly chance.
        title += f"\n(fewer than {FEW_TRIALS}: a rough guide, likely to change with more trials)"
    ax.set_title(title, fontsize=10)
    layout(fig)
    write(fig, path)
    return True


def best_run_rows(study, study_dir: Path, metric: str) -> list[tuple[str, object]]:
    """(label, images) rows: test images, a denoiser's noisy inputs, the best runs' outputs."""
    from autoencoder.noise import model_inputs

    best = [t for t in ranked(study) if "run_dir" in t.user_attrs][:BEST_RUNS]
    if not best:
        return []
    first = api.load_run(study_dir / best[0].user_attrs["run_dir"])
    images, _ = first.images("test", IMAGES)
    # A denoiser's trials get the same noisy images, its test noise: their outputs for clean
    # inputs would say nothing of how they denoise.
    inputs = model_inputs(images, first.config)
    rows = [("test images", images)]
    if inputs is not images:
        rows.append(("noisy inputs", inputs))
    for t in best:
        try:
            recon = api.load_run(study_dir / t.user_attrs["run_dir"]).reconstruct(inputs)
        except UserError:  # a model of another input shape: the space changed it
            continue
        rows.append((f"trial {t.number}\n{metric} {t.value:.4g}", recon))
    return rows


def plot_best_runs(path: Path, study, study_dir: Path, metric: str) -> bool:
    """The same test images through the best runs' models, a row each; False without a run."""
    rows = best_run_rows(study, study_dir, metric)
    if not rows:
        return False
    count = len(rows[0][1])
    fig, axes = subplots(
        len(rows), count, figsize=(1.3 * count + 1.4, 1.4 * len(rows) + 0.5), squeeze=False
    )
    for r, (label, shown) in enumerate(rows):
        for j in range(count):
            show(axes[r, j], shown[j])
        axes[r, 0].set_ylabel(label, fontsize=9)
    trials = sum(label.startswith("trial ") for label, _ in rows)
    noisy = any(label == "noisy inputs" for label, _ in rows)
    what = (
        "outputs for the same noisy test images"
        if noisy
        else "reconstructions of the same test images"
    )
    fig.suptitle(best_runs_title(trials, what))
    layout(fig)
    write(fig, path)
    return True


def best_runs_title(trials: int, what: str) -> str:
    """reconstructions.png's title: "The best 3 trials' ...", or "The best trial's ..."."""
    return f"The best trial's {what}" if trials == 1 else f"The best {trials} trials' {what}"


def format_study(study, study_dir: Path, metric: str) -> str:
    """What `autoencoder tune` prints at the end: trials by state, the best one, the files."""
    trials = study.get_trials(deepcopy=False)
    lines = [f"{'trial':>5}  {'state':<10}  {metric:>12}  {'minutes':>7}  parameters"]
    for t in trials:
        took = minutes(t)
        value = "" if t.value is None else f"{t.value:.6g}"
        params = ", ".join(f"{k}={_value(v)}" for k, v in t.params.items())
        shown = "" if took is None else f"{took:.2f}"
        lines.append(f"{t.number:>5}  {state_of(t):<10}  {value:>12}  {shown:>7}  {params}")
    best = ranked(study)
    if best:
        lines.append(f"best: trial {best[0].number}, {metric} {best[0].value:.6g}")
    files = [name for name in STUDY_FILES if (study_dir / name).exists()]
    lines.append(f"study: {study_dir}" + (f" ({', '.join(files)})" if files else ""))
    return "\n".join(lines)
