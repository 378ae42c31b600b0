"""A study: its folder, its Optuna storage, and its trials, each an ordinary run (pipeline.train).

STUDY_DIR holds study.yaml (the config and search it was made for), study.db (the default
SQLite storage, found where the folder now is: a study moved or copied goes on where it is),
trials/trial-<number>/<timestamp>/ (the runs) and workers/ (one locked folder per process working
on the study: a trial whose worker's lock is free was left by a killed process).
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autoencoder import api, atomic, distribute, lock, memory, pipeline, precision, runs
from autoencoder.config import (
    Config,
    ObjectiveConfig,
    PrunerConfig,
    TuneConfig,
    dump_config,
    read_yaml,
)
from autoencoder.data import resolve_input_shape
from autoencoder.errors import RunFailed, UserError, named
from autoencoder.shapes import plan_model
from autoencoder.tuning.report import write_tables
from autoencoder.tuning.space import (
    CHECKPOINTS,
    Param,
    logs_row,
    metric_value,
    objective_value,
    parse_space,
)

log = logging.getLogger(__name__)

STUDY_FILE = "study.yaml"
# study.yaml's storage of a study that keeps its trials in its own folder's SQLite file.
OWN_DB = "study.db"
COMMAND = "autoencoder tune"
# What a study is for: a resumed or joined study must search the same thing.
SEARCH_KEYS = ("space", "objective", "epochs_per_trial")
# A trial stopped mid-training (Ctrl-C, a killed worker) is failed with RETRY set: it does not
# count toward the study's total, and the next start queues its settings again, as a trial
# whose RETRY_OF is its number (Optuna's finished trials cannot be changed).
RETRY, RETRY_OF = "retry", "retry_of"


@dataclass
class Setup:
    """A study's inputs, resolved and checked before anything is written."""

    base: Config  # the config every trial starts from (overrides applied)
    tune: TuneConfig
    params: list[Param]
    source: str  # the config as the user named it, for messages
    warmup_epochs: int = 0  # of a timed study's median pruner: the Reporter keeps to them
    splits: Any = None  # the base config's data (load_splits), for trials that do not change it
    chosen: precision.Choice | None = None  # every trial's precision (study_precision), or None

    @property
    def timed(self) -> bool:
        """Whether trials train for minutes (train.minutes), so the pruner compares by time."""
        searched = any(p.key == "train.minutes" for p in self.params)
        return searched or self.base.train.minutes is not None


def prepare(config, overrides=None, space=None) -> Setup:
    """Load the config and the space; UserError for every mistake, before TensorFlow or a file."""
    base = api.load_config(config, overrides)
    name = str(config) if isinstance(config, (str, Path)) else "config"
    tune, where = _tune_section(base, space, name)
    params = parse_space(tune, where, lambda key, value: api.load_config(base, {key: value}))
    _refuse_mixed_losses(tune, params, where)
    _warn_unused(base, params, where)
    _warn_impossible_shapes(base, params, where)
    return Setup(base, tune, params, name)


def _warn_impossible_shapes(base: Config, params: list, where: str) -> None:
    """Say so when a model value of the space plans no model with the config's other values."""
    # A warning, not a refusal: other keys of the space (strides, padding) may make it fit in
    # the trials that draw them together; with the config's values it is a failed trial.
    for param in params:
        if not param.key.startswith("model."):
            continue
        for value in param.values:
            try:
                api.plan(api.load_config(base, {param.key: value}))
            except UserError as exc:
                log.warning(
                    "%s: %s=%s plans no model with the config's other values (%s); the trials "
                    "that draw it with them fail: drop it, or search the keys that make it fit",
                    *(where, param.key, value, str(exc).splitlines()[0]),
                )
                break  # once a key


# Optimizer settings that only one optimizer reads.
READ_BY = {"train.optimizer.momentum": "sgd", "train.optimizer.weight_decay": "adamw"}


