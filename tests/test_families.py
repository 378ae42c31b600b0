"""Model families: U-Net skips, residual blocks and the VAE, planned, built, refused and trained."""

import json
import math
import shutil

import numpy as np
import pytest
from conftest import ROOT, assert_error, cli, tiny

from autoencoder.config import ModelConfig, load_config
from autoencoder.errors import UserError
from autoencoder.runs import read_history
from autoencoder.shapes import format_plan, plan_model

ODD = [(25, 25, 1), (27, 19, 1), (29, 31, 2)]


def model(**fields) -> ModelConfig:
    return ModelConfig.model_validate(fields)


def conv(filters, **kw):
    return {"type": "conv", "filters": filters, **kw}


def res(filters, **kw):
    return {"type": "residual", "filters": filters, **kw}


def convt(filters, **kw):
    return {"type": "conv_transpose", "filters": filters, **kw}


def half(n):
    return (n - 1) // 2 + 1  # a 'same' stride-2 convolution's output length


# A full-size convolution, two stride-2 steps (one of them residual), a residual block at 1/4.
UNET = [conv(8), conv(12, strides=2), res(16, strides=2, batch_norm=True), res(16)]


def family(name, shape):
    """The model of one family for one input shape."""
    h, w, _ = shape
    fields = {
        "unet_concat": dict(encoder=UNET, skips="concat"),
        "unet_add": dict(encoder=UNET, skips="add"),
        "residual_code": dict(
            encoder=[conv(8, strides=2), res(16, strides=2, batch_norm=True), res(16)],
            latent_dim=6,
        ),
        # An explicit decoder has to land on every size itself: target_size does it.
        "explicit_skips": dict(
            encoder=[conv(8), conv(16, strides=2), conv(16, strides=2)],
            skips="add",
            decoder=[
                res(16),
                convt(16, strides=2, target_size=[half(h), half(w)]),
                convt(8, strides=2, target_size=[h, w]),
                conv(8),
            ],
        ),
        "vae": dict(kind="vae", encoder=[conv(8, strides=2), res(16, strides=2)], latent_dim=4),
    }[name]
    return model(input_shape=list(shape), **fields)


FAMILIES = ["unet_concat", "unet_add", "residual_code", "explicit_skips", "vae"]


@pytest.mark.parametrize("shape", ODD)
@pytest.mark.parametrize("name", FAMILIES)
def test_plan_comes_back_to_odd_inputs_and_skips_meet(name, shape):
    plan = plan_model(family(name, shape))
    assert plan.layers[-1].output_shape == shape
    for layer in plan.layers:
        if layer.merge_shape is not None:  # residual shortcuts and skips: sizes meet exactly
            assert layer.merge_shape[:2] == layer.input_shape[:2], (name, layer.name)
    skips = plan.skip_layers
    if name.startswith("unet"):
        # Back at 1/2 size and at full size, each joined by the encoder's activation there.
        assert [s.output_shape[:2] for s in skips] == [(half(shape[0]), half(shape[1])), shape[:2]]
    if name == "unet_concat":
        assert [s.merge for s in skips] == ["enc2_conv", "enc1_conv"]
        # The decoder's channels (the mirrored blocks' filters, 16 and 12) and the encoder's.
        assert [s.output_shape[2] for s in skips] == [16 + 12, 12 + 8]
    if name == "unet_add":
        # Add needs equal channels: 1x1 projections bring the encoder's to the decoder's.
        assert [s.merge for s in skips] == ["dec2_skip_proj", "dec3_skip_proj"]
        assert [s.output_shape[2] for s in skips] == [16, 12]
    if name in ("residual_code", "vae"):
        assert skips == []


