"""Failures a user can cause or meet: one exact line, exit status 2 (130 for Ctrl-C), nothing lost.

Cases already covered elsewhere are not repeated here: config messages (and `train` refusing
them) in test_config.py, data files, the `data` command and the download checksum in
test_data.py, the shapes CLI in test_model.py, NaN and SIGKILL-then-resume in test_trainer.py.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    assert_error,
    cli,
    cli_without_tensorflow,
    start_training,
    tiny,
    wait_for_first_epoch,
    write_config,
)

from autoencoder import atomic, runs
from autoencoder.config import load_config
from autoencoder.errors import UserError
from autoencoder.model import load_model
from autoencoder.pipeline import train_run
from autoencoder.runs import STATE, read_history, read_state


def history_epochs(run_dir):
    return [row["epoch"] for row in read_history(run_dir)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real one-epoch run to copy and damage."""
    return train_run(tiny(tmp_path_factory.mktemp("runs"), "train.epochs=1"))[0]


def copy_run(run_dir, tmp_path):
    return Path(shutil.copytree(run_dir, tmp_path / "copy" / run_dir.name))


# ---------------------------------------------------------------------------------------------
# Config


def test_impossible_architecture_via_train_cli(tmp_path):
    from autoencoder.shapes import plan_model

    config = tiny(
        tmp_path / "out",
        "model.encoder=[{filters: 4, strides: 2}]",
        "model.latent_dim=null",
        "model.decoder=[{type: conv_transpose, filters: 4, strides: 4}]",
    )
    with pytest.raises(UserError) as info:
        plan_model(config.model)
    message = (
        "decoder block 1 (model.decoder[0]): 14x14 -> 56x56, but the encoder had 28x28 "
        "there; no output_padding reaches it with kernel_size 3x3, strides 4x4, padding "
        "same (it can reach 53x53, 54x54, 55x55, 56x56); change kernel_size, strides or "
        "padding (out = (in-1)*stride + kernel - 2*pad + output_padding)"
    )
    assert str(info.value) == message
    assert_error(cli("train", write_config(tmp_path / "c.yaml", config)), message)
    assert not (tmp_path / "out").exists()  # refused before any run directory is made


# ---------------------------------------------------------------------------------------------
# Run directories


def test_output_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("mine\n")
    config = tiny(blocker / "runs")
    # Before TensorFlow loads, and before a precision timing of seconds.
    result, loaded = cli_without_tensorflow("train", write_config(tmp_path / "c.yaml", config))
    assert not loaded
    assert_error(
        result,
        f"output: cannot create {blocker / 'runs' / 'tiny'}: Not a directory; "
        f"set output: to a writable directory (e.g. --set output=/tmp/runs)",
    )
    assert blocker.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_dir_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError) as info:
            runs.create_run_dir(tiny(locked))
    finally:
        locked.chmod(0o700)
    assert str(info.value) == (
        f"output: cannot create {locked / 'tiny'}: Permission denied; set "
        f"output: to a writable directory (e.g. --set output=/tmp/runs)"
    )


def test_output_dir_that_is_not_writable(tmp_path, monkeypatch):
    """The test above is skipped as root; here os.access answers as it does for a user."""
    (tmp_path / "tiny").mkdir()
    monkeypatch.setattr(runs.os, "access", lambda path, mode: False)
    with pytest.raises(UserError) as info:
        runs.create_run_dir(tiny(tmp_path))
    assert str(info.value) == (
        f"output: {tmp_path / 'tiny'} is not writable; set output: to a "
        f"writable directory (e.g. --set output=/tmp/runs)"
    )
    assert list((tmp_path / "tiny").iterdir()) == []


def test_disk_full_while_creating_the_run_directory(tmp_path, monkeypatch):
    def enospc(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "write_text", enospc)
    with pytest.raises(UserError) as info:
        runs.create_run_dir(tiny(tmp_path))
    assert str(info.value) == (
        f"output: cannot write in {tmp_path / 'tiny'}: No space left on "
        f"device; free disk space or set output: to a writable directory "
        f"(e.g. --set output=/tmp/runs)"
    )