def _warn_unused(base: Config, params: list, where: str) -> None:
    """Say so when the space searches a setting no trial's optimizer reads."""
    keys = {p.key for p in params}
    if "train.optimizer.name" in keys:
        return
    for key, reader in READ_BY.items():
        if key in keys and base.train.optimizer.name != reader:
            log.warning(
                "%s: %s is read by %s only, and every trial trains with %s: its values change "
                "nothing (and its importance is noise); search train.optimizer.name too, or "
                "drop it",
                *(where, key, reader, base.train.optimizer.name),
            )


# Keys that change what a trial's loss measures (its kind, a VAE's KL term), not only its value.
LOSS_SCALE_KEYS = ("train.loss", "model.kind", "train.kl")


def _refuse_mixed_losses(tune: TuneConfig, params: list, where: str) -> None:
    """Refuse ranking trials by a loss that the space makes a different measure in each."""
    metric = tune.objective.metric
    mixed = [p.key for p in params if p.key.startswith(LOSS_SCALE_KEYS)]
    if metric.endswith("/loss") and mixed:
        raise UserError(
            f"{where}: objective {metric} while the space searches {mixed[0]}: each trial's "
            f"loss is then a different measure (BCE and MSE of one model differ fourfold), so "
            f"the trials cannot be ranked by it; set objective.metric to val/mse, val/psnr or "
            f"val/sse, which every trial measures alike"
        )


def _tune_section(base: Config, space, name: str) -> tuple[TuneConfig, str]:
    """(the tune section, the prefix of its messages): the --space file's, or the config's."""
    if space is None:
        return base.tune, f"{name}: tune.space"
    raw = space if isinstance(space, Mapping) else read_yaml(space, "space")
    where = "space" if isinstance(space, Mapping) else str(space)
    if isinstance(raw, Mapping) and raw and not set(raw) & set(TuneConfig.model_fields):
        raw = {"space": raw}  # the space itself, {"train.epochs": [...]}, not under space:
    try:
        loaded = api.load_config({"tune": dict(raw)})
    except UserError as exc:  # "config: tune.objective.direction: ..." as the space file's
        lines = [line.replace("config: tune.", f"{where}: ", 1) for line in str(exc).splitlines()]
        raise UserError("\n".join(lines)) from None
    return loaded.tune, where


def optuna_module():
    """optuna, or UserError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise UserError(
            "tune needs Optuna: pip install optuna (or, in this project's folder, "
            "`pip install '.[tune]'`)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what a trial did
    return optuna


# ---------------------------------------------------------------------------------------------
# The study folder


def new_study_dir(base: Config) -> Path:
    """<output>/<name>/tune-<timestamp>/, made atomically (a second in the same second: -1)."""
    parent = Path(base.output) / base.name
    stamp = time.strftime("tune-%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        folder = parent / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise UserError(f"output: {parent} already holds studies {stamp} to {stamp}-999; wait a second")


def study_record(setup: Setup, study_dir: Path, storage: str | None) -> dict:
    """What study.yaml holds: the study's name and storage, the config and the search."""
    config = yaml.safe_load(dump_config(setup.base))
    config.pop("tune", None)  # the search is kept apart: it may come from a --space file
    return {
        "study_name": study_dir.name,
        "storage": storage or OWN_DB,
        "config": config,
        "search": setup.tune.model_dump(mode="json", include=set(SEARCH_KEYS)),
    }


def resume_named(study_dir: Path) -> str:
    """The study folder as the reader gave it: --resume DIR, or resume='DIR'."""
    return named(f"--resume {study_dir}", f"resume='{study_dir}'")


def check_resume(study_dir: Path, record: dict) -> dict:
    """The saved record of STUDY_DIR; UserError if it is no study or one of another config."""
    path = Path(study_dir) / STUDY_FILE
    if not path.is_file():
        raise UserError(
            f"{resume_named(study_dir)}: not a study folder (no {STUDY_FILE}); pass a folder made by "
            f"`autoencoder tune`, e.g. outputs/<name>/tune-<timestamp>"
        )
    saved = read_yaml(path)
    # output only places a new study's folder; a resumed one is where it is.
    changed = sorted(
        runs.config_diff(Config(**saved["config"]), Config(**record["config"])) - {"output"}
    )
    changed += [f"tune.{k}" for k in SEARCH_KEYS if saved["search"].get(k) != record["search"][k]]
    if changed:
        shown = ", ".join(changed[:6]) + (" ..." if len(changed) > 6 else "")
        raise UserError(
            f"{resume_named(study_dir)}: the study was made for another config (it differs in "
            f"{shown}); resume with the config and space saved in {path}, or start a new study"
        )
    return saved