@pytest.mark.parametrize("shape", ODD)
@pytest.mark.parametrize("name", FAMILIES)
def test_keras_builds_the_planned_shapes_and_parameters(keras, name, shape):
    from autoencoder.model import build_from_plan

    plan = plan_model(family(name, shape))
    autoencoder, encoder, decoder = build_from_plan(plan)
    assert autoencoder.count_params() == plan.total_params
    for planned in plan.layers:
        if planned.part == "vae":
            continue  # the Sampling layer lives in the VAE model, between encoder and decoder
        owner = autoencoder if decoder is None else {"encoder": encoder, "decoder": decoder}
        built = owner if decoder is None else owner[planned.part]
        got = tuple(built.get_layer(planned.name).output.shape[1:])
        assert got == planned.output_shape, (name, planned.name)
    if decoder is None:  # skips: one graph, cut at the code for the encoder
        assert encoder.output_shape[1:] == plan.code_shape
    else:
        assert encoder.count_params() + decoder.count_params() == plan.total_params
    layers = autoencoder._flatten_layers(include_self=False)
    assert not {type(layer).__name__ for layer in layers} & {"Lambda", "Resizing"}
    # TensorFlow runs it too.
    assert autoencoder.predict(np.zeros((1, *shape), "float32"), verbose=0).shape == (1, *shape)


def test_residual_block_parameters_and_shortcuts(keras):
    from autoencoder.model import build_models

    cfg = model(input_shape=[9, 9, 4], encoder=[res(8, strides=2), res(8)])
    plan = plan_model(cfg)
    names = [layer.name for layer in plan.part("encoder")]
    # The strided block projects its input (1x1, stride 2); the second adds its input unchanged.
    assert names == [
        *["enc1_res1_conv", "enc1_res2_conv", "enc1_proj_conv", "enc1_add"],
        *["enc2_res1_conv", "enc2_res2_conv", "enc2_add"],
    ]
    # 3*3*4*8 + 8, 3*3*8*8 + 8, 1*1*4*8 + 8: Keras's counts for the three convolutions.
    assert sum(layer.params for layer in plan.part("encoder")[:4]) == 296 + 584 + 40
    mirror = [(layer.name, layer.kind) for layer in plan.part("decoder")[3:7]]
    assert mirror == [
        ("dec2_res1_convT", "Conv2DTranspose"),
        ("dec2_res2_conv", "Conv2D"),
        ("dec2_proj_convT", "Conv2DTranspose"),
        ("dec2_add", "Add"),
    ]
    autoencoder, encoder, _ = build_models(cfg)
    assert autoencoder.count_params() == plan.total_params
    assert encoder.get_layer("enc2_add").output.shape[1:] == (5, 5, 8)


def test_shapes_table_shows_skips_and_the_note():
    result = cli("shapes", "configs/unet_denoise.yaml", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "Concatenate" in line]
    assert len(rows) == 2
    assert "14x14x64 + 14x14x32 -> 14x14x96" in rows[0] and "skip from enc 2" in rows[0]
    assert "28x28x32 + 28x28x32 -> 28x28x64" in rows[1] and "skip from enc 1" in rows[1]
    assert "trained on noisy inputs, as here, that is the point of them" in result.stdout
    clean = format_plan(plan_model(load_config(ROOT / "configs/unet_denoise.yaml").model), False)
    assert "it can copy them through, so its compression means nothing there" in clean


def test_a_wrong_skip_is_one_line_naming_the_block(tmp_path):
    # Lands back on 25x25 through a crop, which a plain decoder may do; a skip may not: at
    # 14x14 it would meet the encoder's 13x13. The output_padding is the user's own, so it is
    # refused, not replaced.
    text = (
        "model:\n  input_shape: [25, 25, 1]\n  skips: concat\n  encoder:\n"
        "    - {type: conv, filters: 4}\n    - {type: conv, filters: 8, strides: 2}\n"
        "    - {type: conv, filters: 8, strides: 2}\n  decoder:\n"
        "    - {type: conv_transpose, filters: 8, strides: 2, output_padding: 1}\n"
        "    - {type: conv_transpose, filters: 4, strides: 2}\n"
        "    - {type: crop, cropping: [[0, 3], [0, 3]]}\n"
    )
    path = tmp_path / "wrong_skip.yaml"
    path.write_text(text)
    assert cli("shapes", path, "--set", "model.skips=none", timeout=60).returncode == 0
    assert_error(
        cli("shapes", path, timeout=60),
        "decoder block 1 (model.decoder[0]): 7x7 -> 14x14, but with skips it must land on 13x13 "
        "(encoder block 2's output, which the skip joins there); use output_padding: 0 "
        "(out = (in-1)*stride + kernel - 2*pad + output_padding)",
    )


SKIP_PRESETS = [
    p.name for p in sorted((ROOT / "configs").glob("*.yaml")) if "skips:" in p.read_text()
]


