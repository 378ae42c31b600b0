"""Encoder, decoder and autoencoder as Keras models, built layer for layer from the shape plan.

Every layer comes from `shapes.plan_model`, so the sizes and parameter counts that
`autoencoder shapes` prints are the built model's. Only built-in layers with explicit names, no
Lambda: a saved .keras file loads with `keras.models.load_model(path, safe_mode=True)`.
"""

from __future__ import annotations

from typing import Any

from autoencoder import runtime
from autoencoder.config import ModelConfig
from autoencoder.shapes import Plan, PlannedLayer, plan_model


def build_models(model_cfg: ModelConfig) -> tuple[Any, Any, Any]:
    """(autoencoder, encoder, decoder): three keras.Model sharing the same layer objects."""
    return build_from_plan(plan_model(model_cfg))


def build_from_plan(plan: Plan) -> tuple[Any, Any, Any]:
    """Build the three models of a Plan (autoencoder = decoder(encoder(input)))."""
    runtime.tensorflow()
    import keras

    image = keras.Input(shape=plan.input_shape, name="image")
    encoder = keras.Model(image, _apply(plan.part("encoder"), image), name="encoder")
    code = keras.Input(shape=plan.code_shape, name="code")
    decoder = keras.Model(code, _apply(plan.part("decoder"), code), name="decoder")
    inputs = keras.Input(shape=plan.input_shape, name="input")
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    return autoencoder, encoder, decoder


def _apply(layers: list[PlannedLayer], x: Any) -> Any:
    for planned in layers:
        for layer in keras_layers(planned):
            x = layer(x)
    return x


def keras_layers(planned: PlannedLayer) -> list[Any]:
    """The Keras layers of one planned layer: main layer [, BatchNorm, Activation] [, Dropout]."""
    import keras

    main = _main_layer(planned)
    layers = [main]
    if planned.batch_norm:
        # Conv -> BatchNormalization -> activation: the main layer is built without activation.
        layers += [keras.layers.BatchNormalization(name=f"{planned.name}_bn"),
                   keras.layers.Activation(planned.activation, name=f"{planned.name}_act")]
    if planned.dropout:
        layers.append(keras.layers.Dropout(planned.dropout, name=f"{planned.name}_dropout"))
    return layers


def _conv_arguments(planned: PlannedLayer) -> dict[str, Any]:
    import keras

    options = planned.options
    regularizer = options.get("kernel_regularizer")
    arguments = dict(
        filters=options["filters"], kernel_size=planned.kernel, strides=planned.strides,
        padding=planned.padding, dilation_rate=planned.dilation,
        activation=None if planned.batch_norm else planned.activation,
        use_bias=options.get("use_bias", True),
        kernel_initializer=options.get("kernel_initializer", "glorot_uniform"),
        kernel_regularizer=keras.regularizers.L1L2(*regularizer) if regularizer else None,
        name=planned.name)
    if planned.name == "output_conv":
        # Keep the reconstruction (and its sigmoid) in float32 under a mixed-precision policy.
        arguments["dtype"] = "float32"
    return arguments


def _main_layer(planned: PlannedLayer) -> Any:
    import keras

    L = keras.layers
    kind, options = planned.kind, planned.options
    if kind == "Conv2D":
        return L.Conv2D(**_conv_arguments(planned))
    if kind == "Conv2DTranspose":
        return L.Conv2DTranspose(output_padding=planned.output_padding, **_conv_arguments(planned))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(L, kind)(pool_size=planned.kernel, strides=planned.strides,
                                padding=planned.padding, name=planned.name)
    if kind == "UpSampling2D":
        return L.UpSampling2D(size=options["size"], interpolation=options["interpolation"],
                              name=planned.name)
    if kind == "Cropping2D":
        return L.Cropping2D(cropping=options["cropping"], name=planned.name)
    if kind == "ZeroPadding2D":
        return L.ZeroPadding2D(padding=options["padding"], name=planned.name)
    if kind == "Flatten":
        return L.Flatten(name=planned.name)
    if kind == "Dense":
        return L.Dense(options["units"], activation=planned.activation, name=planned.name)
    if kind == "Reshape":
        return L.Reshape(options["target_shape"], name=planned.name)
    raise ValueError(f"no Keras layer for planned kind {kind!r}")