def storage_url(record: dict, study_dir: Path) -> str:
    """The record's database URL: the study's own study.db where STUDY_DIR now is, or the
    storage the user gave."""
    saved = record["storage"]
    if saved == OWN_DB or _former_own(saved, record["study_name"]):
        return own_url(study_dir)
    return saved


def own_url(study_dir: Path) -> str:
    """The URL of STUDY_DIR's own study.db, where the folder now is."""
    return f"sqlite:///{Path(study_dir).resolve() / OWN_DB}"


def _former_own(url: str, name: str) -> bool:
    """Whether a URL is a study's own study.db as saved before: absolute, where it was made."""
    # A folder copied or moved since still names the old place; its own file is beside it.
    path = sqlite_file(url)
    return path is not None and path.parts[-2:] == (name, OWN_DB)


def sqlite_file(url: str) -> Path | None:
    """The file of a sqlite:/// URL (relative ones to the working folder), else None."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?")[0]
    return Path(path) if path else None


def open_study(
    record: dict, study_dir: Path, pruner, epochs: int, timed: bool = False, url=None, resumed=False
):
    """The Optuna study of the record (created on first use), with this process's pruner.

    url: the storage to use (default the record's); resumed: the study must already be in it.
    """
    optuna = optuna_module()
    url = url or storage_url(record, study_dir)
    own = url == own_url(study_dir)
    where = resume_named(study_dir) if own else f"storage {url}"
    afresh = f"start a new study without {named('--resume', 'resume=')}"
    path = Path(study_dir) / OWN_DB if own else sqlite_file(url)  # as the user named the folder
    # SQLite would make an empty database in place of a missing one: a study starting over.
    if resumed and path is not None and not path.is_file():
        raise UserError(
            f"{where}: {path} is missing (it holds the study's trials); put it back from a "
            f"copy, or {afresh}"
        )
    # SQLite lets one writer in at a time: the others wait (up to a minute) instead of failing.
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    objective = record["search"]["objective"]
    # Studies saved before the direction could be left out hold it; newer ones may hold null.
    direction = objective.get("direction") or ObjectiveConfig(**objective).goal()
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        if resumed and record["study_name"] not in optuna.get_all_study_names(storage):
            raise UserError(
                f"{where}: the storage holds no study {record['study_name']}; give the storage "
                f"it was made in ({named('--storage', 'storage=')}), or {afresh}"
            )
        return optuna.create_study(
            storage=storage,
            study_name=record["study_name"],
            direction=direction,
            pruner=make_pruner(pruner, epochs, timed),
            load_if_exists=True,
        )
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy's many errors: a bad URL, a missing driver, no server
        reason = _first_line(exc)
        if own:
            raise UserError(
                f"{where}: {path} cannot be read ({reason}); put back a good copy of it, or "
                f"{afresh}"
            ) from None
        raise UserError(
            f"storage {url}: {type(exc).__name__}: {reason}; give {named('--storage', 'storage=')}"
            f" (or tune.storage) "
            f"a URL Optuna accepts, of a database that can be reached"
        ) from None


def _first_line(exc: Exception) -> str:
    """An error's first line without SQLAlchemy's "(sqlite3.DatabaseError) " before it."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    return re.sub(r"^\([\w.]+\) ", "", lines[0])


def make_pruner(pruner, epochs: int, timed: bool = False):
    """Optuna's pruner of a tune.pruner setting (a name or {median: ...}), or a pruner object.

    Timed (trials with train.minutes): Optuna's steps are the CHECKPOINTS fractions of a
    trial's minutes, and the Reporter, not Optuna, keeps the median pruner's warm-up epochs.
    """
    optuna = optuna_module()
    if not isinstance(pruner, optuna.pruners.BasePruner):
        pruner = pruner_setting(pruner)
    if isinstance(pruner, PrunerConfig):
        median = pruner.median
        # Optuna's steps are our epochs counted from 1, and it may prune at step n_warmup_steps.
        return optuna.pruners.MedianPruner(
            n_startup_trials=median.startup_trials,
            n_warmup_steps=0 if timed else median.warmup_epochs + 1,
        )
    if pruner == "hyperband":
        steps = CHECKPOINTS if timed else max(epochs, 1)
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    return pruner


def warmup_epochs(pruner) -> int:
    """The median pruner's warm-up epochs of a tune.pruner setting; 0 for any other pruner."""
    if isinstance(pruner, (str, Mapping, PrunerConfig)):
        setting = pruner_setting(pruner)
        if isinstance(setting, PrunerConfig):
            return setting.median.warmup_epochs
    return 0


def pruner_setting(pruner) -> PrunerConfig | str:
    """A tune.pruner value checked by the config; "median" as the median pruner's defaults."""
    try:
        pruner = api.load_config({"tune": {"pruner": pruner}}).tune.pruner
    except UserError as exc:  # "config: tune.pruner: ..." as this argument's "pruner: ..."
        lines = [line.replace("config: tune.", "", 1) for line in str(exc).splitlines()]
        raise UserError("\n".join(lines)) from None
    return PrunerConfig() if pruner == "median" else pruner


# ---------------------------------------------------------------------------------------------
# Workers


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@contextmanager
def working(study_dir: Path):
    """Hold this process's folder under workers/ while it works: its lock says it is alive."""
    folder = study_dir / "workers" / worker_name()
    folder.mkdir(parents=True, exist_ok=True)
    with lock.hold(folder, COMMAND):
        yield folder.name


@contextmanager
def asking(study_dir: Path):
    """One worker at a time between counting the trials and starting the next one."""
    while True:
        try:
            lock.acquire(study_dir, COMMAND)
            break
        except UserError:  # another worker is asking: a few milliseconds
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.release(study_dir)


def fail_stale(study, study_dir: Path, setup: Setup) -> list[int]:
    """End the RUNNING trials whose worker died (its lock is free): by their history when their
    training had finished, else failed, to be tried again; their numbers."""
    optuna = optuna_module()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        folder = study_dir / "workers" / str(worker)
        if worker is None or not folder.is_dir() or lock.holder(folder) is not None:
            continue  # alive, or of a worker elsewhere whose folder is not this one
        outcome = _trained_outcome(study_dir, trial.number, setup, f"its worker {worker} stopped")
        if outcome is None:
            set_attr(study, trial.number, RETRY, True)
            outcome = (optuna.trial.TrialState.FAIL, None, f"its worker {worker} stopped mid-trial")
        _finish(study, trial.number, study_dir, *outcome)
        stale.append(trial.number)
    return stale


def retry_stopped(study) -> dict[int, int]:
    """Queue again the settings of each trial stopped mid-training (Ctrl-C, a killed worker)
    not queued before: {its number: the number of the trial that tries them again}."""
    optuna = optuna_module()
    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    again = {}
    for trial in trials:
        stopped = trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs.get(RETRY)
        if stopped and trial.number not in queued:
            study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
            again[trial.number] = study.get_trials(deepcopy=False)[-1].number
    return again


def counted(study) -> int:
    """The study's trials toward its total: those stopped mid-training count as their retry."""
    return sum(not t.user_attrs.get(RETRY) for t in study.get_trials(deepcopy=False))


def set_attr(study, number: int, key: str, value: Any) -> None:
    """A user attribute of a trial given by number (one another process started)."""
    storage = study._storage  # noqa: SLF001 - Optuna's Study has no public way to it
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)  # noqa: SLF001
    storage.set_trial_user_attr(trial_id, key, value)


