"""The trainer end to end on a few hundred sample digits: run directory, resume, NaN, seeds."""

import csv
import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, cli, start_training, tiny, wait_for_first_epoch, write_config

from autoencoder.config import load_config
from autoencoder.errors import UserError
from autoencoder.runs import read_history


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    out = tmp_path_factory.mktemp("runs")
    return train_run(tiny(out, "train.epochs=2", "train.tensorboard=true"))[0]


def test_run_directory_is_complete(finished_run):
    run = finished_run
    assert run.parent.name == "tiny" and len(run.name) == len("20261121-140000")
    for name in (
        "config.yaml",
        "model.keras",
        "encoder.keras",
        "decoder.keras",
        "history.csv",
        "metrics.json",
        "checkpoints/best.weights.h5",
        "checkpoints/state.json",
    ):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("last-0002.keras"))
    assert any((run / "logs").rglob("*tfevents*"))
    assert load_config(run / "config.yaml").train.epochs == 2


def test_history_has_one_row_per_epoch(finished_run):
    with open(finished_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert set(rows[0]) >= {"train/loss", "val/loss", "lr", "seconds"}
    # BCE of a sigmoid output on [0, 1] pixels: above the ~0.06 floor, below log(2) after training.
    for r in rows:
        assert 0.05 < float(r["train/loss"]) < 0.7 and 0.05 < float(r["val/loss"]) < 0.7
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)


def test_metrics_keys_and_ranges(finished_run):
    m = json.loads((finished_run / "metrics.json").read_text())
    assert m["test/images"] == 1000 and m["epochs_run"] == 2
    assert 0 < m["test/mse"] < 0.25 and 0 < m["test/mae"] < 0.5
    assert m["test/psnr"] == pytest.approx(10 * np.log10(1 / m["test/mse"]))
    # SSIM runs from -1 to 1; two tiny epochs (16 steps) give outputs near their mean, which
    # barely correlate with the digits (0.005 to 0.4 here, by the precision auto chose).
    assert 0 < m["test/ssim"] < 0.9
    assert 0.03 < m["test/bce_floor"] < m["test/bce"]
    assert set(m["test/mse_by_class"]) == {str(c) for c in range(10)}
    assert m["test/pca"]["components"] == 8
    assert m["test/sse_per_image"] == pytest.approx(m["test/mse"] * 784)


def test_figures_decode_at_expected_size(finished_run):
    import matplotlib.image as mpimg

    sizes = {}
    for name in ("reconstructions", "loss", "worst", "error_by_class"):
        img = mpimg.imread(finished_run / "figures" / f"{name}.png")
        sizes[name] = img.shape
        assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 600, (name, img.shape)
        assert img[..., :3].std() > 0.05  # not a blank canvas
    # 120 dpi: reconstructions 10 columns -> (1.3*10+1.2) x 3.4 inches
    assert sizes["reconstructions"][:2] == (int(3.4 * 120), int(14.2 * 120))