def test_a_thousand_runs_in_one_second_are_refused_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20261121-140000")
    parent = tmp_path / "tiny"
    for k in range(1000):
        (parent / ("20261121-140000" + (f"-{k}" if k else ""))).mkdir(parents=True)
    with pytest.raises(UserError) as info:
        runs.create_run_dir(tiny(tmp_path))
    assert str(info.value) == (
        f"output: {parent} already holds runs 20261121-140000 to "
        f"20261121-140000-999; wait a second or set output: to another "
        f"directory"
    )
    assert all(not any(d.iterdir()) for d in parent.iterdir())


def test_runs_in_the_same_second_never_share_or_overwrite_a_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20261121-140000")
    existing = tmp_path / "tiny" / "20261121-140000"
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("keep me\n")
    first, second = runs.create_run_dir(tiny(tmp_path)), runs.create_run_dir(tiny(tmp_path))
    assert (first.name, second.name) == ("20261121-140000-1", "20261121-140000-2")
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]
    assert (existing / "notes.txt").read_text() == "keep me\n"
    assert (first / "config.yaml").is_file() and (second / "config.yaml").is_file()


def test_resume_on_a_directory_that_is_not_a_run(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny(tmp_path))
    assert_error(
        cli("train", cfg, "--resume", tmp_path),
        f"{tmp_path}: not a run directory (no config.yaml); pass a directory made by "
        f"`autoencoder train`, e.g. outputs/<name>/<timestamp>",
    )
    assert_error(
        cli("train", cfg, "--resume", tmp_path / "missing"),
        f"{tmp_path / 'missing'}: no such folder; pass a run directory, e.g. "
        f"outputs/<name>/<timestamp>",
    )
    run_dir = runs.create_run_dir(tiny(tmp_path))  # <out>/tiny/<timestamp>
    for parent in (run_dir.parent, run_dir.parent.parent):
        assert_error(
            cli("resume", parent),
            f"{parent}: a folder of 1 run(s), not a run directory; pass one of them, e.g. "
            f"{run_dir} (`autoencoder runs {parent}` lists them)",
        )


def test_resume_with_a_different_config_shows_the_keys(tmp_path):
    run_dir = runs.create_run_dir(tiny(tmp_path))
    before = (run_dir / "config.yaml").read_text()
    # train.epochs may change (more epochs extend a run); seed and loss may not.
    other = tiny(tmp_path, "seed=3", "train.loss=mse", "train.epochs=20")
    assert_error(
        cli("train", write_config(tmp_path / "other.yaml", other), "--resume", run_dir),
        f"{run_dir}: cannot resume: the config differs from the run's in seed, train.loss; "
        f"only train.epochs, train.minutes, train.worker_timeout and data.path (images moved) may "
        f"change (`autoencoder "
        f"resume {run_dir} --set train.epochs=N`); train a new run for other changes",
    )
    assert (run_dir / "config.yaml").read_text() == before
    # How long a cluster's workers wait is no part of what they learn: it may change.
    waits = load_config(run_dir / "config.yaml", ["train.worker_timeout=5"])
    assert runs.check_resume(run_dir, waits) == run_dir


def fake_run(tmp_path, state, monkeypatch):
    """A run directory with checkpoints/state.json = `state` (text or JSON data).

    autoencoder.trainer (which loads TensorFlow) is made unimportable: the CLI must refuse first.
    """
    monkeypatch.setitem(sys.modules, "autoencoder.trainer", None)
    run_dir = runs.create_run_dir(tiny(tmp_path / "out"))
    (run_dir / STATE).write_text(state if isinstance(state, str) else json.dumps(state))
    return run_dir


