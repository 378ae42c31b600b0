"""`autoencoder runs`: one line per run directory, its status, epochs and figures from its files."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli_without_tensorflow, tiny
from test_lock import hold_in_subprocess

from autoencoder import api, listing, runs
from autoencoder.config import dump_config
from autoencoder.pipeline import train_run


def copy_run(source, target, config=None):
    """A copy of a run directory (without its lock file), its config replaced when given."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))
    if config is not None:
        (target / "config.yaml").write_text(dump_config(config))
    return target


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """An outputs folder with a run of each status, a damaged pair and a sweep's nested run."""
    out = tmp_path_factory.mktemp("listing") / "outputs"
    finished, _ = train_run(tiny(out, "train.epochs=1"))
    two_epochs = tiny(out, "train.epochs=2")
    unfinished = copy_run(finished, out / "tiny" / "20990101-000001", two_epochs)
    (unfinished / "model.keras").unlink()  # interrupted after epoch 1 of 2
    failed = copy_run(unfinished, out / "tiny" / "20990101-000002")
    (failed / "error.log").write_text("Traceback ...\n")
    in_use = copy_run(finished, out / "tiny" / "20990101-000003")
    bad_state = copy_run(finished, out / "broken" / "20990101-000004")
    (bad_state / runs.STATE).write_text("{not json")
    bad_config = copy_run(finished, out / "broken" / "20990101-000005")
    (bad_config / "config.yaml").write_text("train: {epochs: zero}\n")
    bad_metrics = copy_run(finished, out / "broken" / "20990101-000008")
    (bad_metrics / "metrics.json").write_text('{"test/psnr": ')  # a write cut short
    # A sweep keeps its models' runs inside its own folder, which is no run (no checkpoints/).
    sweep = out / "sweep" / "20990101-000000"
    (sweep / "figures").mkdir(parents=True)
    (sweep / "config.yaml").write_text(dump_config(two_epochs))
    nested = copy_run(finished, sweep / "models" / "level-0.1" / "20990101-000006")
    # A study's trials are named trial-0, trial-1, ... in every study.
    study = out / "tiny" / "tune-20990101-000009"
    trial = copy_run(finished, study / "trials" / "trial-0" / "20990101-000010")
    (out / "compare" / "20990101-000007").mkdir(parents=True)  # not a run: skipped
    holder = hold_in_subprocess(in_use)
    paths = dict(
        finished=finished,
        unfinished=unfinished,
        failed=failed,
        in_use=in_use,
        bad_state=bad_state,
        bad_config=bad_config,
        bad_metrics=bad_metrics,
        nested=nested,
        trial=trial,
    )
    yield out, paths
    holder.kill()
    holder.wait()


def by_path(rows):
    return {row["path"]: row for row in rows}


def test_each_run_is_one_row_with_its_status(outputs):
    out, paths = outputs
    rows = by_path(listing.list_runs(out))
    assert sorted(rows) == sorted(str(p) for p in paths.values())
    status = {key: rows[str(path)]["status"] for key, path in paths.items()}
    assert status == dict(
        finished="finished",
        unfinished="unfinished",
        failed="failed",
        in_use="in use",
        bad_state="damaged",
        bad_config="damaged",
        bad_metrics="damaged",
        nested="finished",
        trial="finished",
    )
    assert rows[str(paths["nested"])]["name"] == "sweep/level-0.1"
    assert rows[str(paths["finished"])]["name"] == "tiny"
    assert rows[str(paths["trial"])]["name"] == "tiny/tune-20990101-000009/trial-0"
    # Listed from the folder above, the names stay the same.
    above = by_path(listing.list_runs(out.parent))
    assert above[str(paths["nested"])]["name"] == "sweep/level-0.1"
    assert above[str(paths["finished"])]["name"] == "tiny"
    assert above[str(paths["trial"])]["name"] == "tiny/tune-20990101-000009/trial-0"
    # From the config's own folder, and from the study's: what tells the trial apart there.
    inside = by_path(listing.list_runs(out / "tiny"))
    assert inside[str(paths["trial"])]["name"] == "tune-20990101-000009/trial-0"
    study = by_path(listing.list_runs(paths["trial"].parents[2]))
    assert study[str(paths["trial"])]["name"] == "trial-0"
    assert rows[str(paths["unfinished"])]["started"] == "2099-01-01 00:00:01"