# ---------------------------------------------------------------------------------------------
# The study's loop: Optuna asks, a run trains, Optuna is told


def work(
    study, setup: Setup, study_dir: Path, trials: int, timeout: float | None, storage: str
) -> bool:
    """Run trials until the study holds `trials` of them (all workers together) or time is up;
    True when time ran out first."""
    deadline = math.inf if timeout is None else time.time() + timeout
    distributions = to_distributions(setup.params)
    with working(study_dir) as me:
        while True:
            with asking(study_dir):
                if counted(study) >= trials:
                    return False
                if time.time() >= deadline:
                    return True
                number = len(study.get_trials(deepcopy=False))
                study.sampler = seeded_sampler(setup.base.seed, number)
                trial = study.ask(distributions)
                trial.set_user_attr("worker", me)
            run_trial(study, trial, setup, study_dir)
            write_tables(study, study_dir, setup, storage)


def seeded_sampler(seed: int, number: int):
    """Optuna's TPE sampler for trial `number`, seeded from the config's seed and that number."""
    # Seeded per trial number, not once per process: workers (each asking for its own trial
    # number) never draw alike, and a resumed study does not draw its first trials again.
    import numpy as np

    state = np.random.SeedSequence([seed, number]).generate_state(1)[0]
    return optuna_module().samplers.TPESampler(seed=int(state))


