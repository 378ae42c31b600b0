"""One run end to end: refusals before anything is written, and a crash that keeps the run."""

import pytest
from conftest import assert_error, cli_without_tensorflow, tiny, write_config

from autoencoder.cli import main
from autoencoder.errors import UserError
from autoencoder.pipeline import train_run
from autoencoder.runs import read_history, read_state


def test_missing_data_is_refused_before_a_run_directory_exists(tmp_path, capsys):
    config = tiny(tmp_path, "data.dataset=mnist", f"data.path={tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match="data.path .*nowhere: missing"):
        train_run(config)
    assert not (tmp_path / "tiny").exists()


@pytest.mark.parametrize(
    "shape, message",
    [
        ("[32, 32, 1]", "model.input_shape is 32x32x1 but the data gives the model 28x28x1"),
        ("[28, 28, 3]", "model.input_shape is 28x28x3 but the data gives the model 28x28x1"),
    ],
)
def test_an_input_shape_the_data_cannot_fill_is_one_line_before_tensorflow(
    tmp_path, shape, message
):
    # The reproduction: quickstart's 28x28 grey digits planned as something else.
    result, loaded = cli_without_tensorflow(
        "train",
        "configs/quickstart.yaml",
        "--set",
        f"model.input_shape={shape}",
        "--set",
        f"output={tmp_path}",
    )
    assert_error(
        result,
        f'{message} images (mnist_sample); pass --set "model.input_shape=[28, 28, 1]" (or '
        f"model.input_shape=null) to plan from the data, or set data.image_size, data.color or "
        f"data.patches to match it",
    )
    assert not loaded and list(tmp_path.iterdir()) == []


def test_a_plan_too_big_for_any_machine_is_refused_before_tensorflow(tmp_path):
    # Ten million images a batch: terabytes of activations, more than any host here has.
    result, loaded = cli_without_tensorflow(
        "train",
        "configs/quickstart.yaml",
        "--set",
        "train.batch_size=10000000",
        "--set",
        f"output={tmp_path}",
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: train: the run needs about ")
    # Checked at the lightest precision the run could get, before TensorFlow picks one.
    assert "at batch 10000000 in mixed_bfloat16 (`autoencoder shapes` shows the plan) but " in (
        result.stderr
    )
    assert "--set train.batch_size=" in result.stderr
    assert not loaded and list(tmp_path.iterdir()) == []


def test_an_unexpected_failure_keeps_the_run_and_resume_finishes_it(tmp_path, capsys, monkeypatch):
    from autoencoder.callbacks import RunRecorder

    real = RunRecorder.on_epoch_end

    def fails_in_epoch_2(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("injected failure\nsecond line")
        return real(self, epoch, logs)

    monkeypatch.setattr(RunRecorder, "on_epoch_end", fails_in_epoch_2)
    config = write_config(tmp_path / "c.yaml", tiny(tmp_path, "train.epochs=3"))
    assert main(["--quiet", "train", str(config)]) == 1  # a bug, not the user's mistake
    (run_dir,) = (tmp_path / "tiny").iterdir()
    err = capsys.readouterr().err
    assert err == (
        f"error: training failed with RuntimeError: injected failure (a bug: please report it); "
        f"the traceback is in {run_dir / 'error.log'}; the run is kept at epoch 1: resume with "
        f"`autoencoder resume {run_dir}`\n"
    )
    log = (run_dir / "error.log").read_text()
    assert log.startswith("Traceback") and "fails_in_epoch_2" in log and "second line" in log
    assert read_state(run_dir)["epoch"] == 1 and [r["epoch"] for r in read_history(run_dir)] == [1]

    monkeypatch.setattr(RunRecorder, "on_epoch_end", real)
    assert main(["--quiet", "resume", str(run_dir)]) == 0
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]
    assert (run_dir / "model.keras").is_file() and (run_dir / "metrics.json").is_file()


@pytest.mark.parametrize(
    "sets, images, steps",
    [
        (["model.encoder.0.batch_norm=true", "train.epochs=2", "train.batch_size=100"], 300, 6),
        (
            [
                "model.encoder.0.batch_norm=true",
                "data.patches={size: [8, 8], per_image: 4}",
                "train.epochs=1",
            ],
            50,
            4,
        ),
        (["model.encoder.0.batch_norm=true", "train.epochs=200"], 100, None),  # settled
        (["model.encoder.0.batch_norm=true", "train.minutes=1"], 100, None),  # steps unknown
        (["train.epochs=1"], 100, None),  # no batch norm
    ],
)
def test_batch_norm_with_too_few_steps_to_settle_is_warned_of(tmp_path, sets, images, steps):
    from autoencoder.pipeline import SETTLED_STEPS, batch_norm_note

    config = tiny(tmp_path, "train.batch_size=64", *sets)
    note = batch_norm_note(config, images)
    if steps is None:
        assert note is None
    else:
        assert steps < SETTLED_STEPS and note.startswith(
            f"batch norm with {steps} training steps: its statistics for evaluation still hold "
            f"{0.99**steps:.0%} of their start"
        )