def test_every_skip_preset_is_found():
    assert "unet_denoise.yaml" in SKIP_PRESETS


@pytest.mark.parametrize("shape", [(27, 19, 1), (29, 31, 2), (25, 25, 1), (33, 47, 3)])
@pytest.mark.parametrize("preset", SKIP_PRESETS)
def test_skip_presets_land_on_any_size_by_themselves(keras, preset, shape):
    from autoencoder.model import build_from_plan

    config = load_config(ROOT / "configs" / preset, [f"model.input_shape={list(shape)}"])
    plan = plan_model(config.model)
    assert plan.layers[-1].output_shape == shape
    for layer in plan.skip_layers:
        assert layer.merge_shape[:2] == layer.input_shape[:2], layer.name
    # Keras's default output_padding doubles a size: an odd one needs another, chosen here.
    chosen = [layer for layer in plan.layers if "chosen to meet the skip" in layer.formula]
    assert chosen and all(layer.output_padding is not None for layer in chosen)
    assert [layer.output_shape[:2] for layer in chosen][-1] == shape[:2]
    autoencoder, _, _ = build_from_plan(plan)  # Keras as the oracle
    for planned in plan.layers:
        got = tuple(autoencoder.get_layer(planned.name).output.shape[1:])
        assert got == planned.output_shape, planned.name
    assert autoencoder.predict(np.zeros((1, *shape), "float32"), verbose=0).shape == (1, *shape)
    assert "chosen to meet the skip at" in format_plan(plan)


def test_a_skip_preset_at_its_own_size_keeps_keras_defaults():
    plan = plan_model(load_config(ROOT / "configs/unet_denoise.yaml").model)
    assert not [layer for layer in plan.layers if "chosen to meet the skip" in layer.formula]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model.encoder=[{filters: 4, strides: 2}]", "model.skips=concat"],
            "model.skips: concat, but the decoder never comes back to a size the encoder had "
            "before its last block (the encoder goes 28x28 -> 14x14); use skips: none, or add "
            "encoder blocks that keep a size before shrinking it",
        ),
        (
            ["model.decoder=[{type: residual, filters: 4, strides: 2}]"],
            "decoder block 1 (model.decoder[0]).strides: a residual block in an explicit decoder "
            "keeps its size (strides 1); upsample with a conv_transpose block before it, or use "
            "decoder: mirror, which mirrors strided residual blocks",
        ),
    ],
)
def test_planner_refusals(overrides, message):
    with pytest.raises(UserError) as info:
        plan_model(load_config(None, overrides).model)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model.kind=vae"],
            "--set model.kind=vae: model: kind vae needs latent_dim (the size of its Gaussian "
            "code), e.g. latent_dim: 32",
        ),
        (
            ["model.kind=vae", "model.latent_dim=4", "model.skips=concat"],
            "--set model.skips=concat: model: kind vae cannot have skips concat: a sample from the "
            "prior has no encoder activations to skip; use skips: none",
        ),
        (
            ["train.kl={weight: 0.5}"],
            "--set train.kl={weight: 0.5}: train: kl is the KL term of a VAE, but model.kind is "
            "autoencoder; set model.kind: vae (with latent_dim) or remove train.kl",
        ),
        (
            ["model.encoder=[{type: residual, filters: 4, padding: valid}]"],
            "--set model.encoder=[{type: residual, filters: 4, padding: valid}]: "
            "model.encoder[0]: a residual block needs padding same (its shortcut is added to the "
            "convolutions' output, so both must keep the size); leave padding out",
        ),
        (
            ["model.encoder=[{type: residual, filters: 4, kernel_size: 2}]"],
            "--set model.encoder=[{type: residual, filters: 4, kernel_size: 2}]: "
            "model.encoder[0]: a residual block needs an odd kernel_size (got [2, 2]); use 3 or 5",
        ),
        (
            ["model.encoder=[{type: space_to_depth, size: 1}, {filters: 8}]"],
            "--set model.encoder=[{type: space_to_depth, size: 1}, {filters: 8}]: "
            "model.encoder[0].size: must be greater than or equal to 2, got 1",
        ),
        (
            ["model.decoder=[{type: depth_to_space, size: 2.5}]"],
            "--set model.decoder=[{type: depth_to_space, size: 2.5}]: model.decoder[0].size: "
            "must be an integer, got 2.5",
        ),
    ],
)
def test_config_refusals(overrides, message):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


