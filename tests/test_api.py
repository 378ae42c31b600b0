"""The Python API: `import autoencoder as ae`, the README's example, and a Run's methods."""

import importlib
import logging
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, TINY

import autoencoder as ae
from autoencoder.errors import UserError, reader


def readme_example() -> str:
    """The Python block of the README's "From Python" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_every_name_the_api_docs_use_is_there():
    # The names docs/api.md and the README call as ae.<name>(...) or ae.<Name>, and every public
    # function of api.py: a name missing from __all__ is an AttributeError for the user.
    text = (ROOT / "docs/api.md").read_text() + (ROOT / "README.md").read_text()
    # Less what the docs say the API is not ("`ae.list_runs`, not `ae.runs`").
    named = set(re.findall(r"\bae\.([A-Za-z_]+)", text)) - {"runs", "denoise", "anomaly"}
    from autoencoder import api

    public = {
        name for name, value in vars(api).items() if callable(value) and not name.startswith("_")
    }
    public = {name for name in public if getattr(api, name).__module__ == api.__name__}
    assert {"detect_anomalies", "denoise_sweep", "one_class_benchmark", "train"} <= named & public
    # Importing every module first: Python binds a submodule on its package by its name, so an
    # API name that is also a module's (denoise, anomaly) would turn into the module.
    for path in (ROOT / "autoencoder").rglob("*.py"):
        if path.name == "__main__.py":  # runs the CLI
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        importlib.import_module(".".join(p for p in parts if p != "__init__"))
    missing = sorted(name for name in named | public if not callable(getattr(ae, name, None)))
    assert missing == []
    assert public <= set(ae.__all__)
    assert named <= set(ae.__all__)


@pytest.mark.slow
def test_the_readme_example_trains_reconstructs_encodes_and_reloads(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    checks = (
        "\nassert x.shape == recon.shape == (8, 28, 28, 1) and labels.shape == (8,)\n"
        "assert codes.shape == (8, 22, 22, 8)\n"
        "assert run.status == 'finished' and len(run.history) == 3\n"
        "assert 20 < run.metrics['test/psnr'] < 60\n"
        "assert 0 < float(((recon - x) ** 2).mean()) < float(((x - x.mean()) ** 2).mean())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", readme_example() + checks],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    first, second = result.stdout.splitlines()
    assert first.startswith(f"outputs/quickstart/{run_dir.name} ")
    assert second == "finished 3 (8, 28, 28, 1)"
    assert "trained 3 epochs" in result.stderr  # logging set up for a caller that had none


def test_keywords_find_their_section_and_mistakes_are_one_line():
    config = ae.load_config(None, {"model.latent_dim": 16}, epochs=3, dataset="mnist_sample")
    assert (config.train.epochs, config.data.dataset, config.model.latent_dim) == (
        3,
        "mnist_sample",
        16,
    )
    assert ae.load_config({"train": {"epochs": 4}}, name="x").train.epochs == 4
    with pytest.raises(UserError, match=r"^epoch=: no config section has a field of that name"):
        ae.load_config(None, epoch=3)
    with pytest.raises(UserError, match=r"^kind=: several sections have it \(model.kind or "):
        ae.load_config(None, kind="vae")
    with pytest.raises(UserError) as refused:
        ae.load_config(None, {"train.epochs": 0})
    assert str(refused.value) == "train.epochs=0: train.epochs: must be a positive integer, got 0"


def test_mistakes_name_the_arguments_given_not_the_command_lines_flags(tmp_path):
    config = ae.load_config(None, [*TINY, f"output={tmp_path}"])
    space = {"train.optimizer.learning_rate": {"log": [1e-4, 1e-2]}}
    refusals = {
        lambda: ae.load_config(None, ["train.epochs"]): (
            "train.epochs: expected KEY=VALUE, e.g. 'train.epochs=5' or {'train.epochs': 5}"
        ),
        # 0 is no number of trials (not "the default", 20 of them); "2" is no number at all.
        lambda: ae.tune(config, space, trials=0): (
            "trials=0: pass a whole number of trials, 1 or more, or None for tune.trials"
        ),
        lambda: ae.tune(config, space, trials="2"): "trials='2': pass a whole number of trials",
        lambda: ae.tune(config, space, trials=-1): "trials=-1: pass a whole number of trials",
        lambda: ae.tune(config, space, timeout=60): (
            "timeout=60: expected a duration such as 90s, 60m or 2h"
        ),
        lambda: ae.train(config, input_shape=[32, 32, 1]): (
            "model.input_shape is 32x32x1 but the data gives the model 28x28x1 images "
            "(mnist_sample); pass input_shape=[28, 28, 1] (or input_shape=None) to plan from"
        ),
        lambda: ae.detect_anomalies(config): (
            "anomaly.normal: not set; list the normal classes, e.g. normal=[0] (the other"
        ),
        lambda: ae.tune(config, space, resume=tmp_path): (
            f"resume='{tmp_path}': not a study folder (no study.yaml)"
        ),
    }
    for call, message in refusals.items():
        with pytest.raises(UserError) as refused:
            call()
        assert str(refused.value).startswith(message), str(refused.value)
    assert list(tmp_path.iterdir()) == []
    # The command line calls the same functions: its user sees its own flags.
    with reader("command line"), pytest.raises(UserError) as refused:
        ae.load_config(None, ["train.epochs"])
    assert str(refused.value) == "--set train.epochs: expected KEY=VALUE, e.g. --set train.epochs=5"
    with reader("command line"), pytest.raises(UserError) as refused:
        ae.tune(config, space, timeout=60)
    assert str(refused.value) == "--timeout 60: expected a duration such as 90s, 60m or 2h"


def test_a_mapping_for_a_section_is_merged_into_the_sources():
    preset = ROOT / "configs/bottleneck32.yaml"  # mnist, learning rate 0.002, cosine schedule
    base = ae.load_config(preset)
    config = ae.load_config(preset, {"train": {"epochs": 5}}, data={"limit": 500})
    assert (config.train.epochs, config.data.limit) == (5, 500)
    assert config.data.dataset == base.data.dataset == "mnist"
    assert config.train.optimizer == base.train.optimizer and config.train.schedule.kind == "cosine"
    schedule = ae.load_config(preset, schedule={"min_lr": 0.0}).train.schedule
    assert (schedule.kind, schedule.min_lr) == ("cosine", 0.0)
    # A free mapping (the search space) and a list are values, set whole.
    space = {"train.optimizer.learning_rate": {"log": [1e-4, 1e-2]}}
    assert ae.load_config(preset, {"tune": {"space": space}}).tune.space == space
    encoder = ae.load_config(preset, {"model": {"encoder": [{"filters": 4, "strides": 2}]}})
    assert len(encoder.model.encoder) == 1


def test_a_config_passed_back_is_the_same_config():
    config = ae.load_config(ROOT / "configs/unet_denoise.yaml", dataset="mnist_sample")
    assert ae.load_config(config) == config
    again = ae.load_config(config, epochs=2)
    assert again.train.epochs == 2 and again.model == config.model and again.data == config.data


def test_plan_is_the_shapes_table_as_data():
    plan = ae.plan(ROOT / "configs/quickstart.yaml")
    assert plan.layers[0].input_shape == (28, 28, 1) and plan.layers[-1].output_shape == (28, 28, 1)
    assert plan.total_params == 12_785  # the Keras tutorial model (configs/quickstart.yaml)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    return ae.train(None, [*TINY, f"output={out}", "name=tiny"], epochs=1)


@pytest.mark.slow
def test_a_run_in_memory_and_loaded_again_agree(tiny_run):
    x, y = tiny_run.images("test", 5)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32 and y.shape == (5,)
    recon = tiny_run.reconstruct(x)
    # The model's own output, clipped to [0, 1] where it becomes an image.
    raw = tiny_run.model.predict(x, verbose=0)
    np.testing.assert_allclose(recon, np.clip(raw, 0, 1), atol=1e-6)
    codes = tiny_run.encode(x)
    assert codes.shape == (5, 8)  # TINY's 8-number code
    assert tiny_run.decode(codes).shape == x.shape
    loaded = ae.load_run(tiny_run.path)
    assert loaded.status == "finished" and loaded.state["epoch"] == 1
    assert [row["epoch"] for row in loaded.history] == [1]
    np.testing.assert_allclose(loaded.encode(x), codes, atol=1e-5)
    # uint8 pixels are scaled as the data is; one image is a batch of one.
    pixels = (x * 255).round().astype(np.uint8)
    np.testing.assert_allclose(loaded.reconstruct(pixels[0, ..., 0]), recon[:1], atol=2e-2)


@pytest.mark.slow
def test_a_run_refuses_images_it_cannot_take(tiny_run):
    with pytest.raises(UserError, match=r"^x: images are 32x32 but the run's model takes 28x28"):
        tiny_run.reconstruct(np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(UserError, match=r"^x: values run from 0 to 255; pass uint8"):
        tiny_run.reconstruct(np.linspace(0, 255, 2 * 28 * 28).reshape(2, 28, 28))
    with pytest.raises(UserError, match="trained without data.noise"):
        tiny_run.reconstruct(np.zeros((1, 28, 28, 1), np.float32), noise=True)


@pytest.mark.slow
def test_evaluate_and_resume_through_the_api(tiny_run, tmp_path):
    run = ae.load_run(shutil.copytree(tiny_run.path, tmp_path / "copy"))
    metrics = run.evaluate("val")
    # One epoch of a tiny model: far from good, but a real figure, stored as printed.
    assert 0 < metrics["val/mse"] < 0.5 and run.metrics["val/mse"] == metrics["val/mse"]
    assert metrics["val/psnr"] == pytest.approx(10 * np.log10(1 / metrics["val/mse"]), abs=0.01)
    before = run.model
    np.random.seed(123)
    expected = np.random.RandomState(123).rand(3)
    resumed = ae.resume(run, epochs=2)
    # Training seeds NumPy's global generator for itself; the caller's draws go on unchanged.
    np.testing.assert_array_equal(np.random.rand(3), expected)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    # The Run given is brought up to date, not left with the 1-epoch config and model.
    assert resumed is run and run.config.train.epochs == 2 and run.model is not before
    assert resumed.model.count_params() == ae.plan(resumed.config).total_params
    with pytest.raises(UserError) as refused:
        ae.resume(run.path, 1)
    assert "cannot resume with train.epochs=1: the run has trained 2 epochs" in str(refused.value)
    with pytest.raises(UserError) as refused:
        ae.resume(run.path, "x")
    assert str(refused.value).endswith("train.epochs: must be an integer, got 'x'")
    # Minutes the two epochs have already spent: recorded, and nothing more trains.
    again = ae.resume(run.path, None, 0.001)  # minutes, third as in the docs
    assert again.config.train.minutes == 0.001 and len(again.history) == 2


def test_load_run_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        ae.load_run(tmp_path)
    # A folder of runs, a config file: the API's calls that go on, not the commands.
    (tmp_path / "tiny" / "20261206-101500").mkdir(parents=True)
    (tmp_path / "tiny" / "20261206-101500" / "config.yaml").write_text("name: tiny\n")
    with pytest.raises(UserError) as refused:
        ae.load_run(tmp_path / "tiny")
    assert str(refused.value).endswith(
        f"e.g. {tmp_path / 'tiny' / '20261206-101500'} (`ae.list_runs('{tmp_path / 'tiny'}')` "
        f"lists them)"
    )
    with pytest.raises(UserError) as refused:
        ae.load_run(tmp_path / "tiny" / "20261206-101500" / "config.yaml")
    assert f"`ae.train('{tmp_path / 'tiny' / '20261206-101500' / 'config.yaml'}')` starts" in str(
        refused.value
    )


def test_logging_is_set_up_only_for_a_caller_without_any(monkeypatch):
    from autoencoder.api import _caller_state

    package, root = logging.getLogger("autoencoder"), logging.getLogger()
    # Start as a fresh interpreter would (the CLI, run in-process by other tests, adds its own).
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "level", logging.NOTSET)
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    with _caller_state():  # the caller has a root handler: nothing is added
        assert package.handlers == []
    monkeypatch.setattr(root, "handlers", [])
    with _caller_state():
        assert len(package.handlers) == 1 and package.level == logging.INFO
    assert package.handlers == [] and package.level == logging.NOTSET


@pytest.mark.slow
def test_arrays_of_every_usual_form_and_one_line_for_the_rest(tiny_run, tmp_path):
    x, _ = tiny_run.images("test", 4)
    batch = tiny_run.reconstruct(x)
    # One image, with or without its channel axis: a batch of one, the same output.
    np.testing.assert_allclose(tiny_run.reconstruct(x[0]), batch[:1], atol=1e-6)
    np.testing.assert_allclose(tiny_run.reconstruct(x[0, ..., 0]), batch[:1], atol=1e-6)
    # One RGB image for a grey model: its luma, as predict converts files.
    rgb = np.repeat(x[0], 3, axis=-1)
    np.testing.assert_allclose(tiny_run.reconstruct(rgb), batch[:1], atol=1e-5)
    codes = tiny_run.encode(x)
    np.testing.assert_allclose(tiny_run.decode(codes[0]), tiny_run.decode(codes)[:1], atol=1e-6)
    # A run not made by `autoencoder anomaly`: scored by its anomaly.score (MSE), flagged by nothing.
    scored = tiny_run.anomaly_scores(x)
    assert scored["kind"] == "mse" and scored["threshold"] is None and scored["flagged"] is None
    np.testing.assert_allclose(scored["score"], ((batch - x) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    # A number adds the noise predict --noise would (denoise.kind) to a run trained without.
    noise = tiny_run._noisy_config(0.5).data.noise
    assert (noise.kind, noise.level, noise.clip) == ("gaussian", 0.5, True)
    assert np.abs(tiny_run.reconstruct(x, noise=0.5) - batch).max() > 1e-4  # the input changed
    path = tiny_run.path
    saved = tmp_path / "x.npy"
    np.save(saved, x)
    refusals = {
        lambda: tiny_run.reconstruct(np.concatenate([rgb, rgb[..., :1]], -1)): (
            "x: images of 4 channels, but the run's model takes 1; drop the alpha channel: "
            "x[..., :3]"
        ),
        lambda: tiny_run.reconstruct(x[:0]): "x: no images (shape (0, 28, 28, 1))",
        lambda: tiny_run.reconstruct(np.full((1, 28, 28), np.nan)): (
            "x: holds NaN or infinite values"
        ),
        lambda: tiny_run.reconstruct(x, batch_size=0): (
            "batch_size=0: pass a positive whole number"
        ),
        lambda: tiny_run.reconstruct(x, noise="high"): (
            "noise='high': pass True (the run's own noise), a level such as 0.3 (0 or more), "
            "or False"
        ),
        # Not the config's --set wording: the caller passed an argument, not a --set.
        lambda: tiny_run.reconstruct(x, noise=-0.3): "noise=-0.3: pass True (the run's own",
        lambda: tiny_run.anomaly_scores(x, threshold=float("nan")): (
            "threshold=nan: pass a number, 0 or more, or None"
        ),
        lambda: tiny_run.reconstruct(x, noise=True): (
            f"{path}: the run was trained without data.noise, so it has no noise of its own; "
            f"pass a level (noise=0.3 adds denoise.kind's noise) or noise=False"
        ),
        lambda: tiny_run.decode(codes[:, :4]): (
            "z: codes of shape (4, 4), but the decoder takes (N, 8) codes, as encode gives them"
        ),
        lambda: tiny_run.images("testing"): "split='testing': choose 'train', 'val' or 'test'",
        lambda: tiny_run.evaluate("testing"): "split='testing': choose 'train', 'val' or 'test'",
        lambda: tiny_run.images("test", 0): (
            "count=0: pass a positive number of images, or None for all"
        ),
        lambda: tiny_run.predict(x, tmp_path / "out"): (
            "inputs: an array; predict reads files, folders and .npy/.npz files: for arrays use "
            "run.reconstruct(x), or save them with np.save first"
        ),
        lambda: ae.list_runs(path.parent, sort="PSNR"): (
            "sort='PSNR': not a column; choose one of "
        ),
        lambda: ae.compare(path): (
            "run_dirs: one run given; pass a list of two or more runs to compare"
        ),
        lambda: ae.load_run(None): "run_dir: expected a path (str or Path), got NoneType",
        # One image of another size is one image, not 32 grey images 32 wide by 3.
        lambda: tiny_run.reconstruct(np.zeros((32, 32, 3), np.uint8)): (
            "x: images are 32x32 but the run's model takes 28x28"
        ),
        lambda: tiny_run.reconstruct([x[0], np.zeros((32, 32, 1))]): (
            "x: images of different sizes; pass one size at a time"
        ),
        lambda: tiny_run.embed(probe_limit=-5): "probe_limit=-5: pass a number of images, 100",
        lambda: tiny_run.embed(probe_limit=0): "probe_limit=0: pass a number of images, 100",
        lambda: ae.train(np.zeros((4, 28, 28))): "config: a ndarray; pass a YAML file, a mapping",
        lambda: ae.load_config([1, 2]): "config: a list; pass a YAML file, a mapping",
        lambda: tiny_run.predict(path, tmp_path / "out", threshold=-1): (
            "threshold=-1: pass a number, 0 or more, or None"
        ),
        lambda: tiny_run.decode(np.full((2, 8), np.nan)): "z: holds NaN or infinite values",
        lambda: tiny_run.decode(np.zeros((0, 8))): "z: no codes (shape (0, 8)); pass one code",
        lambda: tiny_run.decode("codes"): "z: an array of <U5, not of codes",
        lambda: tiny_run.decode([[0.0] * 8, [0.0]]): "z: rows of different lengths",
        # Not the real part alone, silently: complex numbers are no pixels.
        lambda: tiny_run.reconstruct(x.astype(np.complex64)): (
            "x: an array of complex64, not of pixel values"
        ),
        lambda: tiny_run.predict([], tmp_path / "out"): (
            "inputs: none given; pass image files, folders or .npy/.npz files"
        ),
        # A string is no yes: "no" replaced the earlier outputs.
        lambda: tiny_run.export(overwrite="no"): "overwrite='no': pass True or False",
        lambda: tiny_run.predict(saved, tmp_path / "out", skip_bad="yes"): (
            "skip_bad='yes': pass True or False"
        ),
        lambda: ae.train(tiny_run): "config: a Run; pass its config (run.config) to train",
        lambda: tiny_run.export("onx"): (
            "format='onx': unknown; choose one of saved_model, litert, onnx"
        ),
        lambda: tiny_run.predict(saved, saved): (
            f"out='{saved}': is a file; give a folder for the outputs"
        ),
    }
    for call, message in refusals.items():
        with pytest.raises(UserError) as refused:
            call()
        assert str(refused.value).startswith(message), str(refused.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_run_follows_its_folder_and_keeps_the_callers_random_state(tiny_run, tmp_path):
    import random

    copy = shutil.copytree(tiny_run.path, tmp_path / "copy")
    run = ae.load_run(copy)
    x, _ = run.images("test", 4)
    before = run.reconstruct(x)
    # Loading a model, evaluating and plotting leave the caller's draws as they were.
    for call in (lambda: ae.load_run(copy).model, run.evaluate, run.plot):
        random.seed(1)
        np.random.seed(1)
        call()
        assert (random.random(), np.random.rand()) == (
            random.Random(1).random(),
            np.random.RandomState(1).rand(),
        )
    # Resumed by its path (another cell, another process): this Run sees the new config and model.
    ae.resume(copy, epochs=2)
    assert run.config.train.epochs == 2 and len(run.history) == 2
    assert np.abs(run.reconstruct(x) - before).max() > 1e-4
    # A folder gone (or a relative path from another working directory) is said, not taken for
    # an unfinished run.
    shutil.rmtree(copy)
    for read in (lambda: run.status, lambda: run.history, lambda: run.config):
        with pytest.raises(UserError, match="no such folder"):
            read()


def test_numpy_values_in_a_config_and_a_space_without_its_space_key(tmp_path):
    from autoencoder.tuning import study as tune_study

    config = ae.load_config(None, {"model.input_shape": np.array([28, 28, 1])}, seed=np.int64(3))
    assert tuple(config.model.input_shape) == (28, 28, 1) and config.seed == 3
    # The space itself, as a mapping of config keys, is the space file's `space:` section.
    space = {"train.optimizer.learning_rate": {"log": [1e-4, 1e-2]}}
    setup = tune_study.prepare(None, [*TINY, f"output={tmp_path}"], space=space)
    assert [p.key for p in setup.params] == ["train.optimizer.learning_rate"]
