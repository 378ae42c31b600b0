"""The TensorFlow runtime: environment settings that must precede its import, seeding, devices."""

from __future__ import annotations

import os

# TensorFlow leaves oneDNN off on some x86 CPUs (AMD here); on the 2-core development machines
# it made training 2-2.5x faster. These must be set before TensorFlow is first imported.
_ENV_DEFAULTS = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def tensorflow():
    """Import TensorFlow with the project's environment defaults (a user's own settings win)."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import tensorflow as tf

    return tf


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (keras.utils.set_random_seed)."""
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