def to_distributions(params: list[Param]) -> dict:
    """Optuna's distributions of the space's params."""
    optuna = optuna_module()
    out = {}
    for p in params:
        if p.kind == "choice":
            out[p.key] = optuna.distributions.CategoricalDistribution(p.values)
        elif p.kind == "int":
            out[p.key] = optuna.distributions.IntDistribution(*p.values)
        else:
            out[p.key] = optuna.distributions.FloatDistribution(*p.values, log=p.kind == "log")
    return out


def trial_config(setup: Setup, study_dir: Path, trial) -> Config:
    """The base config with the trial's values, named trial-<number>, under STUDY_DIR/trials."""
    epochs = setup.tune.epochs_per_trial
    values = {
        **({"train.epochs": epochs} if epochs else {}),
        **trial.params,  # numbers, words, true/false or null: a space has no mapping choices
        "name": f"trial-{trial.number}",
        "output": str(study_dir / "trials"),
    }
    return api.load_config(setup.base, values)


def shared_splits(setup: Setup, config: Config):
    """The study's loaded data when the trial's data section and seed are the base's, else None.

    The splits are a function of those two alone; a trial that searches a data key or the seed
    loads its own (a folder is decoded anew).
    """
    same = config.data == setup.base.data and config.seed == setup.base.seed
    return setup.splits if same else None


def study_precision(setup: Setup) -> precision.Choice | None:
    """The precision of every trial, chosen once on the base config; None where each trial
    chooses its own (the space searches train.mixed_precision, or trials span machines)."""
    # Trials compared in one precision: a timing per trial could pick float32 for one and
    # bfloat16 for the next on a busy machine, and its seconds would count against the trial.
    if any(p.key == "train.mixed_precision" for p in setup.params):
        return None
    if distribute.role(setup.base.train.distribute).workers > 1:
        return None
    return pipeline.choose_precision(setup.base, setup.splits)


class Infeasible(UserError):
    """A trial whose memory plan does not fit: skipped before it starts."""


def check_feasible(config: Config) -> Config:
    """The config with its input shape; Infeasible when its memory plan does not fit."""
    config = resolve_input_shape(config)
    plan = plan_model(config.model)  # an impossible shape is a UserError: a failed trial
    try:
        memory.check_lightest(config, plan)
    except UserError as exc:
        raise Infeasible(str(exc)) from None
    return config


def run_trial(study, trial, setup: Setup, study_dir: Path) -> None:
    """Train one trial and tell Optuna how it ended: complete, pruned or failed (with why)."""
    optuna = optuna_module()
    state, value, reason = optuna.trial.TrialState.FAIL, None, None
    reporter = None
    log.info("trial %d: %s", trial.number, _shown(trial.params))
    try:
        config = check_feasible(trial_config(setup, study_dir, trial))
        reporter = Reporter(study, trial, setup.tune.objective, _pixels(config))
        if config.train.minutes is not None:
            reporter.time(60.0 * config.train.minutes, setup.warmup_epochs)
        from autoencoder.callbacks import EpochEnd

        trained = pipeline.train(
            config,
            command=COMMAND,
            splits=shared_splits(setup, config),
            chosen=setup.chosen,
            callbacks=[EpochEnd(reporter.epoch_end)],
        )
        state, value, reason = _outcome(trained.run_dir, config, setup, reporter.reason)
    except Infeasible as exc:
        reason = f"infeasible: {exc}"
        trial.set_user_attr("infeasible", True)
    except (UserError, RunFailed) as exc:
        reason = str(exc).splitlines()[0]
    except KeyboardInterrupt:
        _interrupted(study, trial, setup, study_dir, reporter)
        raise KeyboardInterrupt(f"during trial {trial.number}") from None
    finally:
        _clear_keras()
    _finish(study, trial.number, study_dir, state, value, reason)


