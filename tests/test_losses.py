"""Output heads (linear, residual) and the losses of train.loss: values, training, refusals."""

import math

import numpy as np
import pytest
from conftest import tiny

from autoencoder.config import load_config
from autoencoder.errors import UserError
from autoencoder.shapes import format_plan, plan_model

LINEAR = "model.output.activation=linear"
RESIDUAL = "model.output={activation: linear, residual: true}"


# ---------------------------------------------------------------------------------------------
# Values on known arrays


def test_pixel_losses_on_known_arrays(keras):
    from autoencoder.losses import keras_loss, per_image

    # Two 2x2 images; the second is reconstructed exactly.
    y = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32).reshape(1, 2, 2, 1)
    x = np.array([[0.1, 0.5], [0.7, 0.25]], np.float32).reshape(1, 2, 2, 1)
    y, x = np.concatenate([y, y]), np.concatenate([x, y])
    charbonnier = (math.sqrt(0.01 + 1e-6) + 1e-3 + math.sqrt(0.09 + 1e-6) + 1e-3) / 4
    expected = {
        "mse": [(0.01 + 0.09) / 4, 0.0],
        "mae": [(0.1 + 0.3) / 4, 0.0],
        "l1": [(0.1 + 0.3) / 4, 0.0],
        "charbonnier": [charbonnier, 1e-3],  # sqrt(0 + eps^2) = eps at every pixel
    }
    for name, (first, second) in expected.items():
        values = keras.ops.convert_to_numpy(per_image(name, y, x))
        np.testing.assert_allclose(values, [first, second], rtol=1e-5, atol=1e-7, err_msg=name)
        # The compiled loss is their mean over the images.
        compiled = float(keras_loss(name)(y, x))
        assert compiled == pytest.approx((first + second) / 2, rel=1e-5), name


def test_ssim_l1_on_constant_images(keras):
    from autoencoder.losses import SSIM_WEIGHT, keras_loss, per_image

    # Constant images have no variance: SSIM is its luminance term (2ab + C1) / (a^2 + b^2 + C1),
    # C1 = (0.01 * max_val)^2.
    y = np.full((2, 4, 4, 1), [[[[0.5]]], [[[1.0]]]], np.float32)
    # The second prediction is above 1: its SSIM term reads it clipped (1.0, SSIM 1), its L1
    # term raw (0.5).
    x = np.full((2, 4, 4, 1), [[[[0.25]]], [[[1.5]]]], np.float32)
    c1 = 1e-4
    ssim = (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1)
    first = 0.84 * (1 - ssim) + 0.16 * 0.25
    second = 0.16 * 0.5
    assert SSIM_WEIGHT == 0.84
    values = keras.ops.convert_to_numpy(per_image("ssim_l1", y, x))
    np.testing.assert_allclose(values, [first, second], rtol=1e-4)
    assert float(keras_loss("ssim_l1")(y, x)) == pytest.approx((first + second) / 2, rel=1e-4)


def test_a_vae_reconstruction_term_is_the_loss_summed_over_pixels(tmp_path, keras):
    from autoencoder.losses import per_image
    from autoencoder.model import build_models

    for loss in ("l1", "charbonnier", "ssim_l1"):
        config = tiny(tmp_path, "model.kind=vae", f"train.loss={loss}")
        vae = build_models(config.model)[0]
        vae.set_objective(loss, 1.0, 0)
        y = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
        # Sampling draws noise: take the reconstruction term against the very recon it drew.
        recon, term, _ = vae.terms(y, y)
        expected = np.mean(keras.ops.convert_to_numpy(per_image(loss, y, recon))) * 28 * 28
        assert float(term) == pytest.approx(float(expected), rel=1e-5), loss


# ---------------------------------------------------------------------------------------------
# The residual head


def test_the_plan_shows_the_subtraction():
    plan = plan_model(load_config(None, [RESIDUAL, "train.loss=mse"]).model)
    conv, head = plan.layers[-2:]
    assert (conv.role, conv.activation) == ("output", "linear")
    assert (head.kind, head.role, head.source, head.merge) == (
        "Subtract",
        "residual_output",
        "image",
        "output_conv",
    )
    assert head.input_shape == head.output_shape == (28, 28, 1) and head.params == 0
    assert plan.residual and plan.one_graph
    table = format_plan(plan)
    assert "28x28x1 + 28x28x1 -> 28x28x1" in table and "image - output_conv" in table
    assert not plan_model(load_config(None, [LINEAR, "train.loss=mse"]).model).residual


