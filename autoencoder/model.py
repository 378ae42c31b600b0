"""Encoder, decoder and autoencoder as Keras models, built layer for layer from the shape plan.

Every layer comes from `shapes.plan_model`, so the sizes and parameter counts that
`autoencoder shapes` prints are the built model's. Built-in layers with explicit names, no
Lambda: a saved .keras file loads with `keras.models.load_model(path, safe_mode=True)`. A VAE
is the one exception: its model.keras is the `VAE` class of autoencoder/vae.py with its
`Sampling` layer, both registered for serialisation, so it loads with safe_mode=True once that
module is imported (`load_model` here does that); its encoder.keras and decoder.keras are plain
functional models.

A model with skips is one functional graph: its decoder reads encoder activations besides the
code, so there is no decoder of the code alone (build_models returns None for it). So is a model
with a residual head (model.output.residual), whose last layer subtracts from the image.
"""

from __future__ import annotations

import functools
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from autoencoder import runtime
from autoencoder.config import ModelConfig
from autoencoder.errors import UserError
from autoencoder.shapes import Plan, PlannedLayer, plan_model


def build_models(model_cfg: ModelConfig, dtype: str = "float32", plain: bool = False):
    """(autoencoder, encoder, decoder): three keras.Model sharing the same layer objects.

    The encoder maps an image to its code (a VAE's: to [mean, log_var]); the decoder maps a code
    to an image, and is None for a model with skips or a residual head. A VAE's autoencoder is a `VAE` model.

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

    image = keras.Input(shape=plan.input_shape, name="image")
    tensors = {"image": image}
    if plan.one_graph:
        # One graph: the decoder's merges read encoder tensors (or a residual head the image),
        # so the decoder cannot be a model of the code alone. The encoder is the same graph cut at the code.
        layers = [planned for planned in plan.layers if planned.part != "vae"]
        autoencoder = keras.Model(
            image, _walk(layers, image, tensors, dtype, plain), name="autoencoder"
        )
        return autoencoder, keras.Model(image, tensors[plan.code_layer], name="encoder"), None
    _walk(plan.part("encoder"), image, tensors, dtype, plain)
    heads = ["code_mean", "code_log_var"] if plan.kind == "vae" else [plan.code_layer]
    encoder = keras.Model(
        image, [tensors[h] for h in heads] if len(heads) > 1 else tensors[heads[0]], name="encoder"
    )
    code = keras.Input(shape=plan.code_shape, name="code")
    # A residual shortcut in the first decoder block reads the code under the encoder's name.
    seen = {plan.part("encoder")[-1].name: code}
    decoder = keras.Model(
        code, _walk(plan.part("decoder"), code, seen, dtype, plain), name="decoder"
    )
    if plan.kind == "vae":
        from autoencoder.vae import VAE

        return VAE(encoder, decoder, name="vae"), encoder, decoder
    inputs = keras.Input(shape=plan.input_shape, name="input")
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    return autoencoder, encoder, decoder


def _walk(layers: list[PlannedLayer], x: Any, tensors: dict, dtype: str, plain: bool) -> Any:
    """Apply planned layers in order to x; tensors maps names to outputs (for source and merge)."""
    for planned in layers:
        keras_stack = keras_layers(planned, dtype, plain)
        x = tensors[planned.source] if planned.source else x
        x = keras_stack[0]([x, tensors[planned.merge]] if planned.merge else x)
        for layer in keras_stack[1:]:
            x = layer(x)
        tensors[planned.name] = x
    return x


def keras_layers(planned: PlannedLayer, dtype: str = "float32", plain: bool = False) -> list:
    """The Keras layers of one planned layer: main layer [, BatchNorm, Activation] [, Dropout]."""
    import keras

    if planned.kind in ("SpaceToDepth", "DepthToSpace"):
        return _pixel_shuffle(planned, dtype)
    main = _main_layer(planned, dtype)
    if not plain and transposes_as_conv(planned):
        main.call = functools.partial(_transpose_as_conv, main)
    layers = [main]
    if planned.kind in ("Add", "Concatenate") and planned.activation not in (None, "linear"):
        layers.append(
            keras.layers.Activation(planned.activation, dtype=dtype, name=f"{planned.name}_act")
        )
    if planned.role == "output":
        # The reconstruction's activation is a layer of its own in float32, as Keras's
        # mixed-precision guide advises: the convolution runs in the policy's dtype (its float32
        # form would hold a float32 copy of the widest activation and its gradient), while the
        # sigmoid and the loss, which reads the logits, stay float32.
        layers.append(
            keras.layers.Activation(planned.activation, dtype="float32", name=f"{planned.name}_act")
        )
    if planned.batch_norm:
        # Conv -> BatchNormalization -> activation: the main layer is built without activation
        # (none at all before a residual Add, which applies the block's after the sum).
        layers.append(keras.layers.BatchNormalization(dtype=dtype, name=f"{planned.name}_bn"))
        if planned.activation != "linear":
            layers.append(
                keras.layers.Activation(planned.activation, dtype=dtype, name=f"{planned.name}_act")
            )
    if planned.dropout:
        layers.append(
            keras.layers.Dropout(planned.dropout, dtype=dtype, name=f"{planned.name}_dropout")
        )
    return layers


def _pixel_shuffle(planned: PlannedLayer, dtype: str) -> list:
    """SpaceToDepth / DepthToSpace as Reshape -> Permute -> Reshape, built-in layers that load
    with safe_mode and export to LiteRT and ONNX; channels ordered as tf.nn.space_to_depth's
    (patch row, patch column, channel)."""
    import keras

    L, r = keras.layers, planned.options["size"]
    (h, w, c), (oh, ow, oc) = planned.input_shape, planned.output_shape
    if planned.kind == "SpaceToDepth":
        split = (oh, r, ow, r, c)  # (row, patch row, column, patch column, channel)
    else:
        split = (h, w, r, r, oc)  # (row, column, patch row, patch column, channel)
    return [
        L.Reshape(split, name=f"{planned.name}_split", dtype=dtype),
        # Swapping axes 2 and 3 (1-based, batch excluded) is its own inverse: it moves the patch
        # row next to the patch column one way, next to the row the other way.
        L.Permute((1, 3, 2, 4, 5), name=f"{planned.name}_permute", dtype=dtype),
        L.Reshape((oh, ow, oc), name=planned.name, dtype=dtype),
    ]


def _conv_arguments(planned: PlannedLayer) -> dict[str, Any]:
    import keras

    options = planned.options
    regularizer = options.get("kernel_regularizer")
    # With batch norm the activation follows the norm; the output's is its own float32 layer.
    separate_activation = planned.batch_norm or planned.role == "output"
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
    common = {"name": planned.name, "dtype": options.get("dtype", dtype)}
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
    if kind == "Add":
        return L.Add(**common)
    if kind == "Concatenate":
        return L.Concatenate(**common)
    if kind == "Subtract":
        return L.Subtract(**common)
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


def custom_objects() -> dict:
    """The package's own Keras classes by their registered names (vae.py, losses.py).

    `keras.models.load_model(path, safe_mode=True, custom_objects=custom_objects())` loads a
    VAE's model.keras, or a model compiled with one of losses.py's losses, in any program.
    """
    from autoencoder.losses import SSIML1, Charbonnier, ImageLoss
    from autoencoder.vae import VAE, Sampling

    return {
        "autoencoder>Sampling": Sampling,
        "autoencoder>VAE": VAE,
        "autoencoder>ImageLoss": ImageLoss,
        # The loss classes of older versions' files, which load as ImageLoss.
        "autoencoder>Charbonnier": Charbonnier,
        "autoencoder>SSIML1": SSIML1,
    }


def is_vae(model: Any) -> bool:
    """Whether a built or loaded model is a VAE."""
    # Every VAE is an instance of autoencoder.vae's class: until that module is imported there is
    # none, and the answer needs no TensorFlow (for an object that is not a Keras model, say).
    vae = sys.modules.get("autoencoder.vae")
    return vae is not None and isinstance(model, vae.VAE)


def vae_samples(model: Any, n: int, seed: int = 0):
    """n images decoded from codes drawn from the prior N(0, I), the same for the same seed."""
    import numpy as np

    latent = model.decoder.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n, latent)).astype("float32")
    return _call(model.decoder, z)


def vae_interpolations(model: Any, starts, ends, steps: int = 8):
    """(rows, steps, H, W, C): decodings along the straight line from each start's code to its end's.

    The codes are the encoder's means of the images starts[i] and ends[i].
    """

    a, b = _call(model.encoder, starts)[0], _call(model.encoder, ends)[0]
    return decode_lines(model.decoder, a, b, steps)


def decode_lines(decoder: Any, a, b, steps: int = 8):
    """(rows, steps, H, W, C): the decoder's images at `steps` evenly spaced points from code
    a[i] to code b[i], both ends included; codes of any shape the decoder takes, or flattened."""
    import numpy as np

    a = np.asarray(a, "float32").reshape(len(a), -1)
    b = np.asarray(b, "float32").reshape(len(b), -1)
    t = np.linspace(0.0, 1.0, steps, dtype="float32")[None, :, None]
    z = a[:, None, :] * (1 - t) + b[:, None, :] * t  # (rows, steps, code numbers)
    images = _call(decoder, z.reshape(-1, *decoder.input_shape[1:]))
    return images.reshape(len(a), steps, *images.shape[1:])


def _call(model: Any, x):
    """A model on a few inputs, as NumPy (a direct call: predict() would trace a function for
    each new batch shape)."""
    import keras

    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


def vae_test_terms(model: Any, inputs, targets, batch_size: int = 500) -> dict:
    """A VAE's reconstruction and KL terms per image on arrays, and their sum (the negative ELBO
    with KL weight 1, in nats per image for bce)."""
    terms = model.evaluate(inputs, targets, batch_size=batch_size, verbose=0, return_dict=True)
    reconstruction, kl = float(terms["reconstruction"]), float(terms["kl"])
    return {"reconstruction": reconstruction, "kl": kl, "neg_elbo": reconstruction + kl}


def saved_input_shape(path: str | Path) -> tuple[int, ...] | None:
    """(H, W, C) a saved .keras model takes, read from its config.json without TensorFlow."""
    # A .keras file is a zip whose config.json describes the layers; the first InputLayer's
    # batch_shape (depth first) is the model's input. None where the file gives no such answer:
    # load_model then says what is wrong with it.
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            shape = node.get("batch_shape")
            if (
                isinstance(shape, list)
                and len(shape) == 4
                and all(isinstance(n, int) for n in shape[1:])
            ):
                return tuple(shape[1:])
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return None


def saved_parameter_count(path: str | Path) -> int | None:
    """How many numbers a saved .keras model's layers hold, read without TensorFlow."""
    # model.weights.h5 in the zip holds every layer's variables (under layers/, or a VAE's
    # under encoder/ and decoder/) beside optimizer/'s: theirs add up to Keras's count_params.
    # None where unreadable: load_model then says what is wrong with the file.
    import h5py

    count = 0

    def add(name, item):
        nonlocal count
        if isinstance(item, h5py.Dataset) and not name.startswith("optimizer/"):
            count += item.size

    try:
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as weights:
            with h5py.File(weights, "r") as h5:
                h5.visititems(add)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return count


def load_model(path: str | Path):
    """Load a saved .keras model with safe_mode=True; one clear line if missing or corrupt."""
    runtime.tensorflow()
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: model file not found; was the run finished? (train writes it "
            f"at the end; `autoencoder resume {path.parent}` finishes it)"
        )
    try:
        return keras.models.load_model(path, safe_mode=True, custom_objects=custom_objects())
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