@pytest.mark.parametrize(
    "state",
    ['{"epoch": 2, "check', "[]", '{"epoch": "2"}'],
    ids=["truncated", "not_a_mapping", "wrong_fields"],
)
def test_resume_with_a_corrupt_state_is_refused_before_tensorflow(
    tmp_path, capsys, monkeypatch, state
):
    from autoencoder.cli import main

    run_dir = fake_run(tmp_path, state, monkeypatch)
    assert main(["train", str(run_dir / "config.yaml"), "--resume", str(run_dir)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run_dir / STATE}: corrupt run state; this "
        f"run cannot be resumed, start a new one\n"
    )


def test_resume_with_the_checkpoint_missing_is_refused(tmp_path, capsys, monkeypatch):
    from autoencoder.cli import main

    run_dir = fake_run(
        tmp_path,
        {
            "epoch": 3,
            "checkpoint": "last-0003.keras",
            "best_val_loss": 0.1,
            "best_checkpoint": "best-0002.weights.h5",
        },
        monkeypatch,
    )
    assert main(["train", str(run_dir / "config.yaml"), "--resume", str(run_dir)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run_dir / STATE}: names checkpoint last-0003.keras, which is missing: the "
        f"run is damaged (a file of it was moved or deleted) and cannot be resumed; put the file "
        f"back, or start a new run\n"
    )


# ---------------------------------------------------------------------------------------------
# Faults during training


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    real_write_with = atomic.write_with

    def disk_fills(path, writer):
        if Path(path).name != "last-0002.keras":
            return real_write_with(path, writer)

        def half_then_enospc(tmp):
            writer(tmp)
            data = Path(tmp).read_bytes()
            Path(tmp).write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

        return real_write_with(path, half_then_enospc)

    monkeypatch.setattr(atomic, "write_with", disk_fills)
    config = tiny(tmp_path, "train.epochs=2")
    with pytest.raises(UserError) as info:
        train_run(config)
    run_dir = next((tmp_path / "tiny").iterdir())
    ckpt = run_dir / "checkpoints"
    assert str(info.value) == (
        f"{ckpt / 'last-0002.keras'}: cannot write: No space left on device; the run is kept at "
        f"epoch 1: free disk space and resume with "
        f"`autoencoder resume {run_dir}`"
    )
    # Epoch 1 is whole: its state, history and checkpoint; no half-written file is left.
    state = read_state(run_dir)
    assert state["epoch"] == 1 and state["checkpoint"] == "last-0001.keras"
    assert history_epochs(run_dir) == [1]
    assert not list(run_dir.rglob(".tmp-*")) and not (ckpt / "last-0002.keras").exists()
    load_model(ckpt / "last-0001.keras")
    # Epoch 2's best weights may have been written before the failure, but state.json, the
    # commit, still names epoch 1's, and best.weights.h5 is still a copy of them.
    assert state["best_checkpoint"] == "best-0001.weights.h5"
    assert (ckpt / "best.weights.h5").read_bytes() == (ckpt / "best-0001.weights.h5").read_bytes()

    monkeypatch.setattr(atomic, "write_with", real_write_with)  # space freed
    train_run(config, resume=run_dir)
    assert history_epochs(run_dir) == [1, 2]
    state = read_state(run_dir)
    assert state["best_val_loss"] == min(r["val/loss"] for r in read_history(run_dir))
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        {
            "best.weights.h5",
            state["best_checkpoint"],
            "last-0002.keras",
            "state.json",
            "precision.json",  # the first start's precision, kept on resume
        }
    )


