"""tf.distribute: mirrored over two logical CPUs, and two worker processes on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT, tiny, write_config
from test_lock import hold_in_subprocess

from autoencoder import distribute, pipeline
from autoencoder.errors import UserError
from autoencoder.runs import read_history, read_state


def test_role_comes_from_tf_config(monkeypatch):
    assert distribute.role("mirrored") == distribute.Role()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    for index, chief in ((0, True), (1, False)):
        spec = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
        assert distribute.role("multi_worker") == distribute.Role(2, index, chief)
    # With a "chief" task, worker 0 is not the chief.
    spec = {
        "cluster": {**cluster, "chief": ["127.0.0.1:3"]},
        "task": {"type": "worker", "index": 0},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
    assert distribute.role("multi_worker") == distribute.Role(3, 0, False)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not a cluster description"):
        distribute.role("multi_worker")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UserError, match="train.distribute is multi_worker but TF_CONFIG is not"):
        distribute.role("multi_worker")


def test_a_cluster_tensorflow_would_reject_is_one_line(monkeypatch, caplog):
    fix = '; e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}'
    cases = [
        (
            ("worker", 3, ["127.0.0.1:1"]),
            "TF_CONFIG: task index 3, but the cluster's 'worker' list has 1 address(es): 0 to 0",
        ),
        (("ps", 0, ["127.0.0.1:1"]), "TF_CONFIG: task type 'ps' is not a job of the cluster"),
        (
            ("worker", 0, "127.0.0.1:1"),
            "TF_CONFIG: cluster 'worker' must be a list of host:port",
        ),
        (
            ("worker", 0, []),
            "TF_CONFIG: 'cluster' needs a 'worker' list of host:port addresses" + fix,
        ),
    ]
    for (kind, index, workers), message in cases:
        spec = {"cluster": {"worker": workers}, "task": {"type": kind, "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
        with pytest.raises(UserError) as refused:
            distribute.role("multi_worker")
        assert str(refused.value).startswith(message), str(refused.value)
    # Set, but train.distribute left at auto: said, since this process then trains alone.
    with caplog.at_level("WARNING", logger="autoencoder"):
        assert distribute.role("auto") == distribute.Role()
    assert "TF_CONFIG is set but train.distribute is auto" in caplog.text


def test_a_batch_must_split_evenly_over_the_replicas():
    distribute.check_batch(32, 240, 2)
    distribute.check_batch(33, 240, 1)
    with pytest.raises(UserError) as refused:
        distribute.check_batch(33, 240, 2)
    assert str(refused.value) == (
        "train.batch_size 33 does not split evenly over the 2 replicas of train.distribute "
        "(each takes an equal share); use a multiple of 2, e.g. 32 or 34 (--set "
        "train.batch_size=N)"
    )
    with pytest.raises(UserError, match=r"use a multiple of 4, e.g. 4 \(--set"):
        distribute.check_batch(1, 240, 4)
    with pytest.raises(UserError, match=r"more than the 241 training images, and 241 do not"):
        distribute.check_batch(512, 241, 2)


SPLIT_CPU = """
import sys
from autoencoder.runtime import tensorflow
tf = tensorflow()
n = int(sys.argv[1])
if n > 1:  # before TensorFlow starts its devices: one physical CPU as n logical ones
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
from autoencoder.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_mirrored_over_two_cpus_matches_one_device(tmp_path):
    finals = {}
    for n in (1, 2):
        config = write_config(
            tmp_path / f"c{n}.yaml",
            tiny(tmp_path / f"out{n}", "train.epochs=2", "train.distribute=mirrored"),
        )
        result = subprocess.run(
            [sys.executable, "-c", SPLIT_CPU, str(n), "train", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # One replica a logical CPU: a fallback to one device would train alike and pass below.
        said = f"distribute: MirroredStrategy over {n} replicas"
        said += " (one device: nothing is split)\n" if n == 1 else "\n"
        assert said in result.stderr, result.stderr
        (run,) = (tmp_path / f"out{n}" / "tiny").iterdir()
        for name in ("model.keras", "metrics.json", "history.csv", "figures/reconstructions.png"):
            assert (run / name).is_file(), name
        finals[n] = read_history(run)[-1]
    # Same data, seed and global batch: the same training up to float summation order.
    for key in ("train/loss", "val/loss"):
        assert finals[2][key] == pytest.approx(finals[1][key], rel=1e-3), key


def test_a_batch_the_replicas_cannot_share_is_refused_before_the_run_is_made(tmp_path):
    config = write_config(
        tmp_path / "c.yaml",
        tiny(tmp_path / "out", "train.distribute=mirrored", "train.batch_size=33"),
    )
    result = subprocess.run(
        [sys.executable, "-c", SPLIT_CPU, "2", "train", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "error: train.batch_size 33 does not split evenly over the 2 replicas"
    )
    assert not (tmp_path / "out").exists()


def test_minutes_stop_a_mirrored_run_and_set_its_rate(tmp_path):
    # The time budget assigns the learning rate from a callback: a mirrored variable here.
    config = tiny(
        tmp_path / "out",
        "train.distribute=mirrored",
        "train.epochs=1000",
        "train.minutes=0.15",  # 9 s: two epochs even on a loaded host
        "train.schedule={kind: cosine, min_lr: 1.0e-5}",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SPLIT_CPU,
            "2",
            "train",
            str(write_config(tmp_path / "c.yaml", config)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distribute: MirroredStrategy over 2 replicas" in result.stderr, result.stderr
    (run,) = (tmp_path / "out" / "tiny").iterdir()
    history = read_history(run)
    assert 2 <= len(history) < 1000 and (run / "model.keras").is_file()
    # Time drove it (a thousandth of the steps would leave it at 1e-3) to its floor at the end.
    rates = [row["lr"] for row in history]
    assert rates[0] < 0.99e-3 and all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(1e-5, rel=1e-3)


def test_a_killed_workers_scratch_folder_is_cleared_by_the_next_worker(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead, live, young = (
        tmp_path / f"{pipeline.SCRATCH}{name}" for name in ("dead", "live", "young")
    )
    for folder in (dead, live, young):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / ".lock").write_text("{}")  # as a worker's lock leaves it when it dies
    (tmp_path / "autoencoder-other").mkdir()
    holder = hold_in_subprocess(live)
    try:
        an_hour_ago = time.time() - 3600
        for folder in (dead, live):
            os.utime(folder, (an_hour_ago, an_hour_ago))
        pipeline._clear_dead_scratch()
    finally:
        holder.kill()
        holder.wait()
    # The dead worker's folder goes; a live worker's, and one just made, stay; nothing else.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, young.name, "autoencoder-other"]
    )


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, ports, scratch):
    # A worker killed with SIGKILL leaves its scratch folder: in tmp_path, not the system's /tmp.
    scratch.mkdir(exist_ok=True)
    workers = []
    for index in range(len(ports)):
        spec = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "autoencoder", "--quiet", *map(str, args)],
                cwd=ROOT,
                env={**os.environ, "TF_CONFIG": json.dumps(spec), "TMPDIR": str(scratch)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return workers


def finish(workers, timeout=300):
    return [(w.wait(timeout=timeout), *w.communicate()) for w in workers]


def cluster_config(tmp_path, epochs):
    return write_config(
        tmp_path / "cluster.yaml",
        tiny(
            tmp_path / "out",
            "data.limit=400",
            f"train.epochs={epochs}",
            "train.distribute=multi_worker",
            "train.worker_timeout=20",
        ),
    )


def test_two_workers_train_into_one_run_directory(tmp_path):
    config = cluster_config(tmp_path, epochs=2)
    (chief, chief_out, chief_err), (worker, worker_out, _) = finish(
        start_workers(["train", config], free_ports(2), tmp_path / "tmp")
    )
    assert chief == 0 and worker == 0, chief_err[-3000:]
    (run,) = (tmp_path / "out" / "tiny").iterdir()  # one run directory: the chief's
    assert [r["epoch"] for r in read_history(run)] == [1, 2]
    for name in ("model.keras", "metrics.json", "checkpoints/state.json", "figures/loss.png"):
        assert (run / name).is_file(), name
    assert "test split, 1,000 images" in chief_out
    assert worker_out == "worker done; the chief wrote the run directory\n"
    # Never timed in a cluster: every worker must train in the one precision of the static rule.
    assert json.loads((run / "metrics.json").read_text())["precision/how"] == "rule"


def test_a_killed_worker_stops_the_cluster_and_a_restart_resumes(tmp_path):
    config = cluster_config(tmp_path, epochs=10)
    chief, worker = start_workers(["train", config], free_ports(2), tmp_path / "tmp")
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.glob("out/tiny/*/checkpoints/state.json")):
        assert chief.poll() is None and worker.poll() is None, chief.stderr.read()[-3000:]
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    killed = time.time()
    status, _, err = finish([chief], timeout=120)[0]
    waited = time.time() - killed
    (run,) = (tmp_path / "out" / "tiny").iterdir()
    done = read_state(run)["epoch"]
    assert status == 1 and 1 <= done < 10
    # Which the chief notices first depends on timing: the broken socket or the missed heartbeat.
    assert err in {
        f"error: lost contact with another worker ({why}); the run is kept at epoch {done}: "
        f"restart every worker with `autoencoder resume {run}`\n"
        for why in ("worker 1 stopped sending heartbeats", "its connection broke")
    }, err
    assert waited < 60  # train.worker_timeout 20 s, and TensorFlow's heartbeat check
    worker.wait()

    results = finish(start_workers(["resume", run], free_ports(2), tmp_path / "tmp"))
    assert [r[0] for r in results] == [0, 0], results[0][2][-3000:]
    assert [r["epoch"] for r in read_history(run)] == list(range(1, 11))  # each epoch once
    assert (run / "model.keras").is_file()


def test_a_chief_whose_peer_never_comes_gives_up_in_one_line(tmp_path):
    config = cluster_config(tmp_path, epochs=1)
    ports = free_ports(2)
    spec = {
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": 0},
    }
    started = time.time()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoencoder",
            "train",
            str(config),
            "--set",
            "train.worker_timeout=5",
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CONFIG": json.dumps(spec)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # TensorFlow holds the process in C++ while it waits: the watchdog ends it.
    assert result.returncode == -signal.SIGKILL and time.time() - started < 90
    assert result.stderr.splitlines()[-1] == (
        f"error: the cluster did not start within 5 s (train.worker_timeout): not every worker "
        f"of TF_CONFIG connected (127.0.0.1:{ports[1]}); start the same command with the same "
        f"TF_CONFIG cluster on each, or raise train.worker_timeout"
    )
    assert not (tmp_path / "out").exists()