def _outcome(run_dir: Path, config: Config, setup: Setup, pruned: str | None) -> tuple:
    """(state, objective value, reason) of a trial whose training ended."""
    optuna = optuna_module()
    if pruned:
        return optuna.trial.TrialState.PRUNED, None, pruned
    history = runs.read_history(run_dir)
    value = objective_value(history, setup.tune.objective, _pixels(config))
    if value is None or math.isnan(value):
        reason = f"no {setup.tune.objective.metric} in the run's history.csv"
        return optuna.trial.TrialState.FAIL, None, reason
    return optuna.trial.TrialState.COMPLETE, value, None


def _trained_outcome(
    study_dir: Path, number: int, setup: Setup, stopped: str, pruned: str | None = None
) -> tuple | None:
    """The outcome of a trial stopped after its training had finished (only its test figures
    were cut short), by its own history; None when its training had not finished."""
    run_dir = trial_run_dir(study_dir, number)
    if run_dir is None or runs.status(run_dir) != "finished":
        return None
    state, value, reason = _outcome(run_dir, runs.load_run_config(run_dir), setup, pruned)
    if reason is None and not (run_dir / "metrics.json").is_file():
        reason = f"{stopped} after training; test metrics: `autoencoder evaluate {run_dir}`"
    return state, value, reason


def _interrupted(study, trial, setup: Setup, study_dir: Path, reporter) -> None:
    """Tell Optuna how a trial stopped by Ctrl-C ended: by its outcome when its training had
    finished, else failed, to be tried again."""
    optuna = optuna_module()
    pruned = reporter.reason if reporter is not None else None
    outcome = _trained_outcome(study_dir, trial.number, setup, "interrupted", pruned)
    if outcome is None:
        trial.set_user_attr(RETRY, True)
        outcome = (optuna.trial.TrialState.FAIL, None, "interrupted")
    _finish(study, trial.number, study_dir, *outcome)


def _finish(study, number: int, study_dir: Path, state, value, reason) -> None:
    run_dir = trial_run_dir(study_dir, number)
    if run_dir is not None:
        set_attr(study, number, "run_dir", str(run_dir.relative_to(study_dir)))
        trained = _training_minutes(run_dir)
        if trained is not None:
            set_attr(study, number, "train_minutes", trained)
    if reason:
        set_attr(study, number, "reason", reason)
    study.tell(number, value if state.name == "COMPLETE" else None, state=state)
    # The states as trials.csv and results.md name them: "failed", not Optuna's "fail".
    words = ["failed" if state.name == "FAIL" else state.name.lower()]
    words += [f"{value:.6g}"] if value is not None else []
    words += [f"({reason})"] if reason else []
    log.info("trial %d: %s", number, " ".join(words))


def _training_minutes(run_dir: Path) -> float | None:
    """The trial's completed epochs' minutes, as train.minutes counts them; None before one."""
    state = runs.read_state(run_dir)
    if not state or not state.get("epoch"):
        return None
    return runs.training_seconds(runs.read_history(run_dir)[: state["epoch"]]) / 60


def trial_run_dir(study_dir: Path, number: int) -> Path | None:
    """The run directory of a trial (the latest, should a trial have several), or None."""
    found = runs.find_runs(study_dir / "trials" / f"trial-{number}")
    return found[-1] if found else None


def _shown(params: dict) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _pixels(config: Config) -> int:
    return math.prod(config.model.input_shape)


def _clear_keras() -> None:
    # Each trial builds new models in this process: free the last one's graph and weights.
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


