"""The Keras models: parameter counts, shapes, safe .keras round trip, and the `shapes` command."""

import numpy as np
import pytest
from conftest import ROOT, cli

from autoencoder.config import ModelConfig, load_config
from autoencoder.shapes import plan_model

PRESETS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def built(keras):
    """Each preset's (config, plan, (autoencoder, encoder, decoder)), built once."""
    from autoencoder.model import build_models

    out = {}
    for name in ("seed_tutorial.yaml", "keras_denoising.yaml", "bottleneck32.yaml"):
        cfg = load_config(ROOT / "configs" / name).model
        out[name] = cfg, plan_model(cfg), build_models(cfg)
    return out


def tutorial_reference(keras):
    """The classic Keras Conv2DTranspose tutorial, written with plain Keras."""
    L = keras.layers
    x = inputs = keras.Input((28, 28, 1))
    for f in (32, 16, 8):
        x = L.Conv2D(f, 3, activation="relu", kernel_initializer="he_normal")(x)
    for f in (8, 16, 32):
        x = L.Conv2DTranspose(f, 3, activation="relu", kernel_initializer="he_normal")(x)
    return keras.Model(inputs, L.Conv2D(1, 3, activation="sigmoid", padding="same")(x))


def denoising_reference(keras):
    """keras.io examples/vision/autoencoder.py, written with plain Keras."""
    L = keras.layers
    x = inputs = keras.Input((28, 28, 1))
    for _ in range(2):
        x = L.Conv2D(32, 3, activation="relu", padding="same")(x)
        x = L.MaxPooling2D(2, padding="same")(x)
    for _ in range(2):
        x = L.Conv2DTranspose(32, 3, strides=2, activation="relu", padding="same")(x)
    return keras.Model(inputs, L.Conv2D(1, 3, activation="sigmoid", padding="same")(x))


def test_param_counts_match_planner_and_reference_keras_models(keras, built):
    for name, (_, plan, (autoencoder, encoder, decoder)) in built.items():
        assert autoencoder.count_params() == plan.total_params, name
        assert encoder.count_params() == sum(layer.params for layer in plan.part("encoder"))
        assert decoder.count_params() == sum(layer.params for layer in plan.part("decoder"))
    assert built["seed_tutorial.yaml"][1].total_params == tutorial_reference(keras).count_params()
    assert built["keras_denoising.yaml"][1].total_params == 28353
    assert denoising_reference(keras).count_params() == 28353


def test_layer_shapes_match_the_reference_models(keras, built):
    ref = tutorial_reference(keras)
    ours = built["seed_tutorial.yaml"][2][0]
    ref_shapes = [tuple(layer.output.shape[1:]) for layer in ref.layers[1:]]
    plan_shapes = [layer.output_shape for layer in built["seed_tutorial.yaml"][1].layers]
    assert plan_shapes == ref_shapes
    assert ours.output_shape == ref.output_shape


def test_encoder_decoder_autoencoder_shapes(built):
    for cfg, plan, (autoencoder, encoder, decoder) in built.values():
        shape = tuple(cfg.input_shape)
        assert autoencoder.input_shape[1:] == shape and autoencoder.output_shape[1:] == shape
        assert encoder.output_shape[1:] == plan.code_shape
        assert decoder.input_shape[1:] == plan.code_shape
    assert built["bottleneck32.yaml"][2][1].output_shape == (None, 32)


def test_models_share_layers(built):
    autoencoder, encoder, decoder = built["bottleneck32.yaml"][2]
    assert autoencoder.get_layer("encoder") is encoder
    assert autoencoder.get_layer("decoder") is decoder


def test_no_lambda_layers(built):
    for _, _, models in built.values():
        for layer in models[0]._flatten_layers(include_self=False):
            assert type(layer).__name__ not in ("Lambda", "Resizing")