def test_saved_models_reload_safely_and_agree(finished_run):
    import keras

    from autoencoder.data import load_splits

    config = load_config(finished_run / "config.yaml")
    x = load_splits(config).images("test")[:16]
    model = keras.models.load_model(finished_run / "model.keras", safe_mode=True)
    encoder = keras.models.load_model(finished_run / "encoder.keras", safe_mode=True)
    decoder = keras.models.load_model(finished_run / "decoder.keras", safe_mode=True)
    code = encoder.predict(x, verbose=0)
    assert code.shape == (16, 8)
    np.testing.assert_allclose(
        decoder.predict(code, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


def test_evaluate_cli_val_split(finished_run):
    result = cli("evaluate", finished_run, "--split", "val")
    assert result.returncode == 0, result.stderr
    assert "val split, 80 images" in result.stdout and "BCE (floor)" in result.stdout
    m = json.loads((finished_run / "metrics.json").read_text())
    assert "val/mse" in m and "test/mse" in m  # merged, not replaced


def test_resume_refuses_a_different_config(finished_run):
    from autoencoder.runs import check_resume

    other = load_config(finished_run / "config.yaml", ["train.loss=mse", "seed=3"])
    with pytest.raises(UserError, match=r"config differs from the run's in seed, train.loss"):
        check_resume(finished_run, other)
    with pytest.raises(UserError, match="not a run directory"):
        check_resume(finished_run / "figures", other)


def test_resume_of_finished_run_adds_epochs(finished_run, tmp_path, caplog):
    import shutil

    from autoencoder.pipeline import train_run

    caplog.set_level("INFO", logger="autoencoder")
    run = shutil.copytree(finished_run, tmp_path / "copy")  # the module's run stays as it is
    config = load_config(run / "config.yaml", ["train.epochs=4"])
    train_run(config, resume=run)
    with open(run / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    assert "trained 2 epochs (epochs 3-4 of the run) in " in caplog.text


def test_resume_with_fewer_epochs_than_trained_is_refused(finished_run):
    from autoencoder.runs import check_resume

    before = (finished_run / "config.yaml").read_bytes()
    fewer = load_config(finished_run / "config.yaml", ["train.epochs=1"])
    with pytest.raises(UserError) as refused:
        check_resume(finished_run, fewer)
    assert str(refused.value) == (
        f"{finished_run}: cannot resume with train.epochs=1: the run has trained 2 epochs; give "
        f"2 to evaluate it again or more to train on (`autoencoder resume {finished_run} --set "
        f"train.epochs=3`)"
    )
    assert (finished_run / "config.yaml").read_bytes() == before


def test_resuming_a_finished_run_says_there_is_nothing_to_train(finished_run, tmp_path, caplog):
    import shutil

    from autoencoder.pipeline import train_run

    caplog.set_level("INFO", logger="autoencoder")
    run = shutil.copytree(finished_run, tmp_path / "copy")
    epochs = len(read_history(run))
    train_run(load_config(run / "config.yaml"), resume=run)
    assert len(read_history(run)) == epochs
    assert (
        f"the run has trained all its {epochs} epochs: nothing to train, evaluated again; for "
        f"more, autoencoder resume {run} --set train.epochs=N" in caplog.text
    )
    assert "trained 1 epoch" not in caplog.text and "resuming after" not in caplog.text
    # A notebook's caller is told the API's call.
    import autoencoder as ae

    caplog.clear()
    ae.resume(run)
    assert f"nothing to train, evaluated again; for more, ae.resume('{run}', epochs=N)" in (
        caplog.text
    )


def test_resume_command_continues_with_the_runs_own_config(finished_run, tmp_path, capsys):
    import shutil

    from autoencoder.cli import main

    run = shutil.copytree(finished_run, tmp_path / "copy")
    epochs = len(read_history(run))
    assert main(["--quiet", "resume", str(run), "--set", f"train.epochs={epochs + 1}"]) == 0
    assert [r["epoch"] for r in read_history(run)] == list(range(1, epochs + 2))
    assert load_config(run / "config.yaml").train.epochs == epochs + 1
    assert "test split, 1,000 images" in capsys.readouterr().out
    # Anything but train.epochs would make it another run: refused, one line.
    assert main(["resume", str(run), "--set", "seed=5"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {run}: cannot resume: the config differs")


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    from autoencoder.pipeline import train_run

    config = tiny(
        tmp_path,
        "train.epochs=2",
        "train.loss=mse",
        "model.output.activation=linear",
        "train.optimizer={name: sgd, learning_rate: 1.0e+12}",
    )
    with pytest.raises(UserError) as info:
        train_run(config)
    # Which of the two comes first (an overflow to inf, or inf - inf) is up to the float math.
    assert str(info.value) in {
        f"training stopped: the loss became {value} in epoch 1; the last good checkpoint is none "
        f"(it diverged in the first epoch). Try a lower train.optimizer.learning_rate, "
        f"train.optimizer.clipnorm: 1.0, or input data in [0, 1] with loss bce"
        for value in ("nan", "inf")
    }
    run_dir = next((tmp_path / "tiny").iterdir())
    assert (run_dir / "config.yaml").is_file()
    assert not (run_dir / "checkpoints" / "state.json").exists()  # no diverged checkpoint


def test_an_output_that_stops_changing_stops_the_run_with_a_clear_message(tmp_path):
    from autoencoder.pipeline import train_run

    # Steps far below float32's resolution of the weights leave them exactly as they were, as a
    # saturated sigmoid or dead ReLUs do (unet_denoise with loss mse did, on full MNIST).
    config = tiny(tmp_path, "train.epochs=5", "train.optimizer={name: sgd, learning_rate: 1.0e-30}")
    with pytest.raises(UserError) as info:
        train_run(config)
    message = str(info.value)
    assert message.startswith("training stopped: val/loss was ")
    assert "in epochs 1 and 2, to the last digit" in message and "learning_rate" in message
    run_dir = next((tmp_path / "tiny").iterdir())
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3  # the header and the two epochs it took to see it, not five
    assert (run_dir / "checkpoints" / "state.json").is_file()  # what was trained is kept


def test_same_seed_same_history(tmp_path):
    from autoencoder.pipeline import train_run
    from autoencoder.runs import read_history

    a = read_history(train_run(tiny(tmp_path, "train.epochs=1", "name=a"))[0])
    b = read_history(train_run(tiny(tmp_path, "train.epochs=1", "name=b"))[0])
    assert a[0]["train/loss"] == pytest.approx(b[0]["train/loss"], rel=1e-4)
    assert a[0]["val/loss"] == pytest.approx(b[0]["val/loss"], rel=1e-4)


def test_killed_mid_epoch_then_resumed(tmp_path):
    """SIGKILL a training subprocess inside epoch 2, resume it, and check the history."""
    config = tiny(tmp_path, "train.epochs=4", "data.limit=1200")
    cfg = write_config(tmp_path / "c.yaml", config)
    proc = start_training(cfg)
    state = wait_for_first_epoch(proc, tmp_path, settle=0.3)  # into epoch 2
    assert state is not None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = state.parent.parent
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 4
    assert not (run_dir / "model.keras").exists()
    result = cli("train", cfg, "--quiet", "--resume", run_dir)
    assert result.returncode == 0, result.stderr
    with open(run_dir / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    assert (run_dir / "model.keras").is_file()
    assert len(list((run_dir / "checkpoints").glob("last-*.keras"))) == 1
    # The same seed without the interruption ends at (nearly) the same loss.
    from autoencoder.pipeline import train_run
    from autoencoder.runs import read_history

    unbroken = read_history(train_run(config.model_copy(update={"name": "unbroken"}))[0])
    resumed = read_history(run_dir)
    assert resumed[-1]["val/loss"] == pytest.approx(unbroken[-1]["val/loss"], rel=0.02)


def test_train_leaves_the_global_dtype_policy_as_it_found_it(tmp_path):
    import keras

    from autoencoder.pipeline import train_run

    keras.mixed_precision.set_global_policy("float32")
    run_dir = train_run(tiny(tmp_path, "train.epochs=1", "train.mixed_precision=on"))[0]
    assert keras.mixed_precision.global_policy().name == "float32"
    # The run itself trained in mixed precision: its saved model says so, layer by layer.
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    encoder = model.get_layer("encoder")
    assert encoder.get_layer("enc1_conv").dtype_policy.name.startswith("mixed_")
    assert model.get_layer("decoder").get_layer("output_conv_act").dtype_policy.name == "float32"


def test_xla_is_off_on_a_cpu_unless_asked_for(tmp_path):
    from autoencoder.trainer import compiled_models, training_rate

    config = tiny(tmp_path)
    # Keras's "auto" resolves when the train function is made: off without a GPU, where XLA
    # trains slower than oneDNN's kernels (docs/performance.md).
    default = compiled_models(config, 1)[0]
    x = np.zeros((4, 28, 28, 1), np.float32)
    default.train_on_batch(x, x)
    assert default.jit_compile is False
    assert compiled_models(config, 1, jit_compile=True)[0].jit_compile is True
    assert training_rate(config, "float32", jit_compile=True) > 0


# ---------------------------------------------------------------------------------------------
# Every callback on every family and data kind

EVERY_CALLBACK = [
    "train.epochs=2",
    "train.tensorboard=true",  # scalars and the images callback
    "train.early_stopping={patience: 1}",
    "train.schedule={kind: plateau, patience: 1}",
]


def combination(name, tmp_path, digits, photos):
    """The config of one combination a user can configure, writing under tmp_path/runs."""
    from conftest import ROOT, write_photo_crops

    from autoencoder.data import images

    out = tmp_path / "runs"
    if name == "odd_unet_folder":  # the U-Net preset on a folder of 27x19 crops of digits
        root = tmp_path / "odd"
        for i, (image, label) in enumerate(zip(*digits)):
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            images.write_png(root / str(label) / f"{i:03d}.png", image[1:, 4:23, None])
        return load_config(
            ROOT / "configs/unet_denoise.yaml",
            [
                "data.dataset=folder",
                f"data.path={root}",
                "model.input_shape=[27, 19, 1]",
                "train.batch_size=32",
                f"output={out}",
                "name=tiny",
                *EVERY_CALLBACK,
            ],
        )
    extra = {
        "plain": [],
        "skips": ["model.skips=concat", "model.latent_dim=null", "data.noise={level: 0.3}"],
        "residual": [
            "model.encoder=[{type: residual, filters: 4, strides: 2}, "
            "{type: residual, filters: 8, strides: 2}]"
        ],
        "vae": ["model.kind=vae", "model.latent_dim=4"],
        "denoiser": ["data.noise={kind: gaussian, level: 0.3}", "data.augment={shift: 2}"],
        "patches": [
            "data.dataset=folder",
            f"data.path={write_photo_crops(tmp_path / 'big', photos, n=20, size=(40, 48))}",
            "data.patches={size: [16, 16], per_image: 4}",
            "data.augment={shift: 3, flip: true}",
        ],
        "colour": [
            "data.dataset=folder",
            f"data.path={write_photo_crops(tmp_path / 'rgb', photos, n=30, size=(21, 25))}",
        ],
    }[name]
    return tiny(out, *extra, *EVERY_CALLBACK)


def tensorboard_images(log_dir):
    """{epoch: decoded image} of reconstructions/test, read back by TensorBoard's own reader."""
    import io

    from PIL import Image
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    reader = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    reader.Reload()
    found = {}
    for event in reader.Tensors("reconstructions/test"):
        width, height, png = tensor_util.make_ndarray(event.tensor_proto)[:3]
        image = np.asarray(Image.open(io.BytesIO(png)))
        assert image.shape[:2] == (int(height), int(width))
        found[event.step] = image
    return found


def tensorboard_scalars(log_dir, tag="epoch_loss"):
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    reader.Reload()
    return [event.step for event in reader.Tensors(tag)]


COMBINATIONS = ["plain", "skips", "residual", "vae", "denoiser", "patches", "colour"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [*COMBINATIONS, "odd_unet_folder"])
def test_every_callback_on_every_family_and_data_kind(tmp_path, digits, photos, caplog, name):
    from autoencoder.data import load_splits
    from autoencoder.pipeline import train_run

    config = combination(name, tmp_path, digits, photos)
    with caplog.at_level("INFO", logger="autoencoder"):  # the progress bars' callback too
        run_dir, metrics = train_run(config)
    history = read_history(run_dir)
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(np.isfinite(row["val/loss"]) for row in history)
    state = json.loads((run_dir / "checkpoints/state.json").read_text())
    assert state["epoch"] == 2 and (run_dir / "checkpoints" / state["checkpoint"]).is_file()
    # Sixteen steps of a tiny model: far from good, but learning under every callback.
    assert history[1]["val/loss"] < history[0]["val/loss"], history
    assert history[1]["train/loss"] < history[0]["train/loss"], history
    assert tensorboard_scalars(run_dir / "logs" / "train") == [0, 1]
    assert tensorboard_scalars(run_dir / "logs" / "validation") == [0, 1]
    shown = tensorboard_images(run_dir / "logs" / "images")
    assert sorted(shown) == [0, 1]
    # Whole test images (a patch model's put together from its tiles): inputs above outputs,
    # above the clean images for a denoiser; 8 across; grey or colour as the data is.
    splits = load_splits(config)
    n, h, w, c = splits.images("test")[:8].shape
    rows = 3 if config.data.noise is not None else 2
    scale = 2 if max(h, w) <= 64 else 1
    image = shown[1]
    assert image.shape[:2] == ((h * scale + 1) * rows - 1, (w * scale + 1) * n - 1)
    assert (image.shape[2] if image.ndim == 3 else 1) in ((3, 4) if c == 3 else (1, 2, 3, 4))
    assert image.std() > 5  # not a blank grid


def test_training_rate_script_times_each_variant_in_turns(tmp_path):
    """scripts/training_rate.py: one line per variant, its overrides and a rate for each round."""
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path))
    result = subprocess.run(
        [sys.executable, "scripts/training_rate.py", str(config), "--dtype", "float32"]
        + ["--rounds", "2", "--variant", "batch 8", "train.batch_size=8,train.epochs=3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {}
    for line in result.stdout.splitlines()[1:]:
        match = re.match(r"\s+(.+?)\s+median\s+(\d+)\s+\((\d+), (\d+)\)\s+(\[.*\])$", line)
        assert match, line
        rows[match[1]] = [int(match[2]), int(match[3]), int(match[4]), match[5]]
    assert list(rows) == ["as is", "batch 8"]
    assert rows["batch 8"][3] == "['train.batch_size=8', 'train.epochs=3']"
    for median, first, second, _ in rows.values():
        assert min(first, second) <= median <= max(first, second) and median > 0


def test_training_rate_script_refuses_a_bad_variant_in_one_line(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "scripts/training_rate.py",
            str(config),
            "--variant",
            "x",
            "train.epoch=3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --variant x: --set train.epoch=3: train.epoch: unknown key; did you mean 'epochs'?"
    ]


def test_training_rate_script_splits_a_variant_only_before_a_key(tmp_path):
    """Commas inside a value (a list, a flow mapping) stay in it; one round is "1 round"."""
    config = write_config(tmp_path / "tiny.yaml", tiny(tmp_path))
    noise = "data.noise={kind: gaussian, level: [0.1, 0.3]}"
    result = subprocess.run(
        [sys.executable, "scripts/training_rate.py", str(config), "--dtype", "float32"]
        + ["--rounds", "1", "--variant", "noisy", f"{noise}, train.batch_size=8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    header, _, noisy = result.stdout.splitlines()
    assert header.endswith("training images a second, 1 round in turns")
    assert noisy.endswith(f"{[noise, 'train.batch_size=8']}")


def test_cosine_lr_runs_from_the_initial_rate_to_the_floor():
    from autoencoder.callbacks import cosine_lr

    assert cosine_lr(0.0, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert cosine_lr(0.5, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_lr(1.0, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert cosine_lr(1.7, 1e-3, 1e-5) == pytest.approx(1e-5)  # past the end: the floor


def seconds_of(run_dir):
    return sum(row["seconds"] for row in read_history(run_dir))


def test_minutes_stop_a_run_on_time_and_a_resume_with_more_goes_on(tmp_path, caplog, capsys):
    from autoencoder.pipeline import train_run

    budget = 4.0  # seconds: many epochs of the tiny model
    config = tiny(
        tmp_path,
        f"train.minutes={budget / 60}",
        "train.epochs=1000",
        "train.schedule={kind: cosine, min_lr: 1.0e-5}",
    )
    with caplog.at_level("INFO", logger="autoencoder"):
        run_dir = train_run(config)[0]
    history = read_history(run_dir)
    assert 2 <= len(history) < 1000
    # It stops at the first batch past the budget, less the last validation's seconds.
    longest = max(row["seconds"] for row in history)
    assert budget - longest <= seconds_of(run_dir) <= budget + longest
    # The cosine follows the time (a thousandth of the steps would leave it at 1e-3): never
    # rising, at its floor with the last step.
    rates = [row["lr"] for row in history]
    assert rates[0] < 0.99e-3 and all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[-2] > rates[-1]  # still falling before the last epoch
    assert rates[-1] == pytest.approx(1e-5, rel=1e-3)
    assert f"train.minutes={budget / 60:g} reached in epoch {len(history)} after" in caplog.text
    # The progress bar counts the budget's seconds, not the epochs cap.
    assert f"{budget / 60:g} min: " in capsys.readouterr().err

    # Its own config again: the minutes are spent, nothing trains.
    train_run(load_config(run_dir / "config.yaml"), resume=run_dir)
    assert len(read_history(run_dir)) == len(history)
    # More minutes: the clock goes on from the history's seconds.
    train_run(
        load_config(run_dir / "config.yaml", [f"train.minutes={2 * budget / 60}"]), resume=run_dir
    )
    longer = read_history(run_dir)
    assert len(longer) > len(history)
    assert 2 * budget - longest <= seconds_of(run_dir) <= 2 * budget + longest


def test_epochs_end_a_run_with_minutes_to_spare_at_the_cosine_floor(tmp_path, caplog):
    from autoencoder.pipeline import train_run

    config = tiny(
        tmp_path,
        "train.minutes=30",
        "train.epochs=2",
        "train.schedule={kind: cosine, min_lr: 1.0e-5}",
    )
    with caplog.at_level("INFO", logger="autoencoder"):
        history = read_history(train_run(config)[0])
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[-1]["lr"] == pytest.approx(1e-5, rel=0.05)  # the steps brought it down
    assert "of 30 minutes spent when train.epochs (2) ran out" in caplog.text


def test_the_end_of_a_budgeted_run_names_what_ended_it(caplog):
    from types import SimpleNamespace

    from autoencoder.trainer import _log_budget

    config = tiny("unused", "train.minutes=30", "train.epochs=9")
    spent = SimpleNamespace(stopped=None, spent=90.0)
    with caplog.at_level("INFO", logger="autoencoder"):
        _log_budget(config, spent, 10, 9, early=False)
        _log_budget(config, spent, 10, 4, early=True)
        _log_budget(config, spent, 10, 3, early=False)
    assert caplog.messages == [
        f"train.minutes: 1.50 of 30 minutes spent when {why}"
        for why in (
            "train.epochs (9) ran out",
            "early stopping ended the run after epoch 4",
            "the caller stopped the run after epoch 3",
        )
    ]


def test_plateau_and_early_stopping_are_keras_callbacks_with_the_configs_numbers(tmp_path):
    import keras

    from autoencoder.trainer import _schedule_callbacks

    config = tiny(
        tmp_path,
        "train.schedule={kind: plateau, factor: 0.3, patience: 2, min_lr: 1.0e-5}",
        "train.early_stopping={patience: 3}",
    )
    plateau, stop = _schedule_callbacks(config)
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
    assert (plateau.monitor, plateau.factor, plateau.patience, plateau.min_lr) == (
        "val_loss",
        0.3,
        2,
        1e-5,
    )
    assert isinstance(stop, keras.callbacks.EarlyStopping)
    assert (stop.monitor, stop.patience) == ("val_loss", 3)
    assert _schedule_callbacks(tiny(tmp_path)) == []  # constant rate, no early stopping


def test_cosine_without_minutes_ends_at_its_floor(tmp_path):
    from autoencoder.pipeline import train_run

    run, _ = train_run(
        tiny(tmp_path, "train.epochs=3", "train.schedule={kind: cosine, min_lr: 1.0e-5}")
    )
    # Cosine over the epochs' steps (no train.minutes): from the rate down to its floor.
    rates = [row["lr"] for row in read_history(run)]
    assert 1e-5 < rates[0] < 1e-3 and rates[0] > rates[1] > rates[2]
    assert rates[2] == pytest.approx(1e-5, rel=1e-3)


def test_restore_best_saves_the_best_epochs_weights_not_the_last(tmp_path):
    import keras

    from autoencoder.pipeline import train_run
    from autoencoder.runs import BEST, read_state

    # A high rate at batch 8 in float32: validation loss best after epoch 2, worse after epoch
    # 3 (seeded; bfloat16, which auto may choose, rounds its way to a best last epoch).
    config = tiny(
        tmp_path,
        "train.epochs=3",
        "train.mixed_precision=off",
        "train.batch_size=8",
        "train.optimizer.learning_rate=0.02",
        "train.early_stopping={patience: 5, restore_best: true}",
    )
    run, _ = train_run(config)
    losses = [row["val/loss"] for row in read_history(run)]
    assert losses.index(min(losses)) == 1, losses  # the case this test needs
    saved = keras.models.load_model(run / "model.keras")
    best = keras.models.clone_model(saved)
    best.load_weights(run / "checkpoints" / BEST)
    last = keras.models.load_model(run / "checkpoints" / read_state(run)["checkpoint"])
    pairs = list(zip(saved.get_weights(), best.get_weights(), last.get_weights()))
    assert all(np.array_equal(a, b) for a, b, _ in pairs)  # the best epoch's weights, saved
    assert not all(np.array_equal(a, c) for a, _, c in pairs)  # not the last epoch's
