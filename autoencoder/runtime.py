"""The TensorFlow runtime: its import (with settings that must precede it), seeding, precision."""

from __future__ import annotations

import contextlib
import os
import sys

from autoencoder.errors import UserError

# TensorFlow leaves oneDNN off on some x86 CPUs (AMD among them), and on those it is the faster
# path for convolutions. Both must be set before TensorFlow is first imported; a user's own
# values win (setdefault).
_ENV_DEFAULTS = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
}
INSTALL_HINT = "pip install tensorflow (or, in this project's folder, `pip install .`)"


def tensorflow():
    """Import TensorFlow and Keras with the project's environment defaults; return tf."""
    if sys.modules.get("tensorflow") is not None and sys.modules.get("keras") is not None:
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
        with _native_stderr_muted():
            import keras  # noqa: F401  (imports TensorFlow as its backend)
            import tensorflow as tf
    except ImportError as exc:
        raise UserError(
            f"TensorFlow cannot be imported ({exc}); install it: {INSTALL_HINT}"
        ) from None
    return tf


@contextlib.contextmanager
def _native_stderr_muted():
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


def muted_native_stderr():
    """A block whose C++ lines on fd 2 are silenced (converters, interpreters); errors still rise."""
    return _native_stderr_muted()


def gpus() -> list:
    """The GPUs TensorFlow sees (the first call initialises CUDA, quietly)."""
    tf = tensorflow()
    with _native_stderr_muted():
        return tf.config.list_physical_devices("GPU")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (keras.utils.set_random_seed)."""
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)


def choose_precision(mode: str) -> str:
    """The Keras dtype policy name for train.mixed_precision ("auto", "on" or "off").

    "auto": mixed_float16 on a GPU with tensor cores; on a CPU-only machine, mixed_bfloat16
    where the CPU multiplies bfloat16 natively and oneDNN is on, else float32. Nothing global is
    set: the policy is passed to the model builder.
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
    if cpu_has_bfloat16() and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1":
        # oneDNN runs bfloat16 convolutions on AVX512_BF16 / AMX units at about twice the
        # float32 rate; without those units it would emulate them, slower than float32.
        return "mixed_bfloat16"
    return "float32"


def cpu_has_bfloat16() -> bool:
    """True where /proc/cpuinfo lists a native bfloat16 unit (AVX512_BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False