def test_pass_through_options(keras):
    from autoencoder.model import build_models

    cfg = ModelConfig.model_validate(
        dict(
            input_shape=[12, 12, 1],
            encoder=[
                dict(
                    filters=4,
                    dilation_rate=2,
                    padding="valid",
                    use_bias=False,
                    kernel_initializer="he_normal",
                    kernel_regularizer={"l2": 1e-4},
                    batch_norm=True,
                    dropout=0.25,
                    activation="elu",
                ),
                dict(type="maxpool", padding="same", mirror="upsample"),
            ],
        )
    )
    _, encoder, decoder = build_models(cfg)
    conv = encoder.get_layer("enc1_conv")
    assert conv.dilation_rate == (2, 2) and conv.use_bias is False
    assert type(conv.kernel_initializer).__name__ == "HeNormal"
    assert conv.kernel_regularizer.l2 == pytest.approx(1e-4)
    names = [layer.name for layer in encoder.layers]
    assert names[1:5] == ["enc1_conv", "enc1_conv_bn", "enc1_conv_act", "enc1_conv_dropout"]
    assert encoder.get_layer("enc1_conv_act").activation.__name__ == "elu"
    # The output convolution follows the policy; its activation is a float32 layer of its own.
    assert decoder.get_layer("output_conv").activation.__name__ == "linear"
    assert decoder.get_layer("output_conv_act").dtype_policy.name == "float32"
    assert decoder.get_layer("output_conv_act").activation.__name__ == "sigmoid"


def test_mixed_bfloat16_keeps_the_reconstruction_float32(keras):
    from autoencoder.model import build_models

    autoencoder, _, decoder = build_models(
        load_config(ROOT / "configs/seed_tutorial.yaml").model, dtype="mixed_bfloat16"
    )
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing global was set
    assert decoder.get_layer("dec3_convT").compute_dtype == "bfloat16"
    assert decoder.get_layer("output_conv").compute_dtype == "bfloat16"
    assert decoder.get_layer("output_conv_act").compute_dtype == "float32"
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    y = autoencoder.predict(x, verbose=0)
    assert y.dtype == np.float32 and y.shape == x.shape and 0.0 < y.min() <= y.max() < 1.0


def test_saved_models_load_safely_with_same_outputs(keras, built, tmp_path):
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    for name in ("seed_tutorial.yaml", "bottleneck32.yaml"):
        autoencoder, encoder, _ = built[name][2]
        path = tmp_path / f"{name}.keras"
        autoencoder.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        assert np.allclose(
            loaded.predict(x, verbose=0), autoencoder.predict(x, verbose=0), atol=1e-6
        )
        assert np.allclose(
            loaded.get_layer("encoder").predict(x, verbose=0),
            encoder.predict(x, verbose=0),
            atol=1e-6,
        )


def test_space_to_depth_and_back_are_tensorflows_ops_and_load_safely(keras, tmp_path):
    import tensorflow as tf

    from autoencoder.model import build_models

    cfg = ModelConfig.model_validate(
        {
            "input_shape": [8, 6, 3],
            "encoder": [{"type": "space_to_depth"}, {"type": "conv", "filters": 8}],
            "decoder": [{"type": "depth_to_space"}],
        }
    )
    autoencoder, encoder, decoder = build_models(cfg)
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 6, 3), dtype=np.float32)
    fold = keras.Model(encoder.input, encoder.get_layer("enc1_space_to_depth").output)
    np.testing.assert_array_equal(fold(x).numpy(), tf.nn.space_to_depth(x, 2).numpy())
    code = rng.random((2, 4, 3, 8), dtype=np.float32)
    unfold = keras.Model(decoder.input, decoder.get_layer("dec1_depth_to_space").output)
    np.testing.assert_array_equal(unfold(code).numpy(), tf.nn.depth_to_space(code, 2).numpy())
    assert (
        autoencoder.count_params() == plan_model(cfg).total_params == 9 * 12 * 8 + 8 + 9 * 2 * 3 + 3
    )
    autoencoder.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), autoencoder.predict(x, verbose=0))


