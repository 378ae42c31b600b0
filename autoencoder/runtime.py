"""The TensorFlow runtime: environment settings that must precede its import, seeding, devices."""

from __future__ import annotations

import os
import sys

# TensorFlow leaves oneDNN off on some x86 CPUs (AMD here); on the 2-core development machines
# it made training 2-2.5x faster. These must be set before TensorFlow is first imported.
_ENV_DEFAULTS = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def tensorflow():
    """Import TensorFlow with the project's environment defaults (a user's own settings win)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ["KERAS_BACKEND"] = "tensorflow"  # tf.data and tf.image are used throughout
    # TensorFlow's C++ side prints start-up notices ("oneDNN custom operations are on", absl's
    # "log messages before InitializeLog") straight to fd 2, ignoring TF_CPP_MIN_LOG_LEVEL. Mute
    # fd 2 for the import alone; Python errors raised by the import still reach the user.
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401  (imports TensorFlow as its backend)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tf


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (keras.utils.set_random_seed)."""
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)


def configure_precision(mode: str) -> str:
    """Set Keras's global dtype policy and return its name.

    "auto": mixed_float16 on a GPU with tensor cores; on a CPU-only machine, mixed_bfloat16
    where the CPU multiplies bfloat16 natively and oneDNN is on, else float32. Variables, the
    loss and the output layer stay float32 either way.
    """
    tf = tensorflow()
    import keras

    policy = "float32"
    gpus = tf.config.list_physical_devices("GPU")
    if mode == "on":
        policy = "mixed_float16" if gpus else "mixed_bfloat16"
    elif mode == "auto" and gpus:
        for gpu in gpus:
            major = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0,))[
                0
            ]
            if major >= 7:  # Volta and later have float16 tensor cores
                policy = "mixed_float16"
    elif mode == "auto" and cpu_has_bfloat16() and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1":
        # oneDNN runs bfloat16 convolutions on AVX512_BF16 / AMX units at about twice the float32
        # rate (1.4-1.8x faster training measured here); without those units it would emulate
        # them, slower than float32.
        policy = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


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
