"""tf.distribute for training: which strategy, and which process of a cluster writes the run.

Multi-worker clusters are described by TF_CONFIG (TensorFlow's own format); the chief (the
"chief" task, else worker 0) writes the run directory, the other workers write their copies of
the record into a scratch directory that is deleted afterwards, as TensorFlow's multi-worker
guide advises (every worker must save, since saving may need the others).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from autoencoder.errors import UserError, named
from autoencoder.runtime import gpus, native_stderr_muted, tensorflow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Role:
    """This process's place in a cluster: how many workers, which one, whether it is the chief."""

    workers: int = 1
    index: int = 0
    chief: bool = True


def role(mode: str) -> Role:
    """Read TF_CONFIG (without TensorFlow) when mode is multi_worker; a single process otherwise."""
    text = os.environ.get("TF_CONFIG")
    if mode != "multi_worker":
        if text and mode == "auto":
            log.warning(
                "TF_CONFIG is set but train.distribute is auto: this process trains alone, a "
                "run of its own; %s joins the cluster",
                named("--set train.distribute=multi_worker", "distribute='multi_worker'"),
            )
        return Role()
    if not text:
        raise UserError(
            "train.distribute is multi_worker but TF_CONFIG is not set; set it on every machine "
            'to {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": '
            '"worker", "index": N}} (docs/runs.md: Several GPUs or machines)'
        )
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"TF_CONFIG is not a cluster description ({type(exc).__name__}: {exc}); it needs "
            f"'cluster' with a 'worker' list and 'task' with 'type' and 'index'"
        ) from None
    _check_cluster(cluster, kind, index)
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return Role(workers=workers, index=index, chief=chief)


def _check_cluster(cluster, kind, index: int) -> None:
    """Refuse in one line a TF_CONFIG that parses but that TensorFlow would reject."""
    fix = 'e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not isinstance(cluster, dict) or not cluster.get("worker"):
        raise UserError(f"TF_CONFIG: 'cluster' needs a 'worker' list of host:port addresses; {fix}")
    for job, tasks in cluster.items():
        if job not in ("worker", "chief"):
            raise UserError(
                f"TF_CONFIG: cluster job '{job}': train.distribute multi_worker takes 'worker' "
                f"(and at most one 'chief') jobs; {fix}"
            )
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise UserError(
                f"TF_CONFIG: cluster '{job}' must be a list of host:port strings; {fix}"
            )
    if kind not in cluster:
        raise UserError(
            f"TF_CONFIG: task type '{kind}' is not a job of the cluster "
            f"({', '.join(cluster)}); {fix}"
        )
    if not 0 <= index < len(cluster[kind]):
        raise UserError(
            f"TF_CONFIG: task index {index}, but the cluster's '{kind}' list has "
            f"{len(cluster[kind])} address(es): 0 to {len(cluster[kind]) - 1}"
        )


def strategy(mode: str, timeout: int):
    """The tf.distribute strategy for train.distribute, or None to train on one device."""
    tf = tensorflow()
    if mode == "none" or (mode == "auto" and len(gpus()) < 2):
        return None
    if mode in ("auto", "mirrored"):
        # All local accelerators, else every logical CPU device (one, unless the CPU was split
        # with tf.config.set_logical_device_configuration, as the tests do).
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        found = tf.distribute.MirroredStrategy(devices)
    else:
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
        # Starting the cluster's devices probes CUDA (muted) and waits for every worker; the
        # watchdog starts first, to write to the stderr the user sees.
        with _cluster_start(timeout), native_stderr_muted():
            found = _multi_worker_strategy(tf)(communication_options=options)
    replicas = found.num_replicas_in_sync
    alone = " (one device: nothing is split)" if replicas == 1 else ""
    log.info("distribute: %s over %d replicas%s", type(found).__name__, replicas, alone)
    return found


