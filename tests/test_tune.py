"""`autoencoder tune`: the space's refusals, a tiny study end to end, seeded trials, the median
pruner's settings, resume after SIGKILL, two workers on one study."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT, assert_error, cli, cli_without_tensorflow, tiny, write_config

from autoencoder import runs
from autoencoder.config import load_config
from autoencoder.data import load_splits
from autoencoder.errors import UserError
from autoencoder.tuning import report as tune_report
from autoencoder.tuning import space as tune_space
from autoencoder.tuning import study as tune_study
from autoencoder.tuning.study import RETRY_OF

optuna = pytest.importorskip("optuna")

BAD_SPACE = """\
space:
  train.optimizer.lerning_rate: {log: [1e-4, 1e-2]}
  train.optimizer.momentum: {uniform: [0.9, 0.1]}
  train.schedule.min_lr: {log: [0, 1e-2]}
  train.loss: [bce, xx]
  model.latent_dim: []
  seed: {normal: [1, 2]}
  model.encoder.0.filters: {log: [4, 16]}
"""


def write_space(path, space, **more):
    path.write_text(yaml.safe_dump({"space": space, **more}))
    return path


def test_every_mistake_of_a_space_is_one_line_before_tensorflow(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    space = tmp_path / "bad.yaml"
    space.write_text(BAD_SPACE)
    result, loaded = cli_without_tensorflow("tune", config, "--space", space)
    assert result.returncode == 2 and not loaded
    assert result.stderr.splitlines() == [
        f"error: {space}: train.optimizer.lerning_rate: unknown key; did you mean 'learning_rate'?",
        f"error: {space}: train.optimizer.momentum: {{uniform: [0.9, 0.1]}}: the low bound must be "
        f"below the high one; write [low, high]",
        f"error: {space}: train.schedule.min_lr: {{log: [0, 0.01]}}: a log range must be above 0; "
        f"use uniform to include 0",
        f"error: {space}: train.loss: must be 'bce', 'mse', 'mae', 'l1', 'charbonnier' or 'ssim_l1', got 'xx'",
        f"error: {space}: model.latent_dim: the list of choices is empty; give at least one value",
        f"error: {space}: seed: {{normal: [1, 2]}} is not a distribution; write {{log: [a, b]}}, "
        f"{{uniform: [a, b]}}, {{int: [a, b]}} or a list of choices",
        f"error: {space}: model.encoder[0].filters: must be an integer, got 4.0; a whole-number "
        f"key is searched by {{int: [4, 16]}}",
    ]
    assert not (tmp_path / "out").exists()


def test_data_that_cannot_be_found_stops_the_study_before_its_folder_is_made(tmp_path):
    empty = tmp_path / "images"
    empty.mkdir()
    config = tiny(tmp_path / "out", "data.dataset=folder", f"data.path={empty}")
    config = write_config(tmp_path / "tiny.yaml", config)
    space = tmp_path / "space.yaml"
    space.write_text("space:\n  train.optimizer.learning_rate: {log: [0.001, 0.01]}\n")
    result, loaded = cli_without_tensorflow("tune", config, "--space", space)
    assert result.returncode == 2 and not loaded
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: data.path {empty}: ")
    assert not (tmp_path / "out").exists()  # not a study whose every trial failed alike


def test_an_empty_space_is_refused(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    result, loaded = cli_without_tensorflow("tune", config)
    assert not loaded
    assert_error(
        result,
        f"{config}: tune.space: the space is empty; name config keys with a distribution, e.g. "
        f"train.optimizer.learning_rate: {{log: [1e-4, 1e-2]}}, under the config's tune.space or "
        f"in a file given with --space SPACE.yaml",
    )
    assert not (tmp_path / "out").exists()


def test_help_answers_without_tensorflow():
    result, loaded = cli_without_tensorflow("tune", "--help")
    assert result.returncode == 0 and not loaded
    assert "--resume STUDY_DIR" in result.stdout


def test_resuming_the_study_of_another_config_is_refused(tmp_path):
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]})
    setup = tune_study.prepare(tiny(tmp_path / "out"), space=space)
    study_dir = tune_study.new_study_dir(setup.base)
    tune_study.write_record(study_dir, tune_study.study_record(setup, study_dir, None))
    other = write_config(tmp_path / "other.yaml", tiny(tmp_path / "out", "train.batch_size=16"))
    result, loaded = cli_without_tensorflow("tune", other, "--space", space, "--resume", study_dir)
    assert not loaded
    assert_error(
        result,
        f"--resume {study_dir}: the study was made for another config (it differs in "
        f"train.batch_size); resume with the config and space saved in {study_dir}/study.yaml, "
        f"or start a new study",
    )


def trials_in(db, name):
    """The number of trials of study `name` in the SQLite file `db`."""
    return len(optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials())


def test_a_moved_or_copied_study_keeps_its_trials_in_its_own_database(tmp_path):
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]})
    setup = tune_study.prepare(tiny(tmp_path / "out"), space=space)
    study_dir = tune_study.new_study_dir(setup.base)
    record = tune_study.study_record(setup, study_dir, None)
    assert record["storage"] == "study.db"
    tune_study.write_record(study_dir, record)
    study = tune_study.open_study(record, study_dir, "none", 1)
    study.tell(study.ask(), 0.5)
    name = study_dir.name
    copied = tmp_path / "copied"
    shutil.copytree(study_dir, copied)
    again = tune_study.open_study(record, copied, "none", 1, resumed=True)
    again.tell(again.ask(), 0.25)
    assert (trials_in(copied / "study.db", name), trials_in(study_dir / "study.db", name)) == (2, 1)
    # As studies saved before held it: the absolute URL of the folder they were made in.
    former = {**record, "storage": f"sqlite:///{study_dir.resolve() / 'study.db'}"}
    moved = tmp_path / "moved"
    shutil.move(study_dir, moved)
    again = tune_study.open_study(former, moved, "none", 1, resumed=True)
    again.tell(again.ask(), 0.25)
    assert trials_in(moved / "study.db", name) == 2
    # A storage the user gave is used as given, wherever the folder is.
    given = f"sqlite:///{tmp_path / 'shared.db'}"
    assert tune_study.storage_url({**record, "storage": given}, moved) == given


def test_a_resume_whose_database_is_missing_or_damaged_is_refused_and_changes_nothing(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]})
    setup = tune_study.prepare(config, space=space)
    study_dir = tune_study.new_study_dir(setup.base)
    record = {**tune_study.study_record(setup, study_dir, None), "trials": 2}
    tune_study.write_record(study_dir, record)
    saved = (study_dir / "study.yaml").read_text()
    resume = ("tune", config, "--space", space, "--trials", "5", "--resume", study_dir)
    result, loaded = cli_without_tensorflow(*resume)
    assert not loaded
    assert_error(
        result,
        f"--resume {study_dir}: {study_dir}/study.db is missing (it holds the study's trials); "
        f"put it back from a copy, or start a new study without --resume",
    )
    (study_dir / "study.db").write_text("not a database\n")
    result, _ = cli_without_tensorflow(*resume)
    assert_error(
        result,
        f"--resume {study_dir}: {study_dir}/study.db cannot be read (file is not a database); "
        f"put back a good copy of it, or start a new study without --resume",
    )
    assert (study_dir / "study.yaml").read_text() == saved
    assert sorted(p.name for p in study_dir.iterdir()) == ["study.db", "study.yaml"]


def test_ctrl_c_while_a_study_writes_its_figures_says_how_to_go_on(tmp_path, monkeypatch):
    from autoencoder import tuning

    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]}, pruner="none")
    setup = tune_study.prepare(config, space=space)
    study_dir = tune_study.new_study_dir(setup.base)
    record = {**tune_study.study_record(setup, study_dir, None), "trials": 1}
    tune_study.write_record(study_dir, record)
    study = tune_study.open_study(record, study_dir, "none", 1)
    study.tell(study.ask(), 0.5)  # the study's one trial: going on only writes its results

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "write_figures", stopped)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        tuning.tune(config, space, resume=study_dir)
    # Called from Python: the call to make again, not the command.
    assert str(interrupted.value) == (
        f"the study is kept: go on with `ae.tune(the same config, space and overrides, "
        f"resume='{study_dir}')`"
    )


def test_the_objective_derives_psnr_and_the_per_image_error_from_mse():
    row = {"val/loss": 0.2, "val/mse": 0.01}
    assert tune_space.metric_value(row, "val/psnr", 784) == pytest.approx(20.0)
    assert tune_space.metric_value(row, "val/sse", 784) == pytest.approx(7.84)
    assert tune_space.logs_row({"val_loss": 0.5, "mse": 0.1}) == {
        "val/loss": 0.5,
        "train/mse": 0.1,
    }


def test_a_plan_too_big_for_memory_is_infeasible_before_it_starts(tmp_path):
    with pytest.raises(tune_study.Infeasible, match="^train: the run needs about"):
        tune_study.check_feasible(tiny(tmp_path, "train.batch_size=100000000"))


def test_the_median_pruners_reason_names_the_median():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
    for value in (0.04, 0.05, 0.06):
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    pruned = study.ask()  # not in the median: the pruner compares with completed trials only
    pruned.report(0.01, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    objective = load_config(None).tune.objective
    assert tune_study.prune_reason(study, 1, 0.08, objective) == (
        "pruned at epoch 1: val/loss 0.08 above the median 0.05"
    )


def test_the_median_pruner_takes_its_startup_trials_and_warmup_epochs(tmp_path):
    median = {"median": {"startup_trials": 2, "warmup_epochs": 1}}
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]}, pruner=median)
    setup = tune_study.prepare(tiny(tmp_path / "out"), space=space)
    study_dir = tune_study.new_study_dir(setup.base)
    record = tune_study.study_record(setup, study_dir, None)
    pruner = tune_study.open_study(record, study_dir, setup.tune.pruner, 3).pruner
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    # Optuna counts steps (our epochs) from 1 and may prune at step n_warmup_steps: after one
    # warm-up epoch, from epoch 2.
    assert (pruner._n_startup_trials, pruner._n_warmup_steps) == (2, 2)
    assert tune_report.pruner_text(pruner) == (
        "median (prunes once 2 trials completed, from a trial's epoch 2 on)"
    )
    plain = tune_study.make_pruner("median", 3)
    assert (plain._n_startup_trials, plain._n_warmup_steps) == (5, 1)
    assert tune_report.pruner_text(plain) == "median (prunes once 5 trials completed)"


def test_a_bad_pruner_is_refused_in_one_line(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    bad = {"median": {"startup_trials": -1}}
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]}, pruner=bad)
    result, loaded = cli_without_tensorflow("tune", config, "--space", space)
    assert not loaded
    assert_error(
        result, f"{space}: pruner.median.startup_trials: must be greater than or equal to 0, got -1"
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match=r"^pruner\.median\.warmup: unknown key; did you mean "):
        tune_study.make_pruner({"median": {"warmup": 1}}, 3)
    with pytest.raises(UserError, match=r"^pruner: must be median, hyperband or none, or \{"):
        tune_study.make_pruner(3, 3)


def test_a_trial_s_end_is_logged_with_the_state_trials_csv_names(tmp_path, caplog):
    caplog.set_level("INFO", logger="autoencoder")
    study = optuna.create_study()
    failed, complete = study.ask().number, study.ask().number
    state = optuna.trial.TrialState
    tune_study._finish(study, failed, tmp_path, state.FAIL, None, "interrupted")
    tune_study._finish(study, complete, tmp_path, state.COMPLETE, 0.125, None)
    assert "trial 0: failed (interrupted)\n" in caplog.text + "\n"
    assert "trial 1: complete 0.125" in caplog.text


def timed_reporter(study, budget=100.0, warmup=0):
    """A Reporter of a new trial of `study`, timed: a checkpoint every 5 s of a 100 s budget."""
    reporter = tune_study.Reporter(study, study.ask(), load_config(None).tune.objective, 784)
    reporter.time(budget, warmup)
    return reporter


def test_a_timed_trial_reports_at_equal_minutes_the_value_it_had_shown_by_then():
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    reporter = timed_reporter(study)
    assert tune_space.CHECKPOINTS == 20
    # Epochs of 12 s: no value is known at 5 or 10 s; at 15 and 20 s the first epoch's is.
    assert not reporter.epoch_end(0, {"val_loss": 0.9}, 12.0)
    assert reporter.trial.storage.get_trial(reporter.trial._trial_id).intermediate_values == {}
    reporter.epoch_end(1, {"val_loss": 0.7}, 24.0)
    reporter.epoch_end(2, {"val_loss": 0.5}, 36.0)
    # The last epoch ends after the budget (its validation): every checkpoint up to 100 s.
    reporter.epoch_end(3, {"val_loss": 0.4}, 101.0)
    reporter.epoch_end(4, {"val_loss": 0.3}, 130.0)  # nothing left to report
    values = reporter.trial.storage.get_trial(reporter.trial._trial_id).intermediate_values
    assert values == {3: 0.9, 4: 0.9, 5: 0.7, 6: 0.7, 7: 0.7} | {k: 0.5 for k in range(8, 21)}


def test_the_median_pruner_compares_timed_trials_at_equal_minutes_not_epochs():
    pruner = tune_study.make_pruner({"median": {"startup_trials": 1}}, 100, timed=True)
    assert pruner._n_warmup_steps == 0  # the Reporter keeps the warm-up epochs
    study = optuna.create_study(pruner=pruner)
    slow = timed_reporter(study)  # 50 s epochs: 0.5 known from 50 s on
    for epoch, (value, seconds) in enumerate([(0.5, 50.0), (0.3, 100.0)]):
        assert not slow.epoch_end(epoch, {"val_loss": value}, seconds)
    study.tell(slow.trial, 0.3)
    # A fast trial worse than the slow one at each epoch but better at each minute goes on.
    fast = timed_reporter(study)
    for epoch, seconds in enumerate((10.0, 20.0, 30.0, 40.0, 50.0, 60.0)):
        assert not fast.epoch_end(epoch, {"val_loss": 0.55 - 0.03 * epoch}, seconds)
    study.tell(fast.trial, 0.4)
    # One worse at the same minutes is pruned, and the reason names the minutes: at 60 s the
    # slow trial had shown 0.5, the fast one 0.4.
    worse = timed_reporter(study)
    assert not worse.epoch_end(0, {"val_loss": 0.8}, 42.0)  # nothing reported: 40 s was before
    assert worse.epoch_end(1, {"val_loss": 0.7}, 60.0)
    assert worse.reason == (
        "pruned at 60% of its 1.67 minutes (epoch 2): val/loss 0.7 above the median 0.45"
    )
    # One whose second epoch ended just after 60 s is judged by its first epoch's value there,
    # and the reason says so rather than pairing that value with its second epoch.
    late = timed_reporter(study)
    assert not late.epoch_end(0, {"val_loss": 0.8}, 42.0)
    assert late.epoch_end(1, {"val_loss": 0.2}, 62.0)
    assert late.reason == (
        "pruned at 60% of its 1.67 minutes (epoch 1's value; stopped after epoch 2): "
        "val/loss 0.8 above the median 0.45"
    )
    # One as bad whose epoch ended its minutes reports, but is not pruned: it is complete.
    spent = timed_reporter(study)
    assert not spent.epoch_end(0, {"val_loss": 0.8}, 100.0, final=True)
    assert spent.reason is None and spent.reported == [0.8]  # known only from 100 s on


def test_a_timed_median_pruner_keeps_its_warmup_epochs():
    pruner = tune_study.make_pruner({"median": {"startup_trials": 1}}, 100, timed=True)
    study = optuna.create_study(pruner=pruner)
    first = timed_reporter(study)
    for epoch in range(10):
        assert not first.epoch_end(epoch, {"val_loss": 0.1}, 10.0 * (epoch + 1))
    study.tell(first.trial, 0.1)
    late = timed_reporter(study, warmup=2)
    assert not late.epoch_end(0, {"val_loss": 0.9}, 10.0)
    assert not late.epoch_end(1, {"val_loss": 0.9}, 20.0)  # worse, but in its warm-up
    assert late.epoch_end(2, {"val_loss": 0.9}, 30.0)
    assert late.reason.startswith("pruned at 30% of its 1.67 minutes (epoch 3): val/loss 0.9 ")


def test_a_study_of_minutes_says_its_pruner_compares_at_equal_minutes(tmp_path):
    median = {"median": {"startup_trials": 2, "warmup_epochs": 1}}
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]}, pruner=median)
    config = tiny(tmp_path / "out", "train.minutes=2")
    setup = tune_study.prepare(config, space=space)
    assert setup.timed and not tune_study.prepare(tiny(tmp_path), space=space).timed
    setup.warmup_epochs = tune_study.warmup_epochs(setup.tune.pruner)
    pruner = tune_study.make_pruner(setup.tune.pruner, 3, setup.timed)
    assert tune_report.pruner_text(pruner, setup) == (
        "median (prunes once 2 trials completed, from a trial's epoch 2 on; trials compared at "
        "every 5% of their minutes)"
    )
    hyperband = tune_study.make_pruner("hyperband", 3, timed=True)
    assert hyperband._max_resource == tune_space.CHECKPOINTS
    assert tune_report.pruner_text(hyperband, setup) == (
        "hyperband (trials compared at every 5% of their minutes)"
    )
    searched = write_space(tmp_path / "minutes.yaml", {"train.minutes": [1, 2]})
    assert tune_study.prepare(tiny(tmp_path), space=searched).timed


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report, no other: a deterministic pruned trial."""

    def prune(self, study, trial):
        return trial.number == 1


