"""Convolutional autoencoders on TensorFlow / Keras 3, driven by YAML configs.

    import autoencoder as ae
    run = ae.train("configs/quickstart.yaml", epochs=5)

Importing this package does not import TensorFlow, nor the API's modules until a name of the
API is first used (autoencoder/api.py).
"""

__version__ = "0.1.0"

# The public API: names of autoencoder/api.py, imported on first use (PEP 562).
__all__ = [
    "Run",
    "UserError",
    "compare",
    "denoise_sweep",
    "detect_anomalies",
    "list_runs",
    "load_config",
    "load_run",
    "one_class_benchmark",
    "plan",
    "resume",
    "train",
    "tune",
]


def __getattr__(name: str):
    if name == "UserError":
        from autoencoder.errors import UserError

        return UserError
    if name == "tune":  # autoencoder/tuning, built on the API
        from autoencoder.tuning import tune

        return tune
    if name in __all__:
        from autoencoder import api

        return getattr(api, name)
    raise AttributeError(f"module 'autoencoder' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