@contextmanager
def _cluster_start(timeout: int):
    """Give up in one line when the cluster has not started within `timeout` seconds, and let
    Ctrl-C end the wait.

    TensorFlow waits for every worker inside C++ holding the GIL: no Python thread or signal
    handler of this process runs until it returns (and its preemption notifier takes SIGTERM).
    A small watchdog process says why and ends this one; Ctrl-C, at the default action for
    the wait, ends it at once. Nothing of the run is written before the cluster starts.
    """
    peers = ", ".join(_peers())
    log.info(
        "distribute: waiting for the cluster's other workers (%s), at most %d s "
        "(train.worker_timeout)",
        *(peers, timeout),
    )
    message = (
        f"the cluster did not start within {timeout} s (train.worker_timeout): not every worker "
        f"of TF_CONFIG connected ({peers}); start the same command with the same TF_CONFIG "
        f"cluster on each, or raise train.worker_timeout"
    )
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(timeout), message],
        stdin=subprocess.DEVNULL,
    )
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.SIG_DFL) if main else None
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()
        if main:
            signal.signal(signal.SIGINT, before)


# The watchdog: argv is the process to end, the seconds it may wait, and the message.
WATCHDOG = """
import os, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def stop(text):
    if os.getppid() == parent:
        sys.stderr.write("error: " + text + "\\n")
        sys.stderr.flush()
        os.kill(parent, signal.SIGKILL)
    sys.exit(0)
signal.signal(signal.SIGINT, lambda *_: stop("interrupted while waiting for the cluster; nothing was written"))
end = time.monotonic() + seconds
while time.monotonic() < end:
    if os.getppid() != parent:
        sys.exit(0)
    time.sleep(0.25)
stop(message)
"""


def _peers() -> list[str]:
    """The addresses of the other tasks in TF_CONFIG."""
    spec = json.loads(os.environ["TF_CONFIG"])
    me = (spec["task"]["type"], int(spec["task"]["index"]))
    return [
        address
        for job, tasks in spec["cluster"].items()
        for i, address in enumerate(tasks)
        if (job, i) != me
    ]


def _multi_worker_strategy(tf):
    """MultiWorkerMirroredStrategy whose reduce() accepts a nested structure, as Mirrored's does."""

    class MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        # Two Keras 3.15 calls this strategy does not take as MirroredStrategy does: fit builds
        # the model from one batch averaged across replicas with a single reduce of the whole
        # (input, target) tuple (the collective strategy wants one tensor), and it averages the
        # scalar metrics with axis=0 (a scalar has no axis 0). Reduce element by element, and
        # scalars across replicas only.
        def reduce(self, reduce_op, value, axis=None):
            one = super().reduce

            def each(v):
                local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                return one(reduce_op, v, axis if local.shape.rank else None)

            return tf.nest.map_structure(each, value)

    return MultiWorker


def check_batch(batch: int, images: int, replicas: int) -> None:
    """Refuse a first batch that does not split evenly over the replicas: Keras builds the
    model from it, adding the replicas' shares, which must be alike."""
    first = min(batch, images)
    if replicas < 2 or first % replicas == 0:
        return
    if batch > images:
        raise UserError(
            f"train.batch_size {batch} is more than the {images} training images, and "
            f"{images} do not split evenly over {replicas} replicas; use a batch of at most "
            f"{images - images % replicas} that is a multiple of {replicas}"
        )
    below = batch - batch % replicas
    choices = f"{below} or {below + replicas}" if below else str(replicas)
    raise UserError(
        f"train.batch_size {batch} does not split evenly over the {replicas} replicas of "
        f"train.distribute (each takes an equal share); use a multiple of {replicas}, e.g. "
        f"{choices} ({named('--set train.batch_size=N', 'batch_size=N')})"
    )


def lost_worker(exc: BaseException) -> bool:
    """Whether an error is TensorFlow saying a peer of the cluster went away or timed out."""
    tf = tensorflow()
    return isinstance(
        exc,
        (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.CancelledError,
            tf.errors.AbortedError,
        ),
    )