def test_trials_share_the_studys_data_unless_they_change_the_data_or_the_seed(tmp_path):
    from autoencoder import api

    base = tiny(tmp_path)
    setup = tune_study.Setup(base, base.tune, [], "tiny.yaml", splits=object())
    for change, shared in [
        ({"train.optimizer.learning_rate": 0.01, "name": "trial-0"}, True),
        ({"model.latent_dim": 8}, True),
        ({"data.limit": 100}, False),
        ({"data.augment.shift": 1}, False),
        ({"seed": base.seed + 1}, False),
    ]:
        trial = api.load_config(base, change)
        assert (tune_study.shared_splits(setup, trial) is setup.splits) is shared, change


def test_a_study_that_searches_the_precision_leaves_it_to_each_trial(tmp_path):
    from autoencoder.tuning.space import parse_param

    base = tiny(tmp_path)
    searched = [parse_param("train.mixed_precision", ["on", "off"])]
    setup = tune_study.Setup(base, base.tune, searched, "tiny.yaml", splits=object())
    assert tune_study.study_precision(setup) is None


@pytest.mark.slow
def test_a_tiny_study_end_to_end(tmp_path, monkeypatch):
    import autoencoder as ae
    from autoencoder import pipeline

    loaded, chosen = [], []
    monkeypatch.setattr(
        pipeline, "load_splits", lambda config: loaded.append(config) or load_splits(config)
    )
    choose = pipeline.run_precision
    monkeypatch.setattr(
        pipeline,
        "run_precision",
        lambda config, *a, **k: chosen.append(config) or choose(config, *a, **k),
    )
    space = {"space": {"train.optimizer.learning_rate": {"log": [1e-3, 1e-2]}}}
    tuned = ae.tune(tiny(tmp_path / "out"), space, trials=3, pruner=PruneTrialOne())
    assert loaded == []  # every trial trained on the data the study loaded once
    assert [c.name for c in chosen] == ["tiny"]  # and in the precision it chose once
    trials = tuned.study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "COMPLETE"]
    pruned = trials[1]
    assert pruned.user_attrs["reason"].startswith("pruned at epoch 1 by PruneTrialOne: val/loss ")
    assert (tuned.path / pruned.user_attrs["run_dir"] / "history.csv").is_file()
    with open(tuned.path / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["state"] for r in rows] == ["complete", "pruned", "complete"]
    assert all((tuned.path / r["run_dir"] / "config.yaml").is_file() for r in rows)
    records = [
        json.loads((tuned.path / r["run_dir"] / "metrics.json").read_text()) for r in rows[0::2]
    ]
    assert {m["precision/how"] for m in records} == {"given"}
    assert len({m["precision/policy"] for m in records}) == 1
    # best.yaml is the best trial's config, named and placed as the study's config.
    best = min(trials[0::2], key=lambda t: t.value)
    assert tuned.best.number == best.number
    assert tuned.best_run.path == tuned.path / best.user_attrs["run_dir"]
    assert tuned.best_run.status == "finished"
    trained = load_config(tuned.path / best.user_attrs["run_dir"] / "config.yaml")
    again = load_config(tuned.path / "best.yaml")
    assert again.name == "tiny" and again.output == str(tmp_path / "out")
    assert again.model_copy(update={"name": trained.name, "output": trained.output}) == trained
    assert (tuned.path / "results.md").read_text().startswith(f"# Study {tuned.path.name}")
    for name in ("objective", "importance", "reconstructions"):
        assert (tuned.path / "figures" / f"{name}.png").is_file()