def test_epochs_loss_and_metrics_are_the_runs_own(outputs):
    out, paths = outputs
    rows = by_path(listing.list_runs(out))
    for key in ("finished", "unfinished", "nested"):
        run_dir = paths[key]
        row = rows[str(run_dir)]
        config, metrics = runs.load_run_config(run_dir), runs.read_metrics(run_dir)
        assert (row["epochs"], row["epochs_configured"]) == (
            runs.read_state(run_dir)["epoch"],
            config.train.epochs,
        )
        history = runs.read_history(run_dir)
        assert row["val_loss"] == min(r["val/loss"] for r in history)
        seconds = sum(r["seconds"] for r in history[: row["epochs"]])
        assert row["minutes"] == pytest.approx(seconds / 60, abs=1e-3) and row["minutes"] > 0
        assert row["minutes_configured"] is None
        assert row["psnr"] == metrics["test/psnr"]
        assert row["ssim"] == metrics["test/ssim"]
        # Squared error per image: the per-pixel MSE times 28 x 28 pixels.
        assert row["sse"] == pytest.approx(metrics["test/mse"] * 28 * 28)
    assert rows[str(paths["unfinished"])]["epochs_configured"] == 2


def test_a_damaged_run_says_which_file_and_shows_nothing_else(outputs):
    out, paths = outputs
    rows = by_path(listing.list_runs(out))
    state, config = rows[str(paths["bad_state"])], rows[str(paths["bad_config"])]
    assert state["problem"].startswith(f"{paths['bad_state'] / runs.STATE}: corrupt run state")
    assert config["problem"] == (
        f"{paths['bad_config'] / 'config.yaml'}: train.epochs: must be an integer, got 'zero'"
    )
    assert rows[str(paths["bad_metrics"])]["problem"] == (
        f"{paths['bad_metrics'] / 'metrics.json'}: damaged (not a JSON object); `autoencoder "
        f"evaluate {paths['bad_metrics']}` writes the run's test metrics again"
    )
    assert [state[k] for k in ("epochs", "minutes", "val_loss", "psnr", "ssim", "sse")] == [
        None
    ] * 6


def test_the_command_prints_a_table_without_tensorflow(outputs):
    out, paths = outputs
    result, loaded = cli_without_tensorflow("runs", out)
    assert (result.returncode, loaded) == (0, False), result.stderr
    head, *lines = result.stdout.splitlines()
    assert head.split() == list(listing.COLUMNS)
    table = {line.split()[-1]: line.split() for line in lines if not line.startswith("damaged")}
    finished = table[str(paths["finished"])]
    metrics = runs.read_metrics(paths["finished"])
    # name, started (a date and a time), status, epochs, minutes, val_loss, psnr, ssim, sse, path
    assert [finished[0], *finished[3:5]] == ["tiny", "finished", "1/1"]
    minutes = listing.list_runs(paths["finished"])[0]["minutes"]
    assert float(finished[5]) == pytest.approx(minutes, abs=0.051) and float(finished[5]) > 0
    assert finished[7:10] == [
        f"{metrics['test/psnr']:.2f}",
        f"{metrics['test/ssim']:.4f}",
        f"{metrics['test/sse_per_image']:.2f}",
    ]
    assert table[str(paths["unfinished"])][1:5] == ["2099-01-01", "00:00:01", "unfinished", "1/2"]
    assert table[str(paths["bad_state"])][3:] == ["damaged", *"------", str(paths["bad_state"])]
    assert table[str(paths["in_use"])][3:5] == ["in", "use"]
    notes = [line for line in lines if line.startswith("damaged")]
    assert len(notes) == 3 and notes[0].startswith(f"damaged: {paths['bad_state']}")


