"""The TensorFlow runtime: its import (with settings that must precede it), seeding, precision."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from autoencoder.errors import UserError

# TensorFlow leaves oneDNN off on some x86 CPUs (AMD among them), and on those it is the faster
# path for convolutions. Both must be set before TensorFlow is first imported; a user's own
# values win (setdefault).
_ENV_DEFAULTS = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # 3: TensorFlow's C++ errors too; each also reaches Python as an exception, which the CLI
    # reports in one line (a lost worker, for one, logs a screenful from C++ first).
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "KERAS_BACKEND": "tensorflow",
}
INSTALL_HINT = "pip install tensorflow (or, in this project's folder, `pip install .`)"


def tensorflow():
    """Import TensorFlow and Keras with the project's environment defaults; return tf."""
    if sys.modules.get("tensorflow") is not None and sys.modules.get("keras") is not None:
        logging.getLogger("tensorflow").addFilter(_not_retracing)  # once: a filter is a set
        return sys.modules["tensorflow"]
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    backend = os.environ["KERAS_BACKEND"]
    if backend != "tensorflow":
        # tf.data and tf.image run every pipeline and metric, so another backend cannot work.
        raise UserError(
            f"KERAS_BACKEND is set to '{backend}'; this tool runs on the TensorFlow backend: "
            f"unset KERAS_BACKEND or set it to tensorflow"
        )
    try:
        with native_stderr_muted():
            import keras  # noqa: F401  (imports TensorFlow as its backend)
            import tensorflow as tf
    except ImportError as exc:
        raise UserError(
            f"TensorFlow cannot be imported ({exc}); install it: {INSTALL_HINT}"
        ) from None
    logging.getLogger("tensorflow").addFilter(_not_retracing)
    return tf


def _not_retracing(record: logging.LogRecord) -> bool:
    """False for TensorFlow's advice on tf.function retracing, which this tool cannot take."""
    # Each new model (a tune trial, a sweep's level, a run loaded by the API) and each new batch
    # shape given to predict traces Keras's predict function afresh; that is by design here,
    # and the warning's remedies (reduce_retracing, fixed shapes) are Keras's to apply.
    return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def native_stderr_muted():
    """Silence fd 2 for a block: TensorFlow's C++ side prints there, past Python and logging."""
    # Start-up notices and, on a machine without a GPU, the CUDA build's failed cuInit are
    # printed straight to fd 2, ignoring TF_CPP_MIN_LOG_LEVEL; Python errors still propagate.
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def gpus() -> list:
    """The GPUs TensorFlow sees (the first call initialises CUDA, quietly)."""
    tf = tensorflow()
    with native_stderr_muted():
        return tf.config.list_physical_devices("GPU")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (keras.utils.set_random_seed)."""
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)


def choose_precision(mode: str) -> str:
    """The static rule's Keras dtype policy for train.mixed_precision ("auto", "on" or "off").

    "auto": mixed_float16 on a GPU with tensor cores; on a CPU-only machine, mixed_bfloat16
    where the CPU multiplies bfloat16 natively and oneDNN is on, else float32. Where bfloat16 is
    native, training does not take this rule: it times float32 against mixed_bfloat16
    (precision.choose). Nothing global is set: the policy is passed to the model builder.
    """
    if mode == "off":
        return "float32"
    visible = gpus()
    if mode == "on":
        return "mixed_float16" if visible else "mixed_bfloat16"
    if visible:
        tf = tensorflow()
        for gpu in visible:
            details = tf.config.experimental.get_device_details(gpu)
            if details.get("compute_capability", (0,))[0] >= 7:  # Volta+: float16 tensor cores
                return "mixed_float16"
        return "float32"
    return cpu_precision(mode)


def cpu_precision(mode: str) -> str:
    """The policy the static rule picks where no GPU is visible; needs no TensorFlow."""
    if mode == "off":
        return "float32"
    if mode == "on":
        return "mixed_bfloat16"
    return "mixed_bfloat16" if native_bfloat16() else "float32"


def native_bfloat16() -> bool:
    """Whether TensorFlow can run bfloat16 on this CPU's own units: they exist and oneDNN is on."""
    # oneDNN runs bfloat16 convolutions on AVX512_BF16 / AMX units; without those units it
    # would emulate them, slower than float32.
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", _ENV_DEFAULTS["TF_ENABLE_ONEDNN_OPTS"])
    return onednn == "1" and cpu_has_bfloat16()


def cpu_has_bfloat16() -> bool:
    """True where /proc/cpuinfo lists a native bfloat16 unit (AVX512_BF16 or AMX-BF16)."""
    flags = set(_cpuinfo("flags").split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_count() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


CPUINFO = "/proc/cpuinfo"


def _cpuinfo(field: str) -> str:
    """The value of the first `field` line of /proc/cpuinfo; "" where there is none."""
    try:
        with open(CPUINFO) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""