@pytest.mark.slow
def test_a_study_of_minutes_end_to_end(tmp_path, caplog):
    import autoencoder as ae

    caplog.set_level("INFO", logger="autoencoder")
    config = tiny(tmp_path / "out", "train.minutes=0.1", "train.epochs=100")
    space = {"space": {"train.optimizer.learning_rate": {"log": [1e-3, 1e-2]}}}
    tuned = ae.tune(config, space, trials=2, pruner=PruneTrialOne())
    done, pruned = tuned.study.get_trials()
    assert (done.state.name, pruned.state.name) == ("COMPLETE", "PRUNED")
    # Steps are twentieths of the 6 seconds; the first is reported once an epoch has ended.
    assert set(done.intermediate_values) <= set(range(1, 21))
    assert max(done.intermediate_values) >= 19
    assert re.match(
        # The epoch judged, or an earlier one's value when an epoch ended just past the step.
        r"pruned at \d+% of its 0\.1 minutes \(epoch \d+(?:'s value; stopped after epoch "
        r"\d+)?\) by PruneTrialOne: val/loss ",
        pruned.user_attrs["reason"],
    )
    history = runs.read_history(tuned.path / done.user_attrs["run_dir"])
    assert len(history) >= 2 and 4.5 < sum(row["seconds"] for row in history) < 10.0
    # trials.csv: each trial's training minutes (its epochs' seconds) beside its wall time.
    with open(tuned.path / "trials.csv") as handle:
        rows = {int(r["number"]): r for r in csv.DictReader(handle)}
    for trial in (done, pruned):
        seconds = sum(
            r["seconds"] for r in runs.read_history(tuned.path / trial.user_attrs["run_dir"])
        )
        row = rows[trial.number]
        assert float(row["train_minutes"]) == pytest.approx(seconds / 60, abs=0.006)
        assert float(row["minutes"]) > float(row["train_minutes"])  # setup, evaluation too
    assert float(rows[done.number]["train_minutes"]) >= 0.07
    results = (tuned.path / "results.md").read_text()
    assert "Pruner: PruneTrialOne (trials compared at every 5% of their minutes)" in results
    assert "| training minutes | wall minutes |" in results
    trained = f"{done.user_attrs['train_minutes']:.1f}"
    assert re.search(rf"\| {done.number} \| complete \| [^|]+ \| [^|]+ \| {trained} \| ", results)
    # "(epoch 2)", or "(epoch 1's value; stopped after epoch 2)": the run stopped after 2.
    epoch = re.search(r"epoch (\d+)\)", pruned.user_attrs["reason"]).group(1)
    assert f"spent when the caller stopped the run after epoch {epoch}" in caplog.text