def test_json_is_a_list_of_objects_with_numbers_and_nulls(outputs):
    out, paths = outputs
    result, _ = cli_without_tensorflow("runs", out, "--json")
    rows = by_path(json.loads(result.stdout))
    assert set(rows[str(paths["finished"])]) == {
        *listing.COLUMNS,
        "epochs_configured",
        "minutes_configured",
        "problem",
    }
    assert isinstance(rows[str(paths["finished"])]["psnr"], float)
    assert rows[str(paths["bad_state"])]["psnr"] is None
    assert rows == by_path(api.list_runs(out))


def test_sorting_numbers_numerically_and_missing_last_either_way(outputs, tmp_path):
    out = shutil.copytree(outputs[0], tmp_path / "outputs")
    # PSNRs whose text sorts otherwise (9.5 after 12.25 as strings), on every run that has one.
    scored = [Path(r["path"]) / "metrics.json" for r in api.list_runs(out) if r["psnr"]]
    given = [9.5, 12.25, 30.0][: len(scored)]
    assert len(given) >= 2
    for path, psnr in zip(scored, given):
        path.write_text(json.dumps({**json.loads(path.read_text()), "test/psnr": psnr}))
    for reverse in (False, True):
        values = [r["psnr"] for r in api.list_runs(out, "psnr", reverse)]
        present = [v for v in values if v is not None]
        # Best (largest) first, smallest first when reversed; missing values last either way.
        assert set(given) <= set(present)
        assert present == sorted(present, reverse=not reverse)
        assert values[len(present) :] == [None] * (len(values) - len(present))
    assert [r["status"] for r in api.list_runs(out, "status")][:3] == ["damaged"] * 3
    names = [r["name"] for r in api.list_runs(out, "name", reverse=True)]
    assert names == sorted(names, reverse=True)
    started = [r["started"] for r in api.list_runs(out)]
    assert started == sorted(started)


def test_an_empty_folder_says_so_and_a_missing_one_is_refused(tmp_path):
    result, loaded = cli_without_tensorflow("runs", tmp_path)
    assert (result.returncode, result.stdout, loaded) == (0, f"no runs under {tmp_path}\n", False)
    result, _ = cli_without_tensorflow("runs", tmp_path / "nope")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {tmp_path / 'nope'}: no such folder; pass the folder your runs are written to "
        f"(a config's output:, outputs by default)\n"
    )
    (tmp_path / "notes.txt").write_text("")
    result, _ = cli_without_tensorflow("runs", tmp_path / "notes.txt")
    assert result.returncode == 2 and result.stderr.startswith(
        f"error: {tmp_path / 'notes.txt'}: a file, not a folder; pass the folder your runs"
    )


def test_a_run_with_a_time_budget_shows_its_minutes_of_the_budget(tmp_path):
    run_dir, _ = train_run(tiny(tmp_path, "train.minutes=5", "train.epochs=1"))
    (row,) = listing.list_runs(tmp_path)
    assert row["minutes_configured"] == 5.0 and 0 < row["minutes"] < 5
    spent, budget = listing.row_cells(row)[listing.COLUMNS.index("minutes")].split("/")
    assert budget == "5" and float(spent) == pytest.approx(row["minutes"], abs=0.051)


@pytest.mark.parametrize(
    "minutes, shown",
    [(None, "-"), (0.0, "0.0"), (0.0466, "0.047"), (0.004, "0.004"), (1.26, "1.3")],
)
def test_minutes_are_shown_to_a_tenth_and_a_run_of_seconds_to_two_digits(minutes, shown):
    row = {"minutes": minutes, "minutes_configured": None, "epochs": None}
    row.update({k: None for k in ("val_loss", "psnr", "ssim", "sse")})
    row.update(name="n", started="s", status="finished", path="p")
    assert listing.row_cells(row)[listing.COLUMNS.index("minutes")] == shown