@pytest.mark.parametrize(
    "kernel,padding,bias,activation",
    [
        (3, "valid", True, "relu"),
        (2, "valid", False, None),
        ((3, 5), "valid", True, "sigmoid"),
        (3, "same", True, "relu"),
        (5, "same", False, "elu"),
    ],
)
def test_stride1_transpose_as_conv_is_the_same_function(keras, kernel, padding, bias, activation):
    """The Conv2D form of a stride-1 Conv2DTranspose: same outputs and same gradients."""
    import tensorflow as tf

    from autoencoder.model import conv_form

    layer = transpose_layer(keras, kernel, padding, bias, activation, dtype="float32")
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 9, 11, 5)), tf.float32)
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    results = []
    for call in (layer.call, lambda inputs: conv_form(layer, inputs)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
            # A random upstream gradient, so that every output position counts differently.
            upstream = tf.constant(np.random.default_rng(2).normal(size=y.shape), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_weights])])
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    expected_shape = (3, 9 + k[0] - 1, 11 + k[1] - 1, 7) if padding == "valid" else (3, 9, 11, 7)
    assert tuple(results[0][0].shape) == tuple(results[1][0].shape) == expected_shape
    assert len(results[0]) == 3 + bias
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def transpose_layer(
    keras, kernel, padding="valid", bias=True, activation="relu", dtype=None, plain=False
):
    """One decoder Conv2DTranspose (stride 1, 7 filters) as the model builder makes it."""
    from autoencoder.model import keras_layers, transposes_as_conv
    from autoencoder.shapes import PlannedLayer

    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    planned = PlannedLayer(
        block="dec 1",
        name="dec1_convT",
        kind="Conv2DTranspose",
        part="decoder",
        input_shape=(9, 11, 5),
        output_shape=(0, 0, 0),
        kernel=k,
        strides=(1, 1),
        padding=padding,
        dilation=(1, 1),
        activation=activation,
        options={"filters": 7, "use_bias": bias},
    )
    assert transposes_as_conv(planned)
    layer = keras_layers(planned, plain=plain)[0]
    assert type(layer) is keras.layers.Conv2DTranspose
    if dtype:
        layer.dtype_policy = dtype
    return layer


def test_bfloat16_transposes_run_as_conv2d_float32_as_keras_does(keras):
    import tensorflow as tf

    def ops(layer):
        layer.build((None, 9, 11, 5))
        graph = (
            tf.function(layer).get_concrete_function(tf.TensorSpec((2, 9, 11, 5), tf.float32)).graph
        )
        return {op.type for op in graph.get_operations()}

    assert "Conv2DBackpropInput" not in ops(transpose_layer(keras, 3, dtype="mixed_bfloat16"))
    assert "Conv2D" in ops(transpose_layer(keras, 3, dtype="mixed_bfloat16"))
    assert "Conv2DBackpropInput" in ops(transpose_layer(keras, 3, dtype="float32"))
    assert "Conv2DBackpropInput" in ops(
        transpose_layer(keras, 3, dtype="mixed_bfloat16", plain=True)
    )


def test_which_layers_compute_as_conv(built):
    from autoencoder.model import transposes_as_conv

    def fast(name):
        return [p.name for p in built[name][1].layers if transposes_as_conv(p)]

    assert fast("seed_tutorial.yaml") == ["dec1_convT", "dec2_convT", "dec3_convT"]
    assert fast("keras_denoising.yaml") == []  # stride 2: computed as Keras does


@pytest.mark.parametrize("preset", PRESETS)
def test_shapes_command_prints_every_preset(preset):
    result = cli("shapes", f"configs/{preset}", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("block")
    assert "parameters:" in result.stdout and "compression" in result.stdout
    config = (ROOT / "configs" / preset).read_text()
    assert config.startswith("#") and "\nname: " in config


def test_shapes_command_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model:\n  input_shape: [28, 28, 1]\n  encoder:\n"
        "    - {type: conv, filters: 4, strides: 2}\n"
        "  decoder:\n    - {type: conv_transpose, filters: 4, strides: 4}\n"
    )
    result = cli("shapes", bad, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: decoder block 1 (model.decoder[0]): 14x14 -> 56x56")
