"""Encoder, decoder and autoencoder as Keras models, built layer for layer from the shape plan.

Every layer comes from `shapes.plan_model`, so the sizes and parameter counts that
`autoencoder shapes` prints are the built model's. Only built-in layers with explicit names, no
Lambda: a saved .keras file loads with `keras.models.load_model(path, safe_mode=True)`.
"""

from __future__ import annotations

import functools
from typing import Any

from autoencoder import runtime
from autoencoder.config import ModelConfig
from autoencoder.shapes import Plan, PlannedLayer, plan_model


def build_models(model_cfg: ModelConfig, plain: bool = False) -> tuple[Any, Any, Any]:
    """(autoencoder, encoder, decoder): three keras.Model sharing the same layer objects.

    Args:
      model_cfg: the `model` section of a config.
      plain: every layer computes as Keras's own code does (the benchmark's plain-Keras
        contenders); by default stride-1 Conv2DTranspose layers compute as a convolution.
    """
    return build_from_plan(plan_model(model_cfg), plain)


def build_from_plan(plan: Plan, plain: bool = False) -> tuple[Any, Any, Any]:
    """Build the three models of a Plan (autoencoder = decoder(encoder(input)))."""
    runtime.tensorflow()
    import keras

    image = keras.Input(shape=plan.input_shape, name="image")
    encoder = keras.Model(image, _apply(plan.part("encoder"), image, plain), name="encoder")
    code = keras.Input(shape=plan.code_shape, name="code")
    decoder = keras.Model(code, _apply(plan.part("decoder"), code, plain), name="decoder")
    inputs = keras.Input(shape=plan.input_shape, name="input")
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    return autoencoder, encoder, decoder


def _apply(layers: list[PlannedLayer], x: Any, plain: bool) -> Any:
    for planned in layers:
        for layer in keras_layers(planned, plain):
            x = layer(x)
    return x


def keras_layers(planned: PlannedLayer, plain: bool = False) -> list[Any]:
    """The Keras layers of one planned layer: main layer [, BatchNorm, Activation] [, Dropout]."""
    import keras

    main = _main_layer(planned)
    if not plain and transposes_as_conv(planned):
        main.call = functools.partial(_transpose_as_conv, main)
    layers = [main]
    if planned.name == "output_conv":
        # The reconstruction's activation is a layer of its own in float32, as Keras's
        # mixed-precision guide advises: the convolution runs in the policy's dtype (under
        # mixed_bfloat16 its float32 form held a float32 copy of the widest activation and its
        # gradient, ~200 MB at batch 1000, and took a third of the step), while the sigmoid and
        # the loss, which reads the logits, stay float32.
        layers.append(
            keras.layers.Activation(planned.activation, dtype="float32", name=f"{planned.name}_act")
        )
    if planned.batch_norm:
        # Conv -> BatchNormalization -> activation: the main layer is built without activation.
        layers += [
            keras.layers.BatchNormalization(name=f"{planned.name}_bn"),
            keras.layers.Activation(planned.activation, name=f"{planned.name}_act"),
        ]
    if planned.dropout:
        layers.append(keras.layers.Dropout(planned.dropout, name=f"{planned.name}_dropout"))
    return layers


def _conv_arguments(planned: PlannedLayer) -> dict[str, Any]:
    import keras

    options = planned.options
    regularizer = options.get("kernel_regularizer")
    arguments = dict(
        filters=options["filters"],
        kernel_size=planned.kernel,
        strides=planned.strides,
        padding=planned.padding,
        dilation_rate=planned.dilation,
        activation=None
        if planned.batch_norm or planned.name == "output_conv"
        else planned.activation,
        use_bias=options.get("use_bias", True),
        kernel_initializer=options.get("kernel_initializer", "glorot_uniform"),
        kernel_regularizer=keras.regularizers.L1L2(*regularizer) if regularizer else None,
        name=planned.name,
    )
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
        return getattr(L, kind)(
            pool_size=planned.kernel,
            strides=planned.strides,
            padding=planned.padding,
            name=planned.name,
        )
    if kind == "UpSampling2D":
        return L.UpSampling2D(
            size=options["size"], interpolation=options["interpolation"], name=planned.name
        )
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


def transposes_as_conv(planned: PlannedLayer) -> bool:
    """Whether this layer is a stride-1 Conv2DTranspose that _transpose_as_conv computes."""
    return (
        planned.kind == "Conv2DTranspose"
        and planned.strides == (1, 1)
        and planned.dilation == (1, 1)
        and not any(planned.output_padding or ())
        and (planned.padding == "valid" or all(k % 2 for k in planned.kernel))
    )


def _transpose_as_conv(layer: Any, inputs: Any) -> Any:
    """A stride-1 Conv2DTranspose's call; in bfloat16, computed as the Conv2D it equals.

    With stride 1, a transposed convolution is a convolution of the input zero-padded by k-1
    ('valid'; 'same' with an odd kernel pads (k-1)/2, which is Conv2D's 'same') with the kernel
    flipped in space and its channel axes swapped. TensorFlow runs the transposed form as
    Conv2DBackpropInput followed by a separate bias add, activation and, in training,
    BiasAddGrad, each a pass over the activations, and on a CPU those elementwise ops are slow
    in bfloat16; as a Conv2D, oneDNN fuses them into the convolution and its filter gradient.
    Measured on 2 cores, seed tutorial: about 1.07x faster per step (median) under
    mixed_bfloat16, but 0.87x per epoch in float32, where oneDNN's Conv2D backward on the padded input costs more than it saves;
    so other dtypes keep Keras's call. The layer's class, weights and saved files stay
    Conv2DTranspose's: a loaded model computes the same function Keras's way.
    """
    import keras

    if layer.compute_dtype != "bfloat16":
        return keras.layers.Conv2DTranspose.call(layer, inputs)
    return conv_form(layer, inputs)


def conv_form(layer: Any, inputs: Any) -> Any:
    """What a stride-1 Conv2DTranspose layer computes, written as a Conv2D."""
    from keras import ops

    # Keras keeps a transposed kernel as (kh, kw, filters, in_channels).
    kernel = ops.flip(ops.transpose(layer.kernel, (0, 1, 3, 2)), axis=(0, 1))
    if layer.padding == "valid":
        kh, kw = layer.kernel_size
        inputs = ops.pad(inputs, [(0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)])
    outputs = ops.conv(inputs, kernel, strides=1, padding=layer.padding)
    if layer.use_bias:
        outputs = ops.add(outputs, ops.reshape(layer.bias, (1, 1, 1, layer.filters)))
    return layer.activation(outputs) if layer.activation is not None else outputs
