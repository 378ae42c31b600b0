"""One writer per run directory: the lock, its message, and that a killed writer leaves none."""

import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, cli, start_training, tiny, wait_for_first_epoch, write_config

from autoencoder import lock
from autoencoder.errors import UserError
from autoencoder.runs import read_history

HOLD = (
    "import sys, time\n"
    "from autoencoder import lock\n"
    "lock.acquire(sys.argv[1], 'autoencoder plot')\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def hold_in_subprocess(run_dir):
    """A process that holds run_dir's lock until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def in_use(run_dir, pid, command):
    """The line a second writer gets, as a pattern (the start time is the holder's)."""
    return (
        rf"{re.escape(str(run_dir))} is in use by process {pid} \({command}, since "
        rf"\d\d:\d\d:\d\d\); wait for it to finish, or stop it"
    )


def test_a_second_process_is_refused_with_who_holds_the_lock(tmp_path):
    proc = hold_in_subprocess(tmp_path)
    try:
        assert lock.holder(tmp_path)["pid"] == proc.pid
        with pytest.raises(UserError, match="^" + in_use(tmp_path, proc.pid, "autoencoder plot")):
            lock.acquire(tmp_path, "autoencoder evaluate")
    finally:
        proc.kill()
        proc.wait()
    # SIGKILL: the kernel released the lock with the process; nothing stale is left.
    assert lock.holder(tmp_path) is None
    with lock.hold(tmp_path, "autoencoder evaluate"):
        assert lock.holder(tmp_path)["command"] == "autoencoder evaluate"


def test_the_lock_is_reentrant_in_one_process_and_released_with_the_last_hold(tmp_path):
    with lock.hold(tmp_path, "autoencoder train"):
        with lock.hold(tmp_path, "autoencoder evaluate"):  # train's own evaluation
            pass
        probe = subprocess.run(
            [sys.executable, "-c", HOLD.replace("time.sleep(600)", ""), str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert probe.returncode == 1 and "is in use by process" in probe.stderr
        assert lock.holder(tmp_path)["command"] == "autoencoder train"
    assert lock.holder(tmp_path) is None


def test_evaluate_plot_embed_and_export_refuse_a_run_in_use_before_reading_it(tmp_path):
    # Not a finished run at all: the lock comes first, so the message is about the other writer.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: unfinished\n")
    proc = hold_in_subprocess(run_dir)
    try:
        for command in (["evaluate"], ["plot"], ["embed"], ["export", "--format", "onnx"]):
            result = cli(*command[:1], run_dir, *command[1:])
            assert result.returncode == 2, result.stderr
            assert re.fullmatch(
                "error: " + in_use(run_dir, proc.pid, "autoencoder plot") + "\n", result.stderr
            ), result.stderr
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml"]


@pytest.mark.slow
def test_resume_evaluate_and_plot_refuse_a_run_that_is_training(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny(tmp_path, "train.epochs=60", "data.limit=800"))
    proc = start_training(cfg, text=True)
    state = wait_for_first_epoch(proc, tmp_path, settle=0)
    assert state is not None, proc.communicate()[1][-3000:]
    run_dir = state.parent.parent
    config_text = (run_dir / "config.yaml").read_text()
    # All four at once: each answers before TensorFlow loads, while the training goes on.
    commands = {
        "resume": ["resume", run_dir, "--set", "train.epochs=61"],
        "train --resume": ["train", run_dir / "config.yaml", "--resume", run_dir],
        "evaluate": ["evaluate", run_dir],
        "plot": ["plot", run_dir],
    }
    others = {
        name: subprocess.Popen(
            [sys.executable, "-m", "autoencoder", *map(str, args)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    answers = {name: (p.communicate(timeout=120), p.returncode) for name, p in others.items()}
    still_training = proc.poll() is None
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert still_training, "the training ended before the other commands answered"
    line = "error: " + in_use(run_dir, proc.pid, "autoencoder train") + "\n"
    for name, ((out, err), status) in answers.items():
        assert status == 2 and re.fullmatch(line, err), (name, err)
        assert out == ""
    assert [row["epoch"] for row in read_history(run_dir)] == list(range(1, 61))
    assert (run_dir / "config.yaml").read_text() == config_text
    assert not (run_dir / "error.log").exists()


@pytest.mark.slow
def test_a_training_killed_with_sigkill_resumes_at_once(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny(tmp_path, "train.epochs=40", "data.limit=800"))
    proc = start_training(cfg, text=True)
    state = wait_for_first_epoch(proc, tmp_path, settle=0.2)
    assert state is not None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    run_dir = state.parent.parent
    assert (run_dir / ".lock").is_file()  # the record stays; the lock went with the process
    started = time.time()
    result = cli("resume", run_dir, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.time() - started < 300
    assert [row["epoch"] for row in read_history(run_dir)] == list(range(1, 41))


def test_a_lock_file_that_cannot_be_written_or_opened_is_read_or_taken_as_free(
    tmp_path, monkeypatch
):
    import builtins

    def read_only(path, mode="r", *args, **kwargs):  # a run of another user's, read-only
        if mode != "r":
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, mode, *args, **kwargs)

    proc = hold_in_subprocess(tmp_path)
    try:
        monkeypatch.setattr(lock, "open", read_only, raising=False)
        assert lock.holder(tmp_path)["pid"] == proc.pid  # held: seen through a read-only open
    finally:
        proc.kill()
        proc.wait()
    assert lock.holder(tmp_path) is None

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(lock, "open", unreadable, raising=False)
    assert lock.holder(tmp_path) is None  # nobody this process can know of: not damage