def test_vae_saves_and_loads_safely(keras, tmp_path):
    from autoencoder.model import build_models, custom_objects

    vae, encoder, decoder = build_models(family("vae", (27, 19, 1)))
    x = np.random.default_rng(0).random((3, 27, 19, 1), dtype=np.float32)
    for name, m in (("model", vae), ("encoder", encoder), ("decoder", decoder)):
        m.save(tmp_path / f"{name}.keras")
    loaded = keras.models.load_model(
        tmp_path / "model.keras", safe_mode=True, custom_objects=custom_objects()
    )
    assert type(loaded).__name__ == "VAE"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), vae.predict(x, verbose=0), atol=1e-6)
    # The encoder and decoder are plain functional models: no package code needed to load them.
    mean, log_var = keras.models.load_model(tmp_path / "encoder.keras", safe_mode=True)(x)
    assert tuple(mean.shape) == tuple(log_var.shape) == (3, 4)
    plain = keras.models.load_model(tmp_path / "decoder.keras", safe_mode=True)
    np.testing.assert_allclose(plain(mean).numpy(), vae.predict(x, verbose=0), atol=1e-5)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    out = tmp_path_factory.mktemp("vae")
    config = tiny(
        out,
        "model.kind=vae",
        "data.limit=1000",
        "train.epochs=3",
        "train.optimizer.learning_rate=0.005",
        "train.kl={weight: 1.0, warmup_epochs: 3}",
        "train.tensorboard=true",
    )
    return train_run(config)[0]


def test_a_vae_whose_warmup_outlasts_its_training_says_so(tmp_path, caplog):
    from autoencoder.pipeline import train_run

    config = tiny(tmp_path, "model.kind=vae", "train.epochs=1", "train.kl={warmup_epochs: 4}")
    with caplog.at_level("WARNING", logger="autoencoder"):
        train_run(config)
    assert [m for m in caplog.messages if m.startswith("train.kl")] == [
        "train.kl: the KL weight had risen to 0.25 of its 1 when training ended after epoch 1 "
        "(warm-up over 4 epochs): the model never trained with the full KL term; resume with "
        "more epochs or minutes, or lower train.kl.warmup_epochs"
    ]


def test_tiny_vae_logs_both_terms_and_its_kl_falls(vae_run):
    history = read_history(vae_run)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for key in ("reconstruction", "kl", "mse", "loss"):
        assert all(f"train/{key}" in r and f"val/{key}" in r for r in history), key
    # The warm-up: weight 1/3, 2/3, 1 at the end of each epoch of 8 steps.
    assert [r["train/kl_weight"] for r in history] == pytest.approx([1 / 3, 2 / 3, 1.0])
    # A light KL weight lets the first epoch spread the codes; the rising weight pulls them in.
    kl = [r["train/kl"] for r in history]
    assert kl[0] > kl[1] > kl[2] and kl[2] < 0.7 * kl[0], kl
    # Validation weighs KL fully whatever the warm-up, so its loss compares across epochs.
    for r in history:
        assert r["val/loss"] == pytest.approx(r["val/reconstruction"] + r["val/kl"], rel=1e-5)
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert metrics["test/kl"] > 0 and metrics["test/reconstruction"] > 0
    assert metrics["test/neg_elbo"] == pytest.approx(
        metrics["test/kl"] + metrics["test/reconstruction"]
    )


def test_evaluating_a_vae_gives_its_terms_on_either_split(vae_run):
    from autoencoder.evaluate import evaluate_run, format_metrics

    trained = json.loads((vae_run / "metrics.json").read_text())
    last = read_history(vae_run)[-1]
    val = evaluate_run(vae_run, split="val")
    # KL comes from the code's mean and variance alone: what validation measured, to rounding.
    assert val["val/kl"] == pytest.approx(last["val/kl"], rel=1e-3)
    assert val["val/neg_elbo"] == pytest.approx(val["val/kl"] + val["val/reconstruction"])
    assert "VAE terms per image: reconstruction" in format_metrics(val, "val")
    test = evaluate_run(vae_run)
    assert test["test/kl"] == pytest.approx(trained["test/kl"], rel=1e-3)
    # The reconstruction term decodes a sampled code: near training's, not equal to it.
    assert test["test/reconstruction"] == pytest.approx(trained["test/reconstruction"], rel=0.1)