def test_a_residual_model_returns_input_minus_its_prediction_and_loads_back_safely(tmp_path, keras):
    from autoencoder.model import build_models, load_model
    from autoencoder.trainer import compiled_models

    config = tiny(tmp_path, RESIDUAL, "train.loss=charbonnier")
    model, encoder, decoder = compiled_models(config, 1)
    assert decoder is None  # the image bypasses the code: no decoder of the code alone
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    removed = keras.Model(model.input, model.get_layer("output_conv_act").output)(x)
    out = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(out, x - keras.ops.convert_to_numpy(removed), atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")  # safe_mode=True: no Lambda layers
    assert loaded.get_layer("residual_output").__class__.__name__ == "Subtract"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), out, atol=1e-6)
    assert (type(loaded.loss).__name__, loaded.loss.kind) == ("ImageLoss", "charbonnier")
    # Mixed precision: the subtraction stays float32, as the output activation does.
    bf16 = build_models(config.model, "mixed_bfloat16")[0]
    assert bf16.get_layer("residual_output").compute_dtype == "float32"


@pytest.mark.parametrize("kind, old", [("charbonnier", "Charbonnier"), ("ssim_l1", "SSIML1")])
def test_a_model_saved_with_an_old_loss_class_loads_as_image_loss(tmp_path, keras, kind, old):
    import json
    import zipfile

    from autoencoder.losses import ImageLoss
    from autoencoder.model import load_model

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="conv")(inputs))
    model.compile(optimizer="adam", loss=ImageLoss(kind))
    model.save(tmp_path / "new.keras")
    # The model.keras of a version before ImageLoss: the same file, but its loss is the old
    # registered class with the config that class saved (name and reduction, no kind).
    with zipfile.ZipFile(tmp_path / "new.keras") as new:
        files = {name: new.read(name) for name in new.namelist()}
    config = json.loads(files["config.json"])
    config["compile_config"]["loss"] = {
        "module": "autoencoder.losses",
        "class_name": old,
        "config": {"name": kind, "reduction": "sum_over_batch_size"},
        "registered_name": f"autoencoder>{old}",
    }
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)

    loaded = load_model(tmp_path / "old.keras")
    assert type(loaded.loss) is ImageLoss
    assert (loaded.loss.kind, loaded.loss.name) == (kind, kind)
    y = np.full((2, 4, 4, 1), [[[[0.5]]], [[[1.0]]]], np.float32)
    x = np.full((2, 4, 4, 1), [[[[0.25]]], [[[1.0]]]], np.float32)
    expected = {  # constant images: SSIM is its luminance term, C1 = 1e-4
        "charbonnier": (math.sqrt(0.0625 + 1e-6) + 1e-3) / 2,
        "ssim_l1": (0.84 * (1 - (0.25 + 1e-4) / (0.3125 + 1e-4)) + 0.16 * 0.25) / 2,
    }[kind]
    assert float(loaded.loss(y, x)) == pytest.approx(expected, rel=1e-4)
    assert float(loaded.loss(y, x)) == float(ImageLoss(kind)(y, x))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(y)), keras.ops.convert_to_numpy(model(y))
    )


# ---------------------------------------------------------------------------------------------
# Training: every head and loss, on every family, lowers the validation loss


CASES = {
    "mse through linear": [LINEAR, "train.loss=mse"],
    "mse residual, denoising": [
        RESIDUAL,
        "train.loss=mse",
        "data.noise={kind: gaussian, level: 0.3}",
    ],
    "l1": ["train.loss=l1"],
    "charbonnier linear": [LINEAR, "train.loss=charbonnier"],
    "ssim_l1": ["train.loss=ssim_l1"],
    "skips, charbonnier, residual": [
        "model.encoder=[{filters: 4}, {filters: 8, strides: 2}]",
        "model.latent_dim=null",
        "model.skips=concat",
        RESIDUAL,
        "train.loss=charbonnier",
        "data.noise={kind: gaussian, level: 0.3}",
    ],
    "residual blocks, ssim_l1": [
        "model.encoder=[{type: residual, filters: 4, strides: 2}, {filters: 8, strides: 2}]",
        "train.loss=ssim_l1",
    ],
    "vae, charbonnier": ["model.kind=vae", "train.loss=charbonnier"],
    "vae, ssim_l1, linear": ["model.kind=vae", LINEAR, "train.loss=ssim_l1"],
}