def test_the_best_run_comes_first_whichever_way_its_column_points():
    rows = [
        {"path": "a", "psnr": 20.0, "val_loss": 0.3},
        {"path": "b", "psnr": 25.0, "val_loss": 0.1},
        {"path": "c", "psnr": None, "val_loss": 0.2},
        {"path": "d", "psnr": 22.0, "val_loss": None},
    ]
    order = lambda column, reverse=False: [  # noqa: E731
        r["path"] for r in listing.sort_rows(rows, column, reverse)
    ]
    assert order("psnr") == ["b", "d", "a", "c"]  # highest first, missing last
    assert order("psnr", reverse=True) == ["a", "d", "b", "c"]
    assert order("val_loss") == ["b", "c", "a", "d"]  # lowest first
    assert order("val_loss", reverse=True) == ["a", "c", "b", "d"]


def test_a_run_folder_of_ones_own_naming_is_listed_by_that_name(outputs, tmp_path):
    _, paths = outputs
    copy = shutil.copytree(paths["finished"], tmp_path / "baseline-copy")
    (row,) = listing.list_runs(tmp_path)
    assert (row["name"], row["path"], row["started"]) == ("baseline-copy", str(copy), None)


def test_the_command_sorts_by_the_column_given(outputs):
    out, _ = outputs
    result, _ = cli_without_tensorflow("runs", out, "--sort", "name", "--reverse")
    assert result.returncode == 0, result.stderr
    rows = [
        line.split() for line in result.stdout.splitlines()[1:] if line.startswith(" ") is False
    ]
    names = [row[0] for row in rows if row and not row[0].startswith("damaged")]
    assert names == [r["name"] for r in api.list_runs(out, "name", reverse=True)]
    assert names[0] > names[-1]
    result, loaded = cli_without_tensorflow("runs", out, "--sort", "PSNR")
    assert result.returncode == 2 and not loaded
    assert "argument --sort: invalid choice: 'PSNR'" in result.stderr


def record(folder, history, epoch=2):
    """A finished run's files as listing reads them (an empty model.keras: none is loaded)."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_config(tiny(folder.parent, "train.epochs=2")))
    state = {"epoch": epoch, "checkpoint": f"last-{epoch:04d}.keras"}
    (folder / runs.STATE).write_text(json.dumps(state))
    (folder / "history.csv").write_text("epoch,val/loss,seconds\n" + history)
    (folder / "model.keras").write_bytes(b"")
    return folder


def test_a_damaged_record_is_listed_as_damaged_and_the_other_runs_as_they_are(tmp_path):
    two = "1,0.5,30.0\n2,0.4,30.0\n"
    good = record(tmp_path / "good", two)
    cut = record(tmp_path / "cut", "1,0.5,30.0\n2,0.")
    ahead = record(tmp_path / "ahead", two, epoch=7)
    empty = record(tmp_path / "empty", "")
    gone = record(tmp_path / "gone", two)
    shutil.rmtree(gone / "checkpoints")
    rows = by_path(listing.list_runs(tmp_path))
    assert sorted(rows) == sorted(map(str, (good, cut, ahead, empty, gone)))
    assert [rows[str(good)][k] for k in ("status", "epochs", "minutes", "val_loss")] == [
        "finished",
        2,
        1.0,
        0.4,
    ]
    mismatch = (
        "{0}/history.csv: holds {1} epoch(s), but {0}/checkpoints/state.json says the run has "
        "completed {2}: one of the two is not this run's; put back the run's own files from a "
        "copy, or train a new run"
    )
    assert {
        key: rows[str(path)]["problem"]
        for key, path in [("cut", cut), ("ahead", ahead), ("empty", empty), ("gone", gone)]
    } == {
        "cut": f"{cut}/history.csv: line 3 is damaged (2 fields where the header names 3); "
        "the run's epochs cannot be read: put back history.csv from a copy of the run, or "
        "train a new run",
        "ahead": mismatch.format(ahead, 2, 7),
        "empty": mismatch.format(empty, 0, 2),
        "gone": f"{gone}/checkpoints: missing, so the run cannot be resumed; its "
        f"{gone}/model.keras still serves evaluate, predict and export; train a new run to go on",
    }
    assert {rows[str(p)]["status"] for p in (cut, ahead, empty, gone)} == {"damaged"}