def test_tiny_vae_writes_its_figures(vae_run):
    import matplotlib.image as mpimg

    for name in ("samples", "interpolations", "vae_terms", "reconstructions", "loss"):
        image = mpimg.imread(vae_run / "figures" / f"{name}.png")
        assert image.shape[0] >= 300 and image.shape[1] >= 600, name
        assert image[..., :3].std() > 0.05, name


def test_tensorboard_gets_images_and_both_terms(vae_run):
    tf = pytest.importorskip("tensorflow")

    def tags(part):
        found = set()
        for path in (vae_run / "logs" / part).glob("*tfevents*"):
            for record in tf.data.TFRecordDataset(str(path)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                found |= {(value.tag, event.step) for value in event.summary.value}
        return found

    images = tags("images")
    for epoch in range(3):
        assert {("reconstructions/test", epoch), ("samples/prior", epoch)} <= images
    assert {("epoch_kl", 2), ("epoch_reconstruction", 2)} <= tags("train")
    assert {("epoch_kl", 2), ("epoch_reconstruction", 2)} <= tags("validation")


def test_vae_resume_continues_the_warm_up(vae_run, tmp_path):
    from autoencoder.pipeline import train_run

    run = shutil.copytree(vae_run, tmp_path / "copy")
    train_run(load_config(run / "config.yaml", ["train.epochs=4"]), resume=run)
    history = read_history(run)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["train/kl_weight"] == pytest.approx(1.0)
    assert math.isfinite(history[-1]["val/loss"])


def test_skip_model_saves_no_decoder_and_warns_on_clean_inputs(tmp_path, caplog):
    import keras

    from autoencoder.pipeline import train_run

    config = tiny(tmp_path, "model.skips=concat", "model.latent_dim=null", "train.epochs=1")
    with caplog.at_level("WARNING"):
        run = train_run(config)[0]
    assert "it can copy them through" in caplog.text
    assert (run / "model.keras").is_file() and (run / "encoder.keras").is_file()
    assert not (run / "decoder.keras").exists()
    x = np.zeros((2, 28, 28, 1), "float32")
    code = keras.models.load_model(run / "encoder.keras", safe_mode=True).predict(x, verbose=0)
    assert code.shape == (2, 7, 7, 8)
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.predict(x, verbose=0).shape == x.shape


def test_a_denoiser_at_half_resolution_trains_and_its_loss_falls(tmp_path):
    from autoencoder.pipeline import train_run

    config = tiny(
        tmp_path,
        "model.encoder=[{type: space_to_depth}, {filters: 8}, {filters: 16, strides: 2}]",
        "model.decoder=[{type: conv_transpose, filters: 8, strides: 2}, {type: depth_to_space}]",
        "model.skips=concat",
        "model.latent_dim=null",
        "model.output={activation: linear, residual: true}",
        "train.loss=mse",
        "data.noise={kind: gaussian, level: 0.3}",
        "train.epochs=4",
        "train.optimizer.learning_rate=0.003",
    )
    run = train_run(config)[0]
    history = read_history(run)
    val = [row["val/loss"] for row in history]
    assert len(val) == 4 and all(a > b for a, b in zip(val, val[1:])), val
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/psnr"] > metrics["test/noisy_psnr"] + 0.5  # it denoises already


def test_a_vae_model_file_gives_its_input_shape_without_tensorflow(vae_run):
    from autoencoder.model import saved_input_shape

    for name in ("model.keras", "encoder.keras"):
        assert saved_input_shape(vae_run / name) == (28, 28, 1), name


def test_vae_interpolations_name_their_classes(vae_run, tmp_path, monkeypatch):
    from autoencoder.model import load_model
    from autoencoder.plots import vae as plots

    model = load_model(vae_run / "model.keras")
    rng = np.random.default_rng(0)
    x = rng.random((20, *model.encoder.input_shape[1:]), dtype=np.float32)
    y = np.arange(20) % 10
    names = [f"item {k}" for k in range(10)]
    seen = {}
    monkeypatch.setattr(plots, "plot_interpolations", lambda *a, **k: seen.update(k))
    plots.vae_figures(tmp_path, model, x, y, [], names)
    assert seen["names"] == names