@pytest.mark.parametrize("case", CASES)
def test_each_head_and_loss_lowers_the_validation_loss(tmp_path, keras, case):
    from autoencoder.data import load_splits
    from autoencoder.noise import run_datasets
    from autoencoder.runtime import seed_everything
    from autoencoder.trainer import compiled_models

    config = tiny(tmp_path, "train.epochs=3", "train.optimizer.learning_rate=0.003", *CASES[case])
    seed_everything(config.seed)
    splits = load_splits(config)
    train_ds, val_ds = run_datasets(config, splits)
    model = compiled_models(config, int(train_ds.cardinality()))[0]
    before = model.evaluate(val_ds, verbose=0, return_dict=True)["loss"]
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=3, verbose=0, shuffle=False
    ).history
    val = history["val_loss"]
    assert all(np.isfinite(val)), val
    assert val[-1] < val[0] < before, (before, val)


# ---------------------------------------------------------------------------------------------
# Scoring clips what a linear head gives


def test_a_linear_heads_out_of_range_output_is_scored_clipped(tmp_path, keras):
    from autoencoder.data import load_splits
    from autoencoder.evaluate import evaluate_split
    from autoencoder.model import build_models

    config = tiny(tmp_path, LINEAR, "train.loss=mse")
    model = build_models(config.model)[0]
    conv = model.get_layer("decoder").get_layer("output_conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([np.zeros_like(kernel), np.full_like(bias, 2.0)])  # outputs 2.0 everywhere
    splits = load_splits(config)
    result = evaluate_split(config, model, splits, "test")
    clean = splits.images("test").astype(np.float64)
    assert result.recon.max() == 1.0
    # Scored against 1.0 (clipped), not 2.0.
    assert result.metrics["test/mse"] == pytest.approx(np.mean((clean - 1.0) ** 2), rel=1e-5)
    assert result.metrics["test/mae"] == pytest.approx(np.mean(1.0 - clean), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model.output.residual=true"],
            "--set model.output.residual=true: model.output: residual: true subtracts the output "
            "from the input, so the output must be free to take any sign, but activation is "
            "sigmoid; set activation: linear",
        ),
        (
            [LINEAR],
            "defaults: train: loss bce needs outputs in (0, 1), but model.output.activation is "
            "linear; use a sigmoid output or another loss (mse, l1, charbonnier, ssim_l1)",
        ),
        (
            ["model.kind=vae", "model.latent_dim=4", RESIDUAL, "train.loss=mse"],
            f"--set {RESIDUAL}: model: kind vae cannot have output.residual: true: a sample from "
            f"the prior has no input to subtract from; use output.residual: false",
        ),
        (
            ["train.loss=ssim"],
            "--set train.loss=ssim: train.loss: must be 'bce', 'mse', 'mae', 'l1', 'charbonnier' "
            "or 'ssim_l1', got 'ssim'",
        ),
    ],
)
def test_refusals_are_one_line(overrides, message):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


def test_a_residual_denoiser_runs_end_to_end_without_a_decoder(tmp_path, caplog):
    import logging

    from autoencoder.api import load_run
    from autoencoder.embed import check_embeddable
    from autoencoder.pipeline import train_run

    config = tiny(
        tmp_path,
        "train.epochs=2",
        RESIDUAL,
        "train.loss=mse",
        "data.noise={kind: gaussian, level: 0.3}",
    )
    with caplog.at_level(logging.INFO):
        run_dir, metrics = train_run(config)
    assert (run_dir / "model.keras").is_file() and not (run_dir / "decoder.keras").exists()
    assert "no decoder.keras: a residual head subtracts from the input image" in caplog.text
    assert metrics["test/psnr"] > metrics["test/noisy_psnr"]  # it removes some of the noise
    run = load_run(run_dir)
    assert run.decoder is None
    x = run.images("test", 2)[0]
    out = run.reconstruct(x)
    # The model returns its input minus what it predicts; an image clips that to [0, 1].
    np.testing.assert_allclose(out, np.clip(run.model.predict(x, verbose=0), 0, 1), atol=1e-6)
    assert out.shape == (2, 28, 28, 1) and np.abs(out - x).max() > 0  # it changed the image
    with pytest.raises(UserError) as info:
        run.decode(np.zeros((1, 8), np.float32))
    assert str(info.value) == (
        f"{run_dir}: the model has a residual head (model.output.residual: true): it returns its "
        f"input minus what it predicts, so no decoder makes images from the code alone; use "
        f"reconstruct(x)"
    )
    with pytest.raises(UserError) as info:
        check_embeddable(run_dir, config, plan_model(config.model))
    assert str(info.value) == (
        f"{run_dir}: model.output.residual is true: the model returns its input minus what it "
        f"predicts, so the image bypasses the code; to embed, train a run with "
        f"`model.output.residual: false`"
    )