class Reporter:
    """After each epoch: the objective to Optuna; stops training when the pruner says so.

    By epoch, Optuna's step n is epoch n. Timed (`time`), step k is k/CHECKPOINTS of the
    trial's minutes, reported with the value the trial had shown by then (its last epoch that
    ended by that time): trials of one budget are compared at equal minutes, however long
    their epochs are.
    """

    def __init__(self, study, trial, objective, pixels: int):
        self.study, self.trial, self.objective, self.pixels = study, trial, objective, pixels
        self.reported: list[float] = []  # what Optuna's pruner judges
        self.reason: str | None = None
        self.budget: float | None = None  # seconds, when timed
        self.warmup = 0
        self.ended: list[tuple[float, float]] = []  # (seconds, value) at each epoch's end
        self.step = 0  # the last step reported

    def time(self, budget: float, warmup_epochs: int = 0) -> None:
        """Report by fractions of `budget` seconds; never prune in the first warm-up epochs."""
        self.budget, self.warmup = budget, warmup_epochs

    def epoch_end(self, epoch: int, logs: dict, seconds: float, final: bool = False) -> bool:
        """Report the epoch's objective; True when the pruner says to stop. Never after the
        final epoch: a trial that trained its epochs or minutes is complete, not pruned."""
        value = metric_value(logs_row(logs), self.objective.metric, self.pixels)
        if value is None or not math.isfinite(value):
            return False  # the trainer stops a diverged run itself, with its own message
        if self.budget is None:
            steps = {epoch + 1: value}
        else:
            self.ended.append((seconds, value))
            steps = self._passed(seconds)
        for step, shown in steps.items():
            self.trial.report(shown, step)
            self.reported.append(shown)
        if final or not steps or epoch + 1 <= self.warmup or not self.trial.should_prune():
            return False
        self.step = max(steps)
        self.reason = prune_reason(
            self.study, self.step, self.best(), self.objective, self._when(epoch + 1)
        )
        return True

    def _passed(self, seconds: float) -> dict[int, float]:
        """The checkpoints reached since the last report, each with the value known then."""
        steps = {}
        while self.step < CHECKPOINTS and (self.step + 1) * self.budget / CHECKPOINTS <= seconds:
            self.step += 1
            at = self.step * self.budget / CHECKPOINTS
            known = [value for ended, value in self.ended if ended <= at]
            if known:  # none before the first epoch ends
                steps[self.step] = known[-1]
        return steps

    def _when(self, epoch: int) -> str:
        if self.budget is None:
            return f"epoch {epoch}"
        share = 100 * self.step / CHECKPOINTS
        at = self.step * self.budget / CHECKPOINTS
        # An epoch that ended just after the checkpoint is not what the pruner judged there.
        judged = sum(1 for ended, _ in self.ended if ended <= at)
        shown = (
            f"epoch {epoch}"
            if judged == epoch
            else f"epoch {judged}'s value; stopped after epoch {epoch}"
        )
        return f"{share:.0f}% of its {self.budget / 60:.3g} minutes ({shown})"

    def best(self) -> float:
        pick = min if self.objective.goal() == "minimize" else max
        return pick(self.reported)


def prune_reason(study, step: int, value: float, objective, when: str | None = None) -> str:
    """ "pruned at epoch 2: val/loss 0.08 above the median 0.05" (the median pruner's rule).

    `when` names Optuna's step for the reader ("epoch 2" by default).
    """
    optuna = optuna_module()
    when = when or f"epoch {step}"
    name = type(study.pruner).__name__
    if not isinstance(study.pruner, optuna.pruners.MedianPruner):
        return f"pruned at {when} by {name}: {objective.metric} {value:.4g}"
    # The median is of completed trials only, as the pruner takes it.
    others = [
        t.intermediate_values[step]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if step in t.intermediate_values
    ]
    if not others:
        return f"pruned at {when}: {objective.metric} {value:.4g}"
    import numpy as np

    side = "above" if objective.goal() == "minimize" else "below"
    median = float(np.median(others))
    return f"pruned at {when}: {objective.metric} {value:.4g} {side} the median {median:.4g}"


def write_record(study_dir: Path, record: dict) -> None:
    atomic.write_text(study_dir / STUDY_FILE, yaml.safe_dump(record, sort_keys=False))
