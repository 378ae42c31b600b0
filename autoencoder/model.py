"""Encoder, decoder and autoencoder as Keras models, built layer for layer from the shape plan.

Every layer comes from `shapes.plan_model`, so the sizes and parameter counts that
`autoencoder shapes` prints are the built model's. Only built-in layers with explicit names, no
Lambda: a saved .keras file loads with `keras.models.load_model(path, safe_mode=True)`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from autoencoder import runtime
from autoencoder.config import ModelConfig
from autoencoder.errors import UserError
from autoencoder.shapes import Plan, PlannedLayer, plan_model


def build_models(model_cfg: ModelConfig, dtype: str = "float32", plain: bool = False):
    """(autoencoder, encoder, decoder): three keras.Model sharing the same layer objects.

    Args:
      model_cfg: the `model` section of a config.
      dtype: the Keras dtype policy of every layer ("float32", "mixed_bfloat16",
        "mixed_float16"); the reconstruction's activation stays float32 whatever it is.
      plain: every layer computes as Keras's own code does (the benchmark's plain-Keras
        contenders); by default stride-1 Conv2DTranspose layers compute as a convolution.
    """
    return build_from_plan(plan_model(model_cfg), dtype, plain)


def build_from_plan(plan: Plan, dtype: str = "float32", plain: bool = False):
    """Build the three models of a Plan (autoencoder = decoder(encoder(input)))."""
    runtime.tensorflow()
    import keras

    def stack(part: str, x: Any) -> Any:
        for planned in plan.part(part):
            for layer in keras_layers(planned, dtype, plain):
                x = layer(x)
        return x

    image = keras.Input(shape=plan.input_shape, name="image")
    encoder = keras.Model(image, stack("encoder", image), name="encoder")
    code = keras.Input(shape=plan.code_shape, name="code")
    decoder = keras.Model(code, stack("decoder", code), name="decoder")
    inputs = keras.Input(shape=plan.input_shape, name="input")
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    return autoencoder, encoder, decoder


def keras_layers(planned: PlannedLayer, dtype: str = "float32", plain: bool = False) -> list:
    """The Keras layers of one planned layer: main layer [, BatchNorm, Activation] [, Dropout]."""
    import keras

    main = _main_layer(planned, dtype)
    if not plain and transposes_as_conv(planned):
        main.call = functools.partial(_transpose_as_conv, main)
    layers = [main]
    if planned.name == "output_conv":
        # The reconstruction's activation is a layer of its own in float32, as Keras's
        # mixed-precision guide advises: the convolution runs in the policy's dtype (its float32
        # form would hold a float32 copy of the widest activation and its gradient), while the
        # sigmoid and the loss, which reads the logits, stay float32.
        layers.append(
            keras.layers.Activation(planned.activation, dtype="float32", name=f"{planned.name}_act")
        )
    if planned.batch_norm:
        # Conv -> BatchNormalization -> activation: the main layer is built without activation.
        layers += [
            keras.layers.BatchNormalization(dtype=dtype, name=f"{planned.name}_bn"),
            keras.layers.Activation(planned.activation, dtype=dtype, name=f"{planned.name}_act"),
        ]
    if planned.dropout:
        layers.append(
            keras.layers.Dropout(planned.dropout, dtype=dtype, name=f"{planned.name}_dropout")
        )
    return layers


def _conv_arguments(planned: PlannedLayer) -> dict[str, Any]:
    import keras

    options = planned.options
    regularizer = options.get("kernel_regularizer")
    # With batch norm the activation follows the norm; the output's is its own float32 layer.
    separate_activation = planned.batch_norm or planned.name == "output_conv"
    return dict(
        filters=options["filters"],
        kernel_size=planned.kernel,
        strides=planned.strides,
        padding=planned.padding,
        dilation_rate=planned.dilation,
        activation=None if separate_activation else planned.activation,
        use_bias=options.get("use_bias", True),
        kernel_initializer=options.get("kernel_initializer", "glorot_uniform"),
        kernel_regularizer=keras.regularizers.L1L2(*regularizer) if regularizer else None,
    )


def _main_layer(planned: PlannedLayer, dtype: str) -> Any:
    import keras

    L = keras.layers
    kind, options = planned.kind, planned.options
    common = {"name": planned.name, "dtype": dtype}
    if kind == "Conv2D":
        return L.Conv2D(**_conv_arguments(planned), **common)
    if kind == "Conv2DTranspose":
        return L.Conv2DTranspose(
            output_padding=planned.output_padding, **_conv_arguments(planned), **common
        )
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = getattr(L, kind)
        return pool(
            pool_size=planned.kernel, strides=planned.strides, padding=planned.padding, **common
        )
    if kind == "UpSampling2D":
        return L.UpSampling2D(
            size=options["size"], interpolation=options["interpolation"], **common
        )
    if kind == "Cropping2D":
        return L.Cropping2D(cropping=options["cropping"], **common)
    if kind == "ZeroPadding2D":
        return L.ZeroPadding2D(padding=options["padding"], **common)
    if kind == "Flatten":
        return L.Flatten(**common)
    if kind == "Dense":
        return L.Dense(options["units"], activation=planned.activation, **common)
    if kind == "Reshape":
        return L.Reshape(options["target_shape"], **common)
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
    In float32 the padded Conv2D's backward costs more than it saves (docs/performance.md), so
    other dtypes keep Keras's call. The layer's class, weights and saved files stay
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


def load_model(path: str | Path):
    """Load a saved .keras model with safe_mode=True; one clear line if missing or corrupt."""
    runtime.tensorflow()
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: model file not found; was the run finished? (train writes it "
            f"at the end; `--resume` the run to finish it)"
        )
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged zip / h5
        if "safe_mode" in str(exc):
            raise UserError(
                f"{path}: refused: the model holds Python code (e.g. a Lambda layer), "
                f"which safe_mode=True does not run; save models built from "
                f"built-in layers"
            ) from None
        raise UserError(
            f"{path}: cannot load model ({exc.__class__.__name__}); the file is "
            f"corrupt or truncated: train a new run to replace it"
        ) from None