@pytest.mark.slow
def test_a_denoising_studys_figure_shows_the_trials_outputs_for_noisy_inputs(tmp_path):
    import numpy as np

    import autoencoder as ae
    from autoencoder.noise import model_inputs

    config = tiny(tmp_path / "out", "data.noise={kind: gaussian, level: 0.3}", "train.epochs=1")
    space = {"space": {"train.optimizer.learning_rate": {"log": [1e-3, 1e-2]}}}
    tuned = ae.tune(config, space, trials=1, pruner="none")
    rows = tune_report.best_run_rows(tuned.study, tuned.path, "val/loss")
    assert [label.split("\n")[0] for label, _ in rows] == ["test images", "noisy inputs", "trial 0"]
    run = ae.load_run(tuned.path / tuned.best.user_attrs["run_dir"])
    clean, _ = run.images("test", tune_report.IMAGES)
    np.testing.assert_array_equal(rows[0][1], clean)
    noisy = model_inputs(clean, run.config)  # the run's own test noise
    assert not np.allclose(noisy, clean)
    np.testing.assert_array_equal(rows[1][1], noisy)
    np.testing.assert_allclose(rows[2][1], run.reconstruct(noisy), atol=1e-6)
    assert (tuned.path / "figures" / "reconstructions.png").is_file()