def test_ctrl_c_mid_epoch_leaves_a_resumable_run(tmp_path):
    """SIGINT during epoch 2: exit 130, one line with the resume command, which then works."""
    cfg = write_config(tmp_path / "c.yaml", tiny(tmp_path, "train.epochs=40", "data.limit=800"))
    # 40 epochs: on an idle machine a tiny epoch takes a fraction of a second, and the signal
    # must land while training is still under way.
    proc = start_training(
        cfg,
        text=True,
        # A shell may start background jobs with SIGINT ignored; Python then never sees Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for_first_epoch(proc, tmp_path, settle=0.2)  # into epoch 2
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    run_dir = next((tmp_path / "tiny").iterdir())
    done = read_state(run_dir)["epoch"]
    command = f"autoencoder resume {run_dir}"
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr == (
        f"interrupted after {done} completed epoch(s); the run is kept: resume with `{command}`\n"
    )
    assert 1 <= done < 40 and history_epochs(run_dir) == list(range(1, done + 1))
    result = cli(*command.split()[1:], "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert history_epochs(run_dir) == list(range(1, 41))


# ---------------------------------------------------------------------------------------------
# Model files: corrupt, truncated, or holding code


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_evaluate_a_damaged_model_file(finished_run, tmp_path, damage):
    run_dir = copy_run(finished_run, tmp_path)
    model = run_dir / "model.keras"
    data = model.read_bytes()
    model.write_bytes(b"not a zip" if damage == "garbage" else data[: len(data) // 2])
    assert_error(
        cli("evaluate", run_dir),
        f"{model}: cannot load model (ValueError); the file is corrupt or truncated: "
        f"train a new run to replace it",
    )


@pytest.mark.parametrize("command", ["evaluate", "plot"])
def test_evaluate_or_plot_a_run_without_its_model(tmp_path, capsys, command):
    """A run killed before its end has checkpoints but no model.keras yet."""
    from autoencoder.cli import main

    run_dir = runs.create_run_dir(tiny(tmp_path))
    assert main([command, str(run_dir)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run_dir / 'model.keras'}: model file not found; was the run finished? (train "
        f"writes it at the end; `autoencoder resume {run_dir}` finishes it)\n"
    )


def test_resume_from_a_truncated_checkpoint(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    ckpt = run_dir / "checkpoints" / read_state(run_dir)["checkpoint"]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert_error(
        cli(
            "train",
            run_dir / "config.yaml",
            "--set",
            "train.epochs=2",
            "--resume",
            run_dir,
            "--quiet",
        ),
        f"{ckpt}: cannot load model (ValueError); the file is corrupt or truncated: "
        f"train a new run to replace it",
    )
    assert history_epochs(run_dir) == [1]


def test_every_model_file_is_loaded_with_safe_mode():
    """Keras's loader is called in one place, model.load_model, with safe_mode=True."""
    import ast

    calls = []
    for path in sorted([*ROOT.glob("autoencoder/**/*.py"), *ROOT.glob("scripts/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert (
                    "load_model" not in {a.name for a in node.names}
                    or node.module == "autoencoder.model"
                ), f"{path.name} imports {node.module}"
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load_model"
            ):
                safe = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                calls.append((path.name, ast.unparse(node.func), safe.get("safe_mode")))
    assert calls == [("model.py", "keras.models.load_model", True)]


def test_model_with_python_code_is_refused_by_safe_mode(tmp_path):
    import keras

    path = tmp_path / "lambda.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)
    with pytest.raises(UserError) as info:
        load_model(path)
    assert str(info.value) == (
        f"{path}: refused: the model holds Python code (e.g. a Lambda "
        f"layer), which safe_mode=True does not run; save models built "
        f"from built-in layers"
    )


# ---------------------------------------------------------------------------------------------
# SIGKILL at random moments (the short version of scripts/stress_resume.py)


def test_stress_resume_short():
    result = subprocess.run(
        [sys.executable, "scripts/stress_resume.py", "--kills", "2", "--seed", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "kills: 2  resumes: " in result.stdout and result.stdout.rstrip().endswith("losses: 0")


def test_a_file_system_error_anywhere_is_one_line(monkeypatch, capsys):
    from autoencoder import cli

    def fail(args):
        raise PermissionError(13, "Permission denied", "outputs/q/20261122-010000/metrics.json")

    monkeypatch.setitem(cli.COMMANDS, "evaluate", (cli._evaluate_args, fail, "", ""))
    assert cli.main(["evaluate", "outputs/q/20261122-010000"]) == 2
    assert capsys.readouterr().err == (
        "error: outputs/q/20261122-010000/metrics.json: Permission denied; check that the path "
        "exists, is writable and that the disk has space\n"
    )
