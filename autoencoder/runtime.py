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
    """Set Keras's global dtype policy: "auto" is mixed_float16 on a GPU with tensor cores."""
    tf = tensorflow()
    import keras

    policy = "float32"
    if mode == "on":
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    elif mode == "auto":
        for gpu in tf.config.list_physical_devices("GPU"):
            major = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0,))[0]
            if major >= 7:  # Volta and later have float16 tensor cores
                policy = "mixed_float16"
    keras.mixed_precision.set_global_policy(policy)
    return policy