@pytest.mark.slow
def test_the_same_seed_draws_the_same_trials(tmp_path):
    import autoencoder as ae

    rate = {"train.optimizer.learning_rate": {"log": [1e-3, 1e-2]}, "model.latent_dim": [4, 8]}
    space = {"space": rate, "epochs_per_trial": 1}

    def drawn(seed):
        config = tiny(tmp_path / "out", f"seed={seed}")
        return ae.tune(config, space, trials=1, pruner="none").study.trials[0].params

    first = drawn(0)
    assert drawn(0) == first
    assert drawn(1) != first


def test_each_trial_number_draws_from_its_own_seed():
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    drawn = {}
    for seed, number in [(0, 0), (0, 0), (0, 1), (1, 0)]:
        study = optuna.create_study(sampler=tune_study.seeded_sampler(seed, number))
        drawn.setdefault((seed, number), set()).add(study.ask(distributions).params["x"])
    assert [len(values) for values in drawn.values()] == [1, 1, 1]
    assert len(set.union(*drawn.values())) == 3


def start_tune(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "autoencoder", "tune", *map(str, args), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(pattern, root, proc, timeout=240):
    """The first path matching `pattern` under root, once it exists; None if proc ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.1)
    return None


def study_files(tmp_path, epochs_per_trial):
    """(output folder, tiny config file, a space file of three latent sizes) for a subprocess."""
    out = tmp_path / "out"
    config = write_config(tmp_path / "tiny.yaml", tiny(out))
    latent = {"model.latent_dim": [4, 8, 16]}
    space = write_space(tmp_path / "space.yaml", latent, epochs_per_trial=epochs_per_trial)
    return out, config, space


def study_trials(study_dir):
    storage = f"sqlite:///{study_dir / 'study.db'}"
    return optuna.load_study(study_name=study_dir.name, storage=storage).get_trials()


@pytest.mark.slow
def test_resume_after_sigkill_repeats_no_finished_trial(tmp_path):
    out, config, space = study_files(tmp_path, epochs_per_trial=2)
    proc = start_tune(config, "--space", space, "--trials", "3", "--pruner", "none")
    # Killed once trial 1 has committed its first epoch: mid-trial.
    state = wait_for("tiny/tune-*/trials/trial-1/*/checkpoints/state.json", out, proc)
    assert state is not None, proc.stderr.read()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    study_dir = state.parents[4]
    # Without --trials: the study's own 3; another output: where a new study would go, no more.
    elsewhere = f"output={tmp_path / 'elsewhere'}"
    result = cli("tune", config, "--space", space, "--set", elsewhere, "--resume", study_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load((study_dir / "study.yaml").read_text())["trials"] == 3
    assert not (tmp_path / "elsewhere").exists()
    trials = study_trials(study_dir)
    # The killed trial 1 does not count toward the 3: its settings are tried again as trial 2.
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert re.fullmatch(r"its worker \S+ stopped mid-trial", trials[1].user_attrs["reason"])
    results = (study_dir / "results.md").read_text()
    assert re.search(
        r"- trial 1: its worker \S+ stopped mid-trial; its settings tried again "
        r"as trial 2\n",
        results,
    )
    assert trials[2].params == trials[1].params and trials[2].user_attrs["retry_of"] == 1
    # One run each: the finished trial 0 was not trained again.
    for n in range(4):
        assert len(list((study_dir / "trials" / f"trial-{n}").glob("*/config.yaml"))) == 1


@pytest.mark.slow
def test_two_workers_share_one_study_and_run_each_trial_once(tmp_path):
    out, config, space = study_files(tmp_path, epochs_per_trial=1)
    first = start_tune(config, "--space", space, "--trials", "4")
    record = wait_for("tiny/tune-*/study.yaml", out, first)
    assert record is not None, first.stderr.read()[-3000:]
    second = start_tune(config, "--space", space, "--trials", "4", "--resume", record.parent)
    for proc in (first, second):
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    trials = study_trials(record.parent)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    runs = sorted(p.parent.parent.name for p in record.parent.glob("trials/*/*/config.yaml"))
    assert runs == ["trial-0", "trial-1", "trial-2", "trial-3"]


def test_a_model_value_that_plans_no_model_is_said_before_the_study(tmp_path, caplog):
    space = {"model.encoder.0.kernel_size": [3, 99], "model.encoder.0.filters": [4, 8]}
    space = write_space(tmp_path / "s.yaml", space)
    caplog.set_level("WARNING", logger="autoencoder")
    setup = tune_study.prepare(tiny(tmp_path, "model.encoder.0.padding=valid"), space=space)
    assert len(setup.params) == 2  # a warning: the study goes on
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        f"{space}: model.encoder.0.kernel_size=99 plans no model with the config's other values "
        f"(encoder block 1 (model.encoder[0]): kernel_size 99x99 is larger than its 28x28 input "
        f"with padding valid; use padding: same or a smaller kernel_size); the trials that draw "
        f"it with them fail: drop it, or search the keys that make it fit"
    ]


def test_a_study_without_a_space_key_refuses_an_unknown_objective(tmp_path):
    space = write_space(tmp_path / "s.yaml", {"seed": [0, 1]}, objective={"metric": "val/acc"})
    with pytest.raises(UserError) as refused:
        tune_study.prepare(tiny(tmp_path), space=space)
    assert str(refused.value).endswith(
        "s.yaml: objective.metric: must be train/ or val/ and one of loss, mse, psnr, sse "
        "(val/psnr), got 'val/acc'"
    )


@pytest.mark.parametrize("space", sorted((ROOT / "configs" / "spaces").glob("*.yaml")), ids=str)
def test_every_shipped_space_parses_with_its_command(space):
    # The header's command names the config and the --set overrides the space is meant with.
    header = " ".join(line.lstrip("# ") for line in space.read_text().splitlines() if "#" in line)
    command = header.split("autoencoder tune ", 1)[1].split("--timeout")[0].replace("\\", " ")
    words = command.split()
    config, sets = words[0], [w for w in words[1:] if "=" in w]
    setup = tune_study.prepare(str(ROOT / config), sets, str(space))
    assert len(setup.params) == len(yaml.safe_load(space.read_text())["space"]) >= 4
    assert setup.base.name == (ROOT / config).stem


def test_timeouts_read_as_seconds_and_a_bad_one_is_one_line():
    from autoencoder.tuning.space import parse_timeout

    assert [parse_timeout(t) for t in ("90s", "60m", "2h", "1.5h", None)] == [
        90,
        3600,
        7200,
        5400,
        None,
    ]
    with pytest.raises(UserError) as refused:
        parse_timeout("90 minutes")
    assert str(refused.value) == "--timeout 90 minutes: expected a duration such as 90s, 60m or 2h"


def test_the_objectives_direction_is_the_metrics_own(tmp_path):
    lr = {"train.optimizer.learning_rate": {"log": [1e-4, 1e-2]}}
    psnr = tune_study.prepare(
        tiny(tmp_path), space=write_space(tmp_path / "p.yaml", lr, objective={"metric": "val/psnr"})
    )
    assert psnr.tune.objective.goal() == "maximize"  # the worst trial was "best" before
    loss = tune_study.prepare(tiny(tmp_path), space=write_space(tmp_path / "l.yaml", lr))
    assert loss.tune.objective.goal() == "minimize"
    space = write_space(
        tmp_path / "s.yaml", lr, objective={"metric": "val/psnr", "direction": "minimize"}
    )
    with pytest.raises(UserError) as refused:
        tune_study.prepare(tiny(tmp_path), space=space)
    assert str(refused.value) == (
        f"{space}: objective: direction minimize with metric val/psnr, which is better larger: "
        f"leave direction out, or set it to maximize"
    )


def test_a_space_that_searches_the_loss_is_not_ranked_by_the_loss(tmp_path, caplog):
    losses = {"train.loss": ["bce", "mse"], "train.optimizer.momentum": {"uniform": [0.8, 0.99]}}
    space = write_space(tmp_path / "s.yaml", losses, objective={"metric": "val/loss"})
    with pytest.raises(UserError) as refused:
        tune_study.prepare(tiny(tmp_path), space=space)
    assert str(refused.value) == (
        f"{space}: objective val/loss while the space searches train.loss: each trial's loss is "
        f"then a different measure (BCE and MSE of one model differ fourfold), so the trials "
        f"cannot be ranked by it; set objective.metric to val/mse, val/psnr or val/sse, which "
        f"every trial measures alike"
    )
    caplog.set_level("WARNING", logger="autoencoder")
    space = write_space(tmp_path / "m.yaml", losses, objective={"metric": "val/mse"})
    setup = tune_study.prepare(tiny(tmp_path), space=space)
    assert [p.key for p in setup.params] == ["train.loss", "train.optimizer.momentum"]
    # momentum is read by sgd only; the tiny config trains with adam.
    assert (
        f"{space}: train.optimizer.momentum is read by sgd only, and every trial trains with adam"
        in caplog.text
    )


def test_the_command_to_go_on_names_the_space_and_the_sets(tmp_path):
    from autoencoder.tuning import _again

    space = write_space(tmp_path / "my space.yaml", {"model.latent_dim": [4, 8]})
    config = ROOT / "configs" / "quickstart.yaml"
    setup = tune_study.prepare(str(config), ["data.limit=300"], space)
    assert _again(setup, str(space), ["data.limit=300"], tmp_path / "tune-1") == (
        f"autoencoder tune {config} --space '{space}' --set data.limit=300 "
        f"--resume {tmp_path / 'tune-1'}"
    )


@pytest.mark.slow
def test_a_trial_stopped_by_ctrl_c_is_tried_again_and_one_that_had_trained_counts(
    tmp_path, monkeypatch, caplog
):
    import autoencoder as ae
    from autoencoder import pipeline

    caplog.set_level("INFO", logger="autoencoder")
    config = tiny(tmp_path / "out")
    space = {"space": {"model.latent_dim": [4, 8, 16]}, "epochs_per_trial": 2}
    finish = pipeline.finish_run

    def stop_while_testing(run_dir, *args, **kwargs):  # Ctrl-C once trial 0 has trained
        if "trial-0" in str(run_dir):
            raise KeyboardInterrupt
        return finish(run_dir, *args, **kwargs)

    monkeypatch.setattr(pipeline, "finish_run", stop_while_testing)
    with pytest.raises(KeyboardInterrupt, match="during trial 0"):
        ae.tune(config, space, trials=3, pruner="none")
    monkeypatch.undo()
    (study_dir,) = (tmp_path / "out" / "tiny").glob("tune-*")
    (first,) = study_trials(study_dir)
    run_dir = study_dir / first.user_attrs["run_dir"]
    # Its training had finished: complete, by its own history, with what was cut short.
    assert first.state.name == "COMPLETE"
    assert first.value == runs.read_history(run_dir)[-1]["val/loss"]
    assert first.user_attrs["reason"] == (
        f"interrupted after training; test metrics: `autoencoder evaluate {run_dir}`"
    )

    epoch_end = tune_study.Reporter.epoch_end

    def stop_in_trial_1(self, *args, **kwargs):  # Ctrl-C in trial 1's first epoch
        if self.trial.number == 1:
            raise KeyboardInterrupt
        return epoch_end(self, *args, **kwargs)

    monkeypatch.setattr(tune_study.Reporter, "epoch_end", stop_in_trial_1)
    with pytest.raises(KeyboardInterrupt, match="during trial 1"):
        ae.tune(config, space, resume=study_dir, pruner="none")
    monkeypatch.undo()
    tuned = ae.tune(config, space, resume=study_dir, pruner="none")
    trials = tuned.study.get_trials()
    # Trial 1's settings were tried again as trial 2; it did not count toward the 3.
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs["reason"] == "interrupted"
    with open(study_dir / "trials.csv") as handle:
        reasons = [row["reason"] for row in csv.DictReader(handle)]
    assert reasons[1:] == ["interrupted; its settings tried again as trial 2", "", ""]
    assert trials[2].params == trials[1].params and trials[2].user_attrs["retry_of"] == 1
    assert "trial 1 stopped mid-training: its settings are tried again as trial 2" in caplog.text
    assert len(list(study_dir.glob("trials/*/*/config.yaml"))) == 4


class Killed(BaseException):
    """A worker's death as the study sees it: no except clause runs, its trial stays RUNNING."""


def test_a_trial_whose_worker_died_after_training_counts_by_its_history(tmp_path, monkeypatch):
    import autoencoder as ae
    from autoencoder import pipeline

    config = tiny(tmp_path / "out")
    space = {"space": {"model.latent_dim": [4, 8, 16]}, "epochs_per_trial": 1}

    def die_while_testing(run_dir, *args, **kwargs):
        raise Killed

    monkeypatch.setattr(pipeline, "finish_run", die_while_testing)
    with pytest.raises(Killed):
        ae.tune(config, space, trials=2, pruner="none")
    monkeypatch.undo()
    (study_dir,) = (tmp_path / "out" / "tiny").glob("tune-*")
    assert [t.state.name for t in study_trials(study_dir)] == ["RUNNING"]
    tuned = ae.tune(config, space, resume=study_dir, pruner="none")
    first, second = tuned.study.get_trials()  # trial 0 counted: one more makes the 2
    run_dir = study_dir / first.user_attrs["run_dir"]
    assert first.state.name == "COMPLETE" and RETRY_OF not in second.user_attrs
    assert first.value == runs.read_history(run_dir)[-1]["val/loss"]
    assert re.fullmatch(
        rf"its worker \S+ stopped after training; test metrics: `autoencoder evaluate "
        rf"{re.escape(str(run_dir))}`",
        first.user_attrs["reason"],
    )
    assert second.state.name == "COMPLETE"


@pytest.mark.slow
def test_a_study_whose_time_runs_out_says_so_and_lists_only_what_it_wrote(tmp_path, caplog):
    import autoencoder as ae

    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    space = {"space": {"model.latent_dim": [4, 8]}, "epochs_per_trial": 1}
    tuned = ae.tune(config, space, trials=5, timeout="1s", pruner="none")
    assert len(tuned.study.get_trials()) == 1  # the first trial alone outlasts a second
    assert (
        f"timeout 1s: no trial is started after it; 1 of 5 trials; go on with `ae.tune(the same "
        f"config, space and overrides, resume='{tuned.path}')`" in caplog.text
    )
    printed = tune_report.format_study(tuned.study, tuned.path, "val/loss")
    assert printed.splitlines()[-1] == (
        f"study: {tuned.path} (trials.csv, best.yaml, results.md, figures/)"
    )
    results = (tuned.path / "results.md").read_text()
    # One complete trial: no importances to draw, and results.md names no such figure.
    assert "Figures: figures/objective.png, figures/reconstructions.png\n" in results
    assert sorted(p.name for p in (tuned.path / "figures").iterdir()) == [
        "objective.png",
        "reconstructions.png",
    ]


def test_a_study_without_results_lists_no_files_it_has_not_written(tmp_path):
    study = optuna.create_study()
    (tmp_path / "trials.csv").write_text("number,state\n")
    printed = tune_report.format_study(study, tmp_path, "val/loss")
    assert printed.splitlines()[-1] == f"study: {tmp_path} (trials.csv)"
    setup = tune_study.prepare(tiny(tmp_path / "out"), space={"space": {"seed": [1, 2]}})
    assert tune_report.write_figures(study, tmp_path, setup) == []
    assert not (tmp_path / "figures").exists()
    assert "Figures:" not in tune_report.results_markdown(study, tmp_path, setup, "sqlite://")


def test_a_zero_timeout_and_a_scalar_space_value_are_refused_in_plain_words():
    with pytest.raises(UserError) as refused:
        tune_space.parse_timeout("0s")
    assert str(refused.value) == (
        "--timeout 0s: must be longer than 0 (no trial starts after it); leave it out to run "
        "every trial"
    )
    with pytest.raises(ValueError) as scalar:
        tune_space.parse_param("seed", 5)
    assert str(scalar.value).startswith("5 is not a distribution; write {log: [a, b]}")


def test_a_space_file_that_is_not_a_mapping_is_called_a_space_file(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("- model.latent_dim\n- seed\n")
    with pytest.raises(UserError) as refused:
        tune_study.prepare(tiny(tmp_path / "out"), space=space)
    assert str(refused.value) == (
        f"{space}: a space file must be a YAML mapping shaped like a config's tune section: "
        f"space: {{KEY: DISTRIBUTION, ...}}, and objective, trials, epochs_per_trial if wanted; "
        f"got a list"
    )
    with pytest.raises(UserError, match=r"space\.yaml: space file not found; check the path$"):
        tune_study.prepare(tiny(tmp_path / "out"), space=tmp_path / "no" / "space.yaml")


def captured_figures(monkeypatch):
    """The figures report.py draws, kept as they are drawn."""
    figures = []
    subplots = tune_report.subplots

    def keep(*args, **kwargs):
        fig, axes = subplots(*args, **kwargs)
        figures.append(fig)
        return fig, axes

    monkeypatch.setattr(tune_report, "subplots", keep)
    return figures


def finished_study(values):
    """An in-memory study of one float parameter: a value per trial, None for a failed one."""
    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for number, value in enumerate(values):
        trial = study.ask(distributions)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value + 0.01 * number)
    return study


def test_the_objective_figure_marks_failed_trials_and_few_importances_say_so(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    study = finished_study([0.5, None, 0.3, None, 0.4])
    objective = load_config(None).tune.objective
    tune_report.plot_objective(tmp_path / "objective.png", study, objective)
    by_trial = figures[0].axes[0]
    marks = [line for line in by_trial.lines if line.get_linestyle() == ":"]
    assert [line.get_xdata()[0] for line in marks] == [1, 3]
    labels = by_trial.get_legend_handles_labels()[1]
    assert labels.count("failed or infeasible (no value)") == 1
    assert tune_report.plot_importance(tmp_path / "importance.png", study, "val/loss")
    title = figures[1].axes[0].get_title()
    assert title.startswith("Parameter importances over 3 complete trials\n(fewer than 10: ")
    many = finished_study([0.1 * (k % 7) for k in range(12)])
    assert tune_report.plot_importance(tmp_path / "importance.png", many, "val/loss")
    assert figures[2].axes[0].get_title() == "Parameter importances over 12 complete trials"


def test_the_best_so_far_runs_on_past_pruned_trials(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 29.6)
    for value in (7.7, 6.7):  # pruned after one complete trial, as in a study of minutes
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    objective = load_config(None).tune.objective
    tune_report.plot_objective(tmp_path / "objective.png", study, objective)
    for ax in figures[0].axes:
        (best,) = [line for line in ax.lines if line.get_label() == "best so far"]
        assert list(best.get_ydata()) == [29.6, 29.6]
    assert list(best.get_xdata())[-1] > 0  # to the last pruned trial's minutes
    assert list(figures[0].axes[0].lines[-1].get_xdata()) == [0, 2]


def test_the_best_runs_figure_is_titled_in_the_singular_for_one_trial():
    what = "reconstructions of the same test images"
    assert tune_report.best_runs_title(1, what) == f"The best trial's {what}"
    assert tune_report.best_runs_title(3, what) == f"The best 3 trials' {what}"


def test_a_storage_that_cannot_be_opened_leaves_no_study_folder(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path / "out"))
    space = write_space(tmp_path / "space.yaml", {"model.latent_dim": [4, 8]})
    result, loaded = cli_without_tensorflow(
        "tune", config, "--space", space, "--storage", "nosuchdb://nowhere"
    )
    assert result.returncode == 2 and not loaded
    assert result.stderr.startswith("error: storage nosuchdb://nowhere: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert list((tmp_path / "out" / "tiny").iterdir()) == []


def test_best_yaml_is_placed_beside_the_study_wherever_it_was_resumed_from(tmp_path):
    from types import SimpleNamespace

    from autoencoder.config import dump_config

    # A study moved to moved/tiny/tune-1, resumed from a folder whose config says `outputs`.
    study_dir = tmp_path / "moved" / "tiny" / "tune-1"
    run = study_dir / "trials" / "trial-0" / "20261206-000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(tiny(study_dir / "trials", "name=trial-0")))
    trial = SimpleNamespace(
        number=0, value=0.25, user_attrs={"run_dir": "trials/trial-0/20261206-000000"}
    )
    objective = SimpleNamespace(metric="val/loss")
    setup = SimpleNamespace(
        base=SimpleNamespace(name="tiny", output="outputs"),
        tune=SimpleNamespace(objective=objective),
    )
    text = tune_report.best_yaml(study_dir, trial, setup)
    best = yaml.safe_load(text)
    assert best["name"] == "tiny" and best["output"] == str(tmp_path / "moved")
