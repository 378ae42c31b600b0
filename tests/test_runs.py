"""Run directories opened again: a run whose model file or data no longer fits is refused.

Every refusal is one line, exit status 2, before TensorFlow is imported, and leaves the run
directory (and the runs beside it) as it was.
"""

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import assert_error, cli_without_tensorflow, tiny

from autoencoder import data, runs, runtime
from autoencoder.data import images
from autoencoder.errors import UserError
from autoencoder.model import saved_input_shape


@pytest.fixture(scope="module")
def stale_run(tmp_path_factory):
    """A finished run on a folder of 28x28 grey digits, whose folder now holds 32x32 colour."""
    from autoencoder.pipeline import train_run

    root = tmp_path_factory.mktemp("stale")
    raw = data.load_sample()
    folder = root / "digits"
    for i, (image, label) in enumerate(zip(raw.x_train[:200], raw.y_train[:200])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        images.write_png(folder / str(label) / f"{i:03d}.png", image[..., None])
    config = tiny(root / "runs", "data.dataset=folder", f"data.path={folder}", "train.epochs=1")
    run_dir, _ = train_run(config)
    # The user's folder changes under the run: each digit padded to 32x32 and coloured.
    for path in folder.rglob("*.png"):
        grey = np.pad(images.read_image(path)[..., 0], 2)
        images.write_png(path, np.stack([grey, grey // 2, 255 - grey], axis=-1))
    return run_dir, folder


def snapshot(root):
    """Every file under root with its size and modification time (not the lock's record)."""
    files = [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_saved_input_shape_reads_the_model_file_without_tensorflow(stale_run, tmp_path):
    run_dir, _ = stale_run
    assert saved_input_shape(run_dir / "model.keras") == (28, 28, 1)
    assert saved_input_shape(run_dir / "encoder.keras") == (28, 28, 1)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert saved_input_shape(tmp_path / "junk.keras") is None
    assert saved_input_shape(tmp_path / "missing.keras") is None


def _stale_message(run_dir, folder):
    return (
        f"{run_dir}: the run's model takes 28x28x1 images but its data ({folder}) now gives "
        f"32x32x3; put back the data it was trained on, or train a new run on this data "
        f"(autoencoder train)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["resume", "RUN", "--set", "train.epochs=2"],
        ["train", "RUN/config.yaml", "--resume", "RUN", "--set", "train.epochs=2"],
        ["evaluate", "RUN"],
        ["evaluate", "RUN", "--split", "val"],
        ["plot", "RUN"],
        ["embed", "RUN"],
    ],
    ids=["resume", "train --resume", "evaluate", "evaluate val", "plot", "embed"],
)
def test_a_run_whose_data_changed_is_refused_before_tensorflow(stale_run, argv):
    run_dir, folder = stale_run
    runs = run_dir.parent.parent
    before = snapshot(runs)
    result, loaded = cli_without_tensorflow(*(a.replace("RUN", str(run_dir)) for a in argv))
    assert_error(result, _stale_message(run_dir, folder))
    assert not loaded
    assert snapshot(runs) == before  # nothing written, no new run directory


@pytest.fixture
def edited_run(stale_run, tmp_path):
    """A copy of the stale run whose config.yaml was edited to plan the folder's new shape."""
    run_dir, folder = stale_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    text = (copy / "config.yaml").read_text()
    assert "input_shape: [28, 28, 1]\n" in text
    (copy / "config.yaml").write_text(text.replace("[28, 28, 1]", "[32, 32, 3]"))
    return copy, folder


@pytest.mark.parametrize(
    "argv",
    [
        ["resume", "RUN", "--set", "train.epochs=2"],
        ["evaluate", "RUN"],
        ["plot", "RUN"],
        ["predict", "RUN", "IMAGE", "--out", "OUT"],
        ["export", "RUN", "--format", "saved_model"],
        ["embed", "RUN"],
    ],
    ids=["resume", "evaluate", "plot", "predict", "export", "embed"],
)
def test_a_model_file_that_is_not_the_runs_is_refused_before_tensorflow(edited_run, tmp_path, argv):
    run_dir, folder = edited_run
    image = next(folder.rglob("*.png"))
    out = tmp_path / "out"
    given = {"RUN": run_dir, "IMAGE": image, "OUT": out}
    before = snapshot(tmp_path)
    result, loaded = cli_without_tensorflow(*(str(given.get(a, a)) for a in argv))
    assert_error(
        result,
        f"{run_dir / 'model.keras'}: takes 28x28x1 inputs but the run's config.yaml plans "
        f"32x32x3; the file is not this run's: put back its own model.keras, or its own "
        f"config.yaml",
    )
    assert not loaded
    assert snapshot(tmp_path) == before and not out.exists()


def test_an_unfinished_runs_checkpoint_is_checked_too(edited_run):
    run_dir, _ = edited_run
    for name in ("model.keras", "encoder.keras", "decoder.keras"):
        (run_dir / name).unlink()  # as if interrupted before its end: resume reads the checkpoint
    result, loaded = cli_without_tensorflow("resume", run_dir, "--set", "train.epochs=2")
    checkpoint = run_dir / "checkpoints" / "last-0001.keras"
    assert_error(
        result,
        f"{checkpoint}: takes 28x28x1 inputs but the run's config.yaml plans 32x32x3; the file "
        f"is not this run's: put back its own last-0001.keras, or its own config.yaml",
    )
    assert not loaded


def test_another_model_of_the_same_input_size_is_refused_by_its_parameters(stale_run, tmp_path):
    from autoencoder.model import saved_parameter_count
    from autoencoder.runs import load_run_config
    from autoencoder.shapes import plan_model

    run_dir, _ = stale_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    assert (
        saved_parameter_count(copy / "model.keras")
        == plan_model(load_run_config(copy).model).total_params
    )
    # Another run's config.yaml (a code of 6 numbers, not 8) beside this run's model files.
    text = (copy / "config.yaml").read_text()
    assert "latent_dim: 8\n" in text
    (copy / "config.yaml").write_text(text.replace("latent_dim: 8\n", "latent_dim: 6\n"))
    held = saved_parameter_count(copy / "model.keras")
    planned = plan_model(load_run_config(copy).model).total_params
    assert held != planned
    before = snapshot(tmp_path)
    for argv, path in (
        (["evaluate", copy], copy / "model.keras"),
        (["export", copy], copy / "model.keras"),
    ):
        result, loaded = cli_without_tensorflow(*map(str, argv))
        assert_error(
            result,
            f"{path}: holds {held:,} parameters but the run's config.yaml plans a model of "
            f"{planned:,}; the file is not this run's: put back its own model.keras, or its own "
            f"config.yaml",
        )
        assert not loaded
    assert snapshot(tmp_path) == before
    for name in ("model.keras", "encoder.keras", "decoder.keras"):
        (copy / name).unlink()  # unfinished: resume would load the checkpoint into the wrong model
    result, loaded = cli_without_tensorflow("resume", copy, "--set", "train.epochs=2")
    assert_error(
        result,
        f"{copy / 'checkpoints' / 'last-0001.keras'}: holds {held:,} parameters but the run's "
        f"config.yaml plans a model of {planned:,}; the file is not this run's: put back its own "
        f"last-0001.keras, or its own config.yaml",
    )
    assert not loaded and "latent_dim: 6" in (copy / "config.yaml").read_text()


def test_a_run_that_still_fits_its_data_opens(stale_run, tmp_path):
    from autoencoder.runs import open_run

    run_dir, folder = stale_run
    config = open_run(run_dir, data=False)  # predict and export read no training data
    assert tuple(config.model.input_shape) == (28, 28, 1)
    # The run's data put back as it was trained (grey 28x28): it opens with its data checked.
    back = tmp_path / "back"
    for path in folder.rglob("*.png"):
        target = back / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        images.write_png(target, images.read_image(path)[2:30, 2:30, :1])
    config = open_run(run_dir, [f"data.path={back}"])
    assert tuple(config.model.input_shape) == (28, 28, 1) and str(config.data.path) == str(back)


def test_predict_goes_chunk_by_chunk_and_keeps_every_output(monkeypatch):
    import keras

    from autoencoder import runs

    monkeypatch.setattr(runs, "PREDICT_CHUNK", 7)  # 25 images: chunks of 7, 7, 7 and 4
    x = np.random.default_rng(0).random((25, 3), dtype=np.float32)
    inputs = keras.Input((3,))
    double = keras.Model(inputs, inputs * 2.0)
    np.testing.assert_allclose(runs.predict(double, x, batch_size=4), x * 2.0, rtol=1e-6)
    both = keras.Model(inputs, [inputs * 2.0, inputs + 1.0])  # as a VAE's encoder: two outputs
    twice, plus = runs.predict(both, x, batch_size=4)
    np.testing.assert_allclose(twice, x * 2.0, rtol=1e-6)
    np.testing.assert_allclose(plus, x + 1.0, rtol=1e-6)


def test_tensorflows_retracing_advice_is_dropped_and_its_other_warnings_pass(caplog):
    """The retracing warning (each tune trial, sweep level or loaded run is a new model, by
    design) is dropped from TensorFlow's logger once TensorFlow is loaded; others still pass."""
    from autoencoder.runtime import tensorflow

    tf = tensorflow()
    tensorflow()  # a second load adds no second filter
    assert logging.getLogger("tensorflow").filters.count(runtime._not_retracing) == 1
    # TensorFlow's own wording (polymorphic_function's frequent-tracing detector).
    tf.get_logger().warning(
        "5 out of the last 5 calls to <function f at 0x7f> triggered tf.function retracing. "
        "Tracing is expensive and the excessive number of tracings could be due to ..."
    )
    tf.get_logger().warning("another warning from TensorFlow")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["another warning from TensorFlow"], messages


def test_a_damaged_metrics_file_is_named_and_written_anew_by_the_next_results(tmp_path, caplog):
    path = tmp_path / "metrics.json"
    path.write_text('{"test/psnr": ')  # a write cut short
    with pytest.raises(UserError) as refused:
        runs.read_metrics(tmp_path)
    assert str(refused.value) == (
        f"{path}: damaged (not a JSON object); `autoencoder evaluate {tmp_path}` writes the "
        f"run's test metrics again"
    )
    runs.merge_metrics(tmp_path, {"test/psnr": 20.5})
    assert json.loads(path.read_text()) == {"test/psnr": 20.5}
    assert f"{path}: damaged (not a JSON object); it is written anew" in caplog.text


@pytest.mark.parametrize("name", ["quickstart.yaml", "notes.txt"])
def test_a_file_given_for_a_run_directory_says_what_to_give(tmp_path, name):
    path = tmp_path / name
    path.write_text("name: x\n")
    train = f"`autoencoder train {path}` starts a run from it; " if name.endswith(".yaml") else ""
    with pytest.raises(UserError) as refused:
        runs.check_is_run(path)
    assert str(refused.value) == (
        f"{path}: a file, not a run directory; {train}pass the folder a run was written to, "
        f"e.g. outputs/<name>/<timestamp> (`autoencoder runs` lists them)"
    )


# ---------------------------------------------------------------------------------------------
# A damaged record: one line naming the file, and nothing of the run written

HEADER = "epoch,train/loss,val/loss,seconds\n"
FIX = "the run's epochs cannot be read: put back history.csv from a copy of the run, or train a new run"


@pytest.mark.parametrize(
    "text, line, why",
    [
        (HEADER + "1,0.5,0.4,1.0\n2,0.3", 3, "2 fields where the header names 4"),
        (HEADER + "1,0.5,0.4,1.0,7,8\n", 2, "6 fields where the header names 4"),
        (HEADER + "1,0.5,x0.4,1.0\n", 2, "val/loss is 'x0.4', not a number"),
        (HEADER + "1,0.5,0.4,1.0\n8,0.3,0.2,1.0\n", 3, "epoch 8 where epoch 2 belongs"),
        (HEADER.encode() + b"1,0.5,0.4,1.0\n2,\xff\n", 3, "not UTF-8 text"),
        ("train/loss,val/loss\n0.5,0.4\n", 1, "the header names no epoch column"),
    ],
    ids=["cut", "long", "not-a-number", "out-of-order", "not-utf8", "no-epoch"],
)
def test_a_damaged_history_names_its_line(tmp_path, text, line, why):
    path = tmp_path / "history.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserError) as refused:
        runs.read_history(tmp_path)
    assert str(refused.value) == f"{path}: line {line} is damaged ({why}); {FIX}"


def test_a_history_with_an_old_runs_empty_cells_reads(tmp_path):
    (tmp_path / "history.csv").write_text(HEADER + "1,0.5,0.4,\n2,0.3,0.2,1.5\n")
    assert runs.read_history(tmp_path) == [
        {"epoch": 1, "train/loss": 0.5, "val/loss": 0.4},
        {"epoch": 2, "train/loss": 0.3, "val/loss": 0.2, "seconds": 1.5},
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of 2 epochs on the sample digits."""
    from autoencoder.pipeline import train_run

    run_dir, _ = train_run(tiny(tmp_path_factory.mktemp("finished") / "runs", "train.epochs=2"))
    return run_dir


def damaged_copy(run_dir, target, damage):
    """A copy of run_dir with `damage` (a name below) done to it."""
    copy = shutil.copytree(run_dir, target / "run")
    history, state = copy / "history.csv", copy / runs.STATE
    if damage == "cut history":
        header, first = history.read_text().splitlines()[:2]
        history.write_text(header + "\n" + ",".join(first.split(",")[:4]))  # cut in row 1
    elif damage == "empty history":
        history.write_text(history.read_text().splitlines()[0] + "\n")
    elif damage == "state ahead":
        state.write_text(state.read_text().replace('"epoch": 2', '"epoch": 7'))
    elif damage == "no checkpoints":
        shutil.rmtree(copy / "checkpoints")
    elif damage == "corrupt checkpoint":
        checkpoint = copy / "checkpoints" / "last-0002.keras"
        checkpoint.write_bytes(checkpoint.read_bytes()[:2000])
    elif damage == "foreign config":  # same inputs, another model: only its weights tell
        config = copy / "config.yaml"
        config.write_text(config.read_text().replace("latent_dim: 8", "latent_dim: 5"))
    return copy


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            "cut history",
            "{run}/history.csv: line 2 is damaged (4 fields where the header names 7); ",
        ),
        (
            "empty history",
            "{run}/history.csv: holds 0 epoch(s), but {run}/checkpoints/state.json says the run "
            "has completed 2: one of the two is not this run's; put back the run's own files "
            "from a copy, or train a new run",
        ),
        (
            "state ahead",
            "{run}/history.csv: holds 2 epoch(s), but {run}/checkpoints/state.json says the run "
            "has completed 7: one of the two is not this run's; put back the run's own files "
            "from a copy, or train a new run",
        ),
        (
            "no checkpoints",
            "{run}/checkpoints: missing, so the run cannot be resumed; its {run}/model.keras "
            "still serves evaluate, predict and export; train a new run to go on",
        ),
    ],
)
def test_resume_refuses_a_damaged_record_before_tensorflow_and_writes_nothing(
    finished, tmp_path, damage, message
):
    run_dir = damaged_copy(finished, tmp_path, damage)
    before = snapshot(tmp_path)
    result, loaded = cli_without_tensorflow("resume", run_dir, "--set", "train.epochs=3")
    expected = message.format(run=run_dir)
    assert_error(result, expected + FIX if expected.endswith("; ") else expected)
    assert not loaded
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            "corrupt checkpoint",
            "{run}/checkpoints/last-0002.keras: cannot load model (ValueError); the file is "
            "corrupt or truncated: train a new run to replace it",
        ),
        (
            "foreign config",
            "{run}/checkpoints/last-0002.keras: holds another model than the run's config.yaml "
            "builds (its weights differ in number or shape); put back the run's own config.yaml, "
            "or train a new run",
        ),
    ],
)
def test_a_resume_refused_at_its_checkpoint_leaves_the_run_as_it_was(
    finished, tmp_path, damage, message, monkeypatch
):
    from autoencoder import runs
    from autoencoder.pipeline import resume

    # The parameter count refuses a foreign config first (test_another_model_of_the_same_...):
    # left aside here, the checkpoint's weights are the last check, for a count it cannot read.
    monkeypatch.setattr(runs, "saved_parameter_count", lambda path: None)
    run_dir = damaged_copy(finished, tmp_path, damage)
    before = snapshot(tmp_path)
    with pytest.raises(UserError) as refused:
        resume(run_dir, ["train.epochs=3"])
    assert str(refused.value) == message.format(run=run_dir)
    assert snapshot(tmp_path) == before  # config.yaml still says 2 epochs; no error.log


@pytest.mark.parametrize("damage", ["empty history", "state ahead"])
def test_plot_and_the_api_refuse_a_history_shorter_than_the_state(finished, tmp_path, damage):
    import autoencoder as ae

    run_dir = damaged_copy(finished, tmp_path, damage)
    before = snapshot(tmp_path)
    result, loaded = cli_without_tensorflow("plot", run_dir)
    assert result.returncode == 2 and not loaded
    assert f"{run_dir}/history.csv: holds " in result.stderr
    assert f"but {run_dir}/checkpoints/state.json says the run has completed" in result.stderr
    with pytest.raises(UserError, match="one of the two is not this run's"):
        _ = ae.load_run(run_dir).history
    assert snapshot(tmp_path) == before


def test_plot_of_a_run_with_a_damaged_metrics_json_draws_its_figures_and_says_so(
    finished, tmp_path, caplog
):
    import autoencoder as ae

    run_dir = shutil.copytree(finished, tmp_path / "run")
    (run_dir / "metrics.json").write_text("[")
    paths = ae.load_run(run_dir).plot()
    assert {p.name for p in paths} >= {"reconstructions.png", "loss.png", "worst.png"}
    assert all(p.is_file() for p in paths)
    assert "metrics.json: damaged" in caplog.text
    assert "anomaly figures, if the run had any, are not redrawn" in caplog.text


def test_a_damaged_state_json_still_gives_the_history(finished, tmp_path):
    import autoencoder as ae

    run_dir = damaged_copy(finished, tmp_path, "state ahead")
    (run_dir / runs.STATE).write_text("{not json")
    assert [row["epoch"] for row in ae.load_run(run_dir).history] == [1, 2]


def test_compare_refuses_a_damaged_history_before_making_its_folder(finished, tmp_path):
    from autoencoder.comparison import compare_runs

    run_dir = damaged_copy(finished, tmp_path, "cut history")
    with pytest.raises(UserError) as refused:
        compare_runs([run_dir, finished], tmp_path / "compared")
    assert str(refused.value) == (
        f"{run_dir}/history.csv: line 2 is damaged (4 fields where the header names 7); {FIX}"
    )
    assert not (tmp_path / "compared").exists()


def test_train_config_resume_takes_a_run_made_elsewhere_and_keeps_its_output(finished, tmp_path):
    from autoencoder.pipeline import train_run

    # The run was made with output=<its folder>; the config given now has another output.
    copy = shutil.copytree(finished, tmp_path / "elsewhere" / "run")
    saved = runs.load_run_config(copy).output
    run_dir, metrics = train_run(tiny(tmp_path / "outputs", "train.epochs=3"), resume=copy)
    assert run_dir == copy and [r["epoch"] for r in runs.read_history(copy)] == [1, 2, 3]
    assert runs.load_run_config(copy).output == saved and "test/mse" in metrics
    assert not (tmp_path / "outputs").exists()
