"""`autoencoder tune`: a search over config keys with Optuna; each trial an ordinary run.

space.py reads and checks the search space (no Optuna, no TensorFlow), study.py keeps the study
folder and runs the trials, report.py writes trials.csv, best.yaml, results.md and figures/.
docs/experiments.md is the guide.
"""

from __future__ import annotations

import logging
import numbers
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoencoder import api
from autoencoder.data import load_splits
from autoencoder.errors import UserError, named, python_api
from autoencoder.tuning import study as _study
from autoencoder.tuning.report import (
    format_study,
    pruner_text,
    ranked,
    write_figures,
    write_tables,
)
from autoencoder.tuning.space import parse_timeout

log = logging.getLogger(__name__)

__all__ = ["Tuned", "format_study", "tune"]


@dataclass
class Tuned:
    """A study's folder, its best trial (an Optuna FrozenTrial, None before one completes) and
    the Optuna study itself."""

    path: Path
    best: Any
    study: Any
    metric: str

    @property
    def best_run(self):
        """The best trial's Run (api.Run), or None before a trial completes."""
        if self.best is None or "run_dir" not in self.best.user_attrs:
            return None
        return api.Run(self.path / self.best.user_attrs["run_dir"])


def _again(setup, space, overrides, study_dir: Path) -> str:
    """The command that goes on with a study: its config, space and --set overrides."""
    import shlex

    words = ["autoencoder", "tune", setup.source]
    if isinstance(space, (str, Path)):
        words += ["--space", str(space)]
    if overrides and not isinstance(overrides, Mapping):
        words += [word for item in overrides for word in ("--set", item)]
    # The API's caller goes on with the call they made (its config, space and overrides).
    return named(
        shlex.join([*words, "--resume", str(study_dir)]),
        f"ae.tune(the same config, space and overrides, resume={str(study_dir)!r})",
    )


def _check_trials(trials: Any) -> None:
    """None, or a whole number of trials, 1 or more (0 would read as "the default")."""
    whole = isinstance(trials, numbers.Integral) and not isinstance(trials, bool)
    if trials is not None and not (whole and trials >= 1):
        raise UserError(
            f"trials={trials!r}: pass a whole number of trials, 1 or more, or None for tune.trials"
        )


def _kept(exc: KeyboardInterrupt, again: str) -> KeyboardInterrupt:
    """Ctrl-C's message ("during trial 3") with the command that goes on with the study."""
    said = f"{exc}; " if str(exc) else ""
    return KeyboardInterrupt(f"{said}the study is kept: go on with `{again}`")


@python_api
def tune(
    config,
    space=None,
    overrides=None,
    *,
    trials: int | None = None,
    timeout: str | None = None,
    resume: str | Path | None = None,
    pruner=None,
    storage: str | None = None,
) -> Tuned:
    """Search the space with Optuna: each trial trains a run under STUDY_DIR/trials/.

    Args:
      config: a YAML file, a mapping or a Config (as ae.load_config), with overrides.
      space: a YAML file or a mapping shaped like the config's tune section; None: the config's.
      trials: the study's total number of trials (every worker's, every state); default
        tune.trials.
      timeout: stop starting trials after this long ("90s", "60m", "2h").
      resume: an earlier study folder of the same config and space: go on with it, or join it
        from another process.
      pruner: median, hyperband, none, {"median": {"startup_trials": N, "warmup_epochs": N}}
        or an Optuna pruner object; default tune.pruner.
      storage: a database URL Optuna accepts; default STUDY_DIR/study.db, found where the
        folder is when it is resumed (a study folder can be moved or copied).
    Raises:
      UserError: every mistake of the config or the space, and data that cannot be found, one
        line each, before anything is written; a resumed folder that is no study, or one of
        another config.
    """
    _check_trials(trials)
    setup = _study.prepare(config, overrides, space)
    given_trials, trials = trials, trials or setup.tune.trials
    seconds = parse_timeout(timeout or setup.tune.timeout)
    pruner = pruner or setup.tune.pruner
    if pruner == "median" and not isinstance(setup.tune.pruner, str):
        pruner = setup.tune.pruner  # --pruner median keeps the section's startup and warm-up
    epochs = setup.tune.epochs_per_trial or setup.base.train.epochs
    setup.warmup_epochs = _study.warmup_epochs(pruner)
    pruner = _study.make_pruner(pruner, epochs, setup.timed)  # a bad one, or no Optuna: now
    storage = storage or setup.tune.storage
    # Before the study's folder is made: data that cannot be found would fail every trial alike.
    # Trials that leave the data and the seed alone train on these splits, not a reload.
    setup.splits = load_splits(setup.base)
    if resume is not None:
        study_dir = Path(resume)
        record = _study.check_resume(study_dir, _study.study_record(setup, study_dir, storage))
        # The study's own total, unless --trials gives a new one (kept for the next resume).
        if given_trials is None and record.get("trials"):
            trials = record["trials"]
    else:
        study_dir = _study.new_study_dir(setup.base)
        record = {**_study.study_record(setup, study_dir, storage), "trials": trials}
        _study.write_record(study_dir, record)
    url = storage or _study.storage_url(record, study_dir)
    try:
        study = _study.open_study(
            record, study_dir, pruner, epochs, setup.timed, url=url, resumed=resume is not None
        )
        # After the resume checks and the storage, which refuse before TensorFlow loads.
        setup.chosen = _study.study_precision(setup)
    except UserError:
        if resume is None:  # a storage that cannot be opened: no study folder left behind
            shutil.rmtree(study_dir, ignore_errors=True)
        raise
    except KeyboardInterrupt as exc:  # choosing the precision may take a while
        raise _kept(exc, _again(setup, space, overrides, study_dir)) from None
    if resume is not None and given_trials is not None and record.get("trials") != given_trials:
        # Only now, after every check: a refused resume leaves study.yaml as it was.
        record["trials"] = given_trials
        _study.write_record(study_dir, record)
    with _study.asking(study_dir):
        stale = _study.fail_stale(study, study_dir, setup)
        queued = _study.retry_stopped(study)
    if stale:
        log.info("ended: trial(s) %s, left running by a stopped worker", stale)
    for stopped, again in queued.items():
        log.info(
            "trial %d stopped mid-training: its settings are tried again as trial %d",
            stopped,
            again,
        )
    log.info(
        "study: %s (%d of %d trials), pruner %s",
        study_dir,
        _study.counted(study),
        trials,
        pruner_text(study.pruner, setup),
    )
    try:
        timed_out = _study.work(study, setup, study_dir, trials, seconds, url)
    except KeyboardInterrupt as exc:
        raise _kept(exc, _again(setup, space, overrides, study_dir)) from None
    if timed_out:
        log.warning(
            "timeout %s: no trial is started after it; %d of %d trials; go on with `%s`",
            *(timeout or setup.tune.timeout, _study.counted(study), trials),
            _again(setup, space, overrides, study_dir),
        )
    try:
        write_figures(study, study_dir, setup)
        write_tables(study, study_dir, setup, url)
    except KeyboardInterrupt as exc:  # going on with a study of all its trials writes them again
        raise _kept(exc, _again(setup, space, overrides, study_dir)) from None
    best = ranked(study)
    return Tuned(study_dir, best[0] if best else None, study, setup.tune.objective.metric)
