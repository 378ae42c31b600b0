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
from dataclasses import dataclass

from autoencoder.errors import UserError
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
    if mode != "multi_worker":
        return Role()
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError(
            "train.distribute is multi_worker but TF_CONFIG is not set; set it on every machine "
            'to {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": '
            '"worker", "index": N}} (README: Training on several machines)'
        )
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"TF_CONFIG is not a cluster description ({type(exc).__name__}: {exc}); it needs "
            f"'cluster' with a 'worker' list and 'task' with 'type' and 'index'"
        ) from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return Role(workers=workers, index=index, chief=chief)


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
        with native_stderr_muted():  # starting the cluster's devices probes CUDA
            found = _multi_worker_strategy(tf)(communication_options=options)
    log.info("distribute: %s over %d replicas", type(found).__name__, found.num_replicas_in_sync)
    return found


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
