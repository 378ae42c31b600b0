"""Failures a user can cause or meet: one exact line, exit status 2 (130 for Ctrl-C), nothing lost.

Cases already covered elsewhere are not repeated here: config messages in test_config.py, data
files and the download checksum in test_data.py, the shapes CLI in test_model.py, NaN and
SIGKILL-then-resume in test_train.py.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoencoder import runs
from autoencoder.config import dump_config, load_config
from autoencoder.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "data.dataset=mnist_sample", "data.limit=320", "data.validation_split=0.25",
    "model.encoder=[{filters: 4, strides: 2}, {filters: 8, strides: 2}]",
    "model.latent_dim=8", "train.batch_size=32", "train.tensorboard=false",
]


def tiny(out, *extra):
    return load_config(None, [*TINY, f"output={out}", "name=tiny", *extra])


def write_config(path, config):
    path.write_text(dump_config(config))
    return path


def cli(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "autoencoder", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def assert_error(result, message):
    """Exit status 2 and stderr exactly `error: <message>`: one line, no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr == f"error: {message}\n"


def history_epochs(run_dir):
    return [row["epoch"] for row in runs.read_history(run_dir)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real one-epoch run to copy and damage."""
    from autoencoder.train import train

    return train(tiny(tmp_path_factory.mktemp("runs"), "train.epochs=1"), quiet=True)


def copy_run(run_dir, tmp_path):
    return Path(shutil.copytree(run_dir, tmp_path / "copy" / run_dir.name))


# ---------------------------------------------------------------------------------------------
# Config


def test_impossible_architecture_via_train_cli(tmp_path):
    from autoencoder.shapes import plan_model

    config = tiny(tmp_path / "out", "model.encoder=[{filters: 4, strides: 2}]",
                  "model.latent_dim=null",
                  "model.decoder=[{type: conv_transpose, filters: 4, strides: 4}]")
    with pytest.raises(UserError) as info:
        plan_model(config.model)
    message = str(info.value)
    assert message.startswith("decoder block 1 (model.decoder[0]): 14x14 -> 56x56")
    assert_error(cli("train", write_config(tmp_path / "c.yaml", config)), message)
    assert not (tmp_path / "out").exists()  # refused before any run directory is made


# ---------------------------------------------------------------------------------------------
# Run directories


def test_output_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("mine\n")
    config = tiny(blocker / "runs")
    result = cli("train", write_config(tmp_path / "c.yaml", config), "--quiet")
    assert_error(result, f"output: cannot create {blocker / 'runs' / 'tiny'}: Not a directory; "
                         f"set output: to a writable directory (e.g. --set output=/tmp/runs)")
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
    assert str(info.value) == (f"output: cannot create {locked / 'tiny'}: Permission denied; set "
                               f"output: to a writable directory (e.g. --set output=/tmp/runs)")


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
    for target in (tmp_path, tmp_path / "missing"):
        assert_error(cli("train", cfg, "--resume", target),
                     f"{target}: not a run directory (no config.yaml); pass a directory made by "
                     f"`autoencoder train`, e.g. outputs/<name>/<timestamp>")


def test_resume_with_a_different_config_shows_the_keys(tmp_path):
    run_dir = runs.create_run_dir(tiny(tmp_path))
    before = (run_dir / "config.yaml").read_text()
    # train.epochs may change (more epochs extend a run); seed and loss may not.
    other = tiny(tmp_path, "seed=3", "train.loss=mse", "train.epochs=20")
    assert_error(cli("train", write_config(tmp_path / "other.yaml", other), "--resume", run_dir),
                 f"--resume {run_dir}: the config differs from the run's in seed, train.loss; "
                 f"resume with the run's own config: {run_dir / 'config.yaml'}")
    assert (run_dir / "config.yaml").read_text() == before


# ---------------------------------------------------------------------------------------------
# Faults during training


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    from autoencoder.train import load_model, train

    real_write_with = runs.write_with

    def disk_fills(path, writer):
        if Path(path).name != "last-0002.keras":
            return real_write_with(path, writer)

        def half_then_enospc(tmp):
            writer(tmp)
            data = Path(tmp).read_bytes()
            Path(tmp).write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

        return real_write_with(path, half_then_enospc)

    monkeypatch.setattr(runs, "write_with", disk_fills)
    config = tiny(tmp_path, "train.epochs=2")
    with pytest.raises(UserError) as info:
        train(config, quiet=True)
    run_dir = next((tmp_path / "tiny").iterdir())
    ckpt = run_dir / "checkpoints"
    assert str(info.value) == (
        f"{ckpt / 'last-0002.keras'}: cannot write: No space left on device; the run is kept at "
        f"epoch 1: free disk space and resume with "
        f"`autoencoder train {run_dir / 'config.yaml'} --resume {run_dir}`")
    # Epoch 1 is whole: its state, history and checkpoint; no half-written file is left.
    state = runs.read_state(run_dir)
    assert state["epoch"] == 1 and state["checkpoint"] == "last-0001.keras"
    assert history_epochs(run_dir) == [1]
    assert not list(run_dir.rglob(".tmp-*")) and not (ckpt / "last-0002.keras").exists()
    load_model(ckpt / "last-0001.keras")
    # Epoch 2's best weights may have been written before the failure, but state.json, the
    # commit, still names epoch 1's, and best.weights.h5 is still a copy of them.
    assert state["best_checkpoint"] == "best-0001.weights.h5"
    assert (ckpt / "best.weights.h5").read_bytes() == (ckpt / "best-0001.weights.h5").read_bytes()

    monkeypatch.setattr(runs, "write_with", real_write_with)  # space freed
    train(config, resume=run_dir, quiet=True)
    assert history_epochs(run_dir) == [1, 2]
    state = runs.read_state(run_dir)
    assert state["best_val_loss"] == min(r["val/loss"] for r in runs.read_history(run_dir))
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        {"best.weights.h5", state["best_checkpoint"], "last-0002.keras", "state.json"})


def test_ctrl_c_mid_epoch_leaves_a_resumable_run(tmp_path):
    """SIGINT during epoch 2: exit 130, one line with the resume command, which then works."""
    cfg = write_config(tmp_path / "c.yaml", tiny(tmp_path, "train.epochs=4", "data.limit=800"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoencoder", "train", str(cfg), "--quiet"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # A shell may start background jobs with SIGINT ignored; Python then never sees Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if list(tmp_path.glob("tiny/*/checkpoints/state.json")):
            time.sleep(0.2)  # into epoch 2
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    run_dir = next((tmp_path / "tiny").iterdir())
    done = runs.read_state(run_dir)["epoch"]
    command = f"autoencoder train {run_dir / 'config.yaml'} --resume {run_dir}"
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr == (f"interrupted after {done} completed epoch(s); the run is kept: resume "
                      f"with `{command}`\n")
    assert 1 <= done < 4 and history_epochs(run_dir) == list(range(1, done + 1))
    result = cli(*command.split()[1:], "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert history_epochs(run_dir) == [1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# Model files: corrupt, truncated, or holding code


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_evaluate_a_damaged_model_file(finished_run, tmp_path, damage):
    run_dir = copy_run(finished_run, tmp_path)
    model = run_dir / "model.keras"
    data = model.read_bytes()
    model.write_bytes(b"not a zip" if damage == "garbage" else data[: len(data) // 2])
    assert_error(cli("evaluate", run_dir),
                 f"{model}: cannot load model (ValueError); the file is corrupt or truncated: "
                 f"train a new run to replace it")


def test_resume_from_a_truncated_checkpoint(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    ckpt = run_dir / "checkpoints" / runs.read_state(run_dir)["checkpoint"]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert_error(cli("train", run_dir / "config.yaml", "--set", "train.epochs=2", "--resume",
                     run_dir, "--quiet"),
                 f"{ckpt}: cannot load model (ValueError); the file is corrupt or truncated: "
                 f"train a new run to replace it")
    assert history_epochs(run_dir) == [1]


def test_model_with_python_code_is_refused_by_safe_mode(tmp_path):
    import keras

    from autoencoder.train import load_model

    path = tmp_path / "lambda.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)
    with pytest.raises(UserError) as info:
        load_model(path)
    assert str(info.value) == (f"{path}: refused: the model holds Python code (e.g. a Lambda "
                               f"layer), which safe_mode=True does not run; save models built "
                               f"from built-in layers")


# ---------------------------------------------------------------------------------------------
# SIGKILL at random moments (the short version of scripts/stress_resume.py)


def test_stress_resume_short():
    result = subprocess.run([sys.executable, "scripts/stress_resume.py", "--kills", "2",
                             "--seed", "1"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "kills: 2  resumes: " in result.stdout and result.stdout.rstrip().endswith("losses: 0")
