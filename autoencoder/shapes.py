"""Conv2D / pooling / Conv2DTranspose size arithmetic as Keras 3 computes it, and the layer planner.

Pure Python, no TensorFlow: `autoencoder shapes` answers at once. `plan_model` turns a ModelConfig
into a flat list of planned layers; `model.build_models` builds exactly these layers, so the sizes
and parameter counts printed here are the built model's by construction.

Sizes along one axis (k = dilated kernel (kernel-1)*dilation + 1, as in
keras/src/ops/operation_utils.py and keras/src/backend/common/backend_utils.py):
  Conv2D / pooling  'valid': floor((in - k) / stride) + 1      'same': ceil(in / stride)
  Conv2DTranspose         : (in-1)*stride + k - 2*pad + output_padding
                            pad = 0 for 'valid', k//2 for 'same'; an unset output_padding is
                            max(k, stride) - k for 'valid' and stride - k%2 for 'same' (= in*stride).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoencoder.config import (
    ConvBlock,
    ConvTransposeBlock,
    CropBlock,
    ModelConfig,
    PoolBlock,
    ResidualBlock,
    UpsampleBlock,
)
from autoencoder.errors import UserError

FORMULA = "out = (in-1)*stride + kernel - 2*pad + output_padding"

Shape = tuple[int, ...]
Pair = tuple[int, int]


# ---------------------------------------------------------------------------------------------
# One axis


def dilated(kernel: int, dilation: int = 1) -> int:
    """The extent a dilated kernel covers: (kernel-1)*dilation + 1."""
    return (kernel - 1) * dilation + 1


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> int:
    """Conv2D output length on one axis (<= 0: the kernel does not fit)."""
    if padding == "same":
        return (size - 1) // stride + 1
    return (size - dilated(kernel, dilation)) // stride + 1


def pool_output_size(size: int, pool: int, stride: int, padding: str = "valid") -> int:
    """MaxPooling2D / AveragePooling2D output length on one axis (<= 0: the window does not fit)."""
    if padding == "same":
        return (size - 1) // stride + 1
    return (size - pool) // stride + 1


def transpose_pad(kernel: int, padding: str, dilation: int = 1) -> int:
    """The `pad` of the formula: 0 for 'valid', (dilated kernel)//2 for 'same'."""
    return dilated(kernel, dilation) // 2 if padding == "same" else 0


def default_output_padding(kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """The output_padding Keras uses when none is given."""
    k = dilated(kernel, dilation)
    return stride - k % 2 if padding == "same" else max(k, stride) - k


def conv_transpose_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: str = "valid",
    output_padding: int | None = None,
    dilation: int = 1,
) -> int:
    """Conv2DTranspose output length on one axis: (in-1)*stride + k - 2*pad + output_padding."""
    if output_padding is None:
        output_padding = default_output_padding(kernel, stride, padding, dilation)
    return (
        (size - 1) * stride
        + dilated(kernel, dilation)
        - 2 * transpose_pad(kernel, padding, dilation)
        + output_padding
    )


def output_padding_ok(
    kernel: int, stride: int, padding: str, output_padding: int, dilation: int = 1
) -> bool:
    """Whether Keras accepts this output_padding and TensorFlow then runs the layer."""
    if not 0 <= output_padding < stride:  # Keras: output_padding < strides
        return False
    # TensorFlow checks that a 'same' Conv2D of the output gives back the input; with an even
    # kernel, output_padding 0 gives (in-1)*stride, one stride short, and the op fails at run time.
    return not (padding == "same" and dilated(kernel, dilation) % 2 + output_padding == 0)


def transpose_choices(
    size: int, kernel: int, stride: int, padding: str, dilation: int = 1
) -> dict[int, int | None]:
    """Every output length one Conv2DTranspose axis can produce -> the output_padding that gives it.

    None (Keras's default) wins where it lands on the same length, so that common models keep the
    plain Keras call (the seed tutorial has no output_padding).
    """
    choices: dict[int, int | None] = {
        conv_transpose_output_size(size, kernel, stride, padding, None, dilation): None
    }
    for op in range(stride):
        if output_padding_ok(kernel, stride, padding, op, dilation):
            out = conv_transpose_output_size(size, kernel, stride, padding, op, dilation)
            choices.setdefault(out, op)
    return dict(sorted(choices.items()))


def output_padding_for(
    size: Pair, target: Pair, kernel: Pair, strides: Pair, padding: str, dilation: Pair = (1, 1)
) -> Pair | None:
    """The output_padding (a pair, or None for Keras's default) taking `size` to `target`.

    Raises LookupError when no output_padding reaches it.
    """
    ops = []
    for axis in range(2):
        choices = transpose_choices(
            size[axis], kernel[axis], strides[axis], padding, dilation[axis]
        )
        if target[axis] not in choices:
            raise LookupError(target)
        ops.append(choices[target[axis]])
    if ops == [None, None]:
        return None
    # Keras takes one output_padding for both axes: spell out the default of a None axis.
    for axis in range(2):
        if ops[axis] is None:
            op = default_output_padding(kernel[axis], strides[axis], padding, dilation[axis])
            if not output_padding_ok(kernel[axis], strides[axis], padding, op, dilation[axis]):
                raise LookupError(target)
            ops[axis] = op
    return (ops[0], ops[1])


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass
class PlannedLayer:
    """One Keras layer (with its batch norm / activation / dropout) and the sizes around it."""

    block: str  # table label: "enc 1", "code", "dec 2", "out"
    name: str  # Keras layer name; the batch norm, activation and dropout add suffixes
    kind: str  # Keras class: Conv2D, Conv2DTranspose, MaxPooling2D, Dense, ...
    part: str  # "encoder" or "decoder": the model that holds it
    input_shape: Shape
    output_shape: Shape
    params: int = 0  # all weights, batch-norm moving statistics included (as count_params)
    kernel: Pair | None = None
    strides: Pair | None = None
    padding: str | None = None
    output_padding: Pair | None = None
    dilation: Pair | None = None
    activation: str | None = None
    batch_norm: bool = False
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)  # other Keras arguments, unchanged
    formula: str = ""  # the transposed-convolution arithmetic with numbers, or what joins here
    # The graph where it is not a chain: `source` names the planned layer (or "image") whose
    # output this layer reads instead of the previous layer's; an Add / Concatenate also reads
    # `merge`'s output, of shape merge_shape (a residual shortcut or a U-Net skip).
    source: str | None = None
    merge: str | None = None
    merge_shape: Shape | None = None


@dataclass
class Plan:
    """Every layer of the autoencoder in order, with the shapes that connect them."""

    input_shape: Shape
    code_shape: Shape
    layers: list[PlannedLayer]
    kind: str = "autoencoder"  # or "vae"
    skips: str = "none"  # "concat" or "add": U-Net skips (skip_layers says where)

    @property
    def skip_layers(self) -> list[PlannedLayer]:
        """The Concatenate / Add layers that bring an encoder activation into the decoder."""
        return [layer for layer in self.layers if layer.name.endswith("_skip")]

    @property
    def code_layer(self) -> str:
        """The name of the planned layer whose output is the code (a VAE's: the mean)."""
        return self.part("encoder")[-1 if self.kind != "vae" else -2].name

    def part(self, name: str) -> list[PlannedLayer]:
        """The layers of "encoder" or "decoder"."""
        return [layer for layer in self.layers if layer.part == name]

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def code_size(self) -> int:
        return _prod(self.code_shape)

    @property
    def input_size(self) -> int:
        return _prod(self.input_shape)

    @property
    def compression(self) -> float:
        """Input values per code value (below 1: the code is larger than the image)."""
        return self.input_size / self.code_size


def _prod(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def hw(shape: Shape | Pair) -> str:
    """(28, 28, 1) -> "28x28"."""
    return f"{shape[0]}x{shape[1]}"


def _enc_where(i: int) -> str:
    return f"encoder block {i} (model.encoder[{i - 1}])"


def _dec_where(j: int) -> str:
    return f"decoder block {j} (model.decoder[{j - 1}])"


def _pass_through(block: ConvBlock | ConvTransposeBlock) -> dict[str, Any]:
    """The block settings that go to Keras unchanged (or to the layers around the convolution)."""
    reg = block.kernel_regularizer
    return dict(
        activation=block.activation,
        batch_norm=block.batch_norm,
        dropout=block.dropout,
        options=dict(
            filters=block.filters,
            use_bias=block.use_bias,
            kernel_initializer=block.kernel_initializer,
            kernel_regularizer=(reg.l1, reg.l2) if reg and (reg.l1 or reg.l2) else None,
        ),
    )


def _conv_params(
    kernel: Pair, channels_in: int, filters: int, use_bias: bool, batch_norm: bool
) -> int:
    # Weights kh*kw*cin*f, bias f, batch norm gamma/beta/moving mean/moving variance 4*f.
    return (
        kernel[0] * kernel[1] * channels_in * filters
        + filters * use_bias
        + 4 * filters * batch_norm
    )


def _conv_layer(
    block: ConvBlock, shape: Shape, label: str, name: str, part: str, where: str
) -> PlannedLayer:
    """A Conv2D block (encoder, or decoder `type: conv`)."""
    k, s, d = block.kernel_size, block.strides, block.dilation_rate
    reach = (dilated(k[0], d[0]), dilated(k[1], d[1]))
    if block.padding == "valid" and (reach[0] > shape[0] or reach[1] > shape[1]):
        spread = f" (dilated to {hw(reach)})" if reach != k else ""
        raise UserError(
            f"{where}: kernel_size {hw(k)}{spread} is larger than its {hw(shape)} input "
            f"with padding valid; use padding: same or a smaller kernel_size"
        )
    out = tuple(conv_output_size(shape[a], k[a], s[a], block.padding, d[a]) for a in range(2))
    kwargs = _pass_through(block)
    return PlannedLayer(
        block=label,
        name=f"{name}_conv",
        kind="Conv2D",
        part=part,
        input_shape=shape,
        output_shape=(*out, block.filters),
        kernel=k,
        strides=s,
        padding=block.padding,
        dilation=d,
        params=_conv_params(k, shape[2], block.filters, block.use_bias, block.batch_norm),
        **kwargs,
    )


def _pool_layer(block: PoolBlock, shape: Shape, label: str, name: str, where: str) -> PlannedLayer:
    """A MaxPooling2D / AveragePooling2D block."""
    p = block.pool_size
    s = block.strides or p
    out = tuple(pool_output_size(shape[a], p[a], s[a], block.padding) for a in range(2))
    if min(out) <= 0:
        raise UserError(
            f"{where}: pool_size {hw(p)} is larger than its {hw(shape)} input with "
            f"padding valid, so the output would be {hw(out)}; use padding: same or a "
            f"smaller pool_size"
        )
    kind = "MaxPooling2D" if block.type == "maxpool" else "AveragePooling2D"
    return PlannedLayer(
        block=label,
        name=f"{name}_{block.type}",
        kind=kind,
        part="encoder",
        input_shape=shape,
        output_shape=(*out, shape[2]),
        kernel=p,
        strides=s,
        padding=block.padding,
    )


def _transpose_formula(
    size: Pair,
    out: Pair,
    kernel: Pair,
    strides: Pair,
    padding: str,
    output_padding: Pair | None,
    dilation: Pair,
) -> str:
    """ "(12-1)*2 + 3 - 2*1 + 1 = 24" per axis, once if both axes read the same."""
    texts = []
    for a in range(2):
        op = (
            default_output_padding(kernel[a], strides[a], padding, dilation[a])
            if output_padding is None
            else output_padding[a]
        )
        texts.append(
            f"({size[a]}-1)*{strides[a]} + {dilated(kernel[a], dilation[a])} - "
            f"2*{transpose_pad(kernel[a], padding, dilation[a])} + {op} = {out[a]}"
        )
    return texts[0] if texts[0] == texts[1] else f"h: {texts[0]}; w: {texts[1]}"


def _transpose_layer(
    shape: Shape,
    filters: int,
    kernel: Pair,
    strides: Pair,
    padding: str,
    output_padding: Pair | None,
    label: str,
    name: str,
    dilation: Pair = (1, 1),
    **kwargs: Any,
) -> PlannedLayer:
    """A Conv2DTranspose whose output_padding is already decided."""
    out = tuple(
        conv_transpose_output_size(
            shape[a],
            kernel[a],
            strides[a],
            padding,
            None if output_padding is None else output_padding[a],
            dilation[a],
        )
        for a in range(2)
    )
    kwargs["options"] = {**kwargs.get("options", {}), "filters": filters}
    batch_norm = kwargs.get("batch_norm", False)
    use_bias = kwargs["options"].get("use_bias", True)
    return PlannedLayer(
        block=label,
        name=f"{name}_convT",
        kind="Conv2DTranspose",
        part="decoder",
        input_shape=shape,
        output_shape=(*out, filters),
        kernel=kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        params=_conv_params(kernel, shape[2], filters, use_bias, batch_norm),
        formula=_transpose_formula(
            shape[:2], out, kernel, strides, padding, output_padding, dilation
        ),
        **kwargs,
    )


def _fit_layers(shape: Shape, target: Pair, label: str, name: str) -> list[PlannedLayer]:
    """Cropping2D / ZeroPadding2D at the bottom and right, where nothing else lands on target."""
    over = (max(0, shape[0] - target[0]), max(0, shape[1] - target[1]))
    under = (max(0, target[0] - shape[0]), max(0, target[1] - shape[1]))
    layers = []
    if any(over):
        out = (shape[0] - over[0], shape[1] - over[1], shape[2])
        layers.append(
            PlannedLayer(
                block=label,
                name=f"{name}_crop",
                kind="Cropping2D",
                part="decoder",
                input_shape=shape,
                output_shape=out,
                options=dict(cropping=((0, over[0]), (0, over[1]))),
            )
        )
        shape = out
    if any(under):
        out = (shape[0] + under[0], shape[1] + under[1], shape[2])
        layers.append(
            PlannedLayer(
                block=label,
                name=f"{name}_pad",
                kind="ZeroPadding2D",
                part="decoder",
                input_shape=shape,
                output_shape=out,
                options=dict(padding=((0, under[0]), (0, under[1]))),
            )
        )
    return layers


# ---------------------------------------------------------------------------------------------
# Residual blocks and the layers that join two paths


def _as_conv(block: ResidualBlock, **changes: Any) -> ConvBlock:
    """One convolution of a residual block: the block's settings with `changes`."""
    return ConvBlock.model_validate({**block.model_dump(exclude={"type"}), **changes})


def _add_layer(
    main: PlannedLayer, other: str, other_shape: Shape, label: str, name: str, **kwargs: Any
) -> PlannedLayer:
    """Add(main's output, other's output), with the activation / dropout that follow it."""
    return PlannedLayer(
        block=label,
        name=name,
        kind="Add",
        part=main.part,
        input_shape=main.output_shape,
        output_shape=main.output_shape,
        source=main.name,
        merge=other,
        merge_shape=other_shape,
        **kwargs,
    )


def _residual_layers(
    block: ResidualBlock, shape: Shape, before: str, label: str, name: str, part: str, where: str
) -> list[PlannedLayer]:
    """Conv (stride) -> Conv (linear) + shortcut -> Add -> activation, as in ResNet's basic block.

    `before` names the layer whose output is the block's input: the identity shortcut reads it,
    or a 1x1 convolution with the block's stride projects it where the channels or size change.
    Both paths are 'same' convolutions, so they meet at ceil(in/stride) on each axis.
    """
    first = _conv_layer(_as_conv(block, dropout=0.0), shape, label, f"{name}_res1", part, where)
    second = _conv_layer(
        _as_conv(block, strides=(1, 1), activation="linear", dropout=0.0),
        first.output_shape,
        label,
        f"{name}_res2",
        part,
        where,
    )
    layers = [first, second]
    shortcut, text = before, "identity: the block's input"
    if first.output_shape != shape:
        proj = _conv_layer(
            _as_conv(
                block, kernel_size=(1, 1), dilation_rate=(1, 1), activation="linear", dropout=0.0
            ),
            shape,
            label,
            f"{name}_proj",
            part,
            where,
        )
        proj.source = before
        proj.formula = "shortcut: 1x1 projection of the block's input"
        layers.append(proj)
        shortcut, text = proj.name, f"{proj.name}, the projected input"
    add = _add_layer(
        second,
        shortcut,
        shape if shortcut == before else first.output_shape,
        label,
        f"{name}_add",
        activation=block.activation,
        dropout=block.dropout,
        formula=f"residual: + shortcut ({text})",
    )
    return [*layers, add]


def _mirror_residual(
    block: ResidualBlock, shape: Shape, target: Pair, before: str, label: str, name: str
) -> list[PlannedLayer]:
    """Undo one residual block: the same block with Conv2DTranspose where it had a stride."""
    where = label
    if block.strides == (1, 1):
        return _residual_layers(block, shape, before, label, name, "decoder", where)
    kwargs = _pass_through(block)
    kwargs["dropout"] = 0.0
    k, s = block.kernel_size, block.strides
    # An odd kernel with 'same' padding reaches every length (in-1)*s + 1 ... in*s: the target,
    # which 'same' shrank to ceil(target/s) = in, is one of them. So is it for the 1x1 shortcut.
    first = _transpose_layer(
        shape,
        block.filters,
        k,
        s,
        "same",
        output_padding_for(shape[:2], target, k, s, "same"),
        label,
        f"{name}_res1",
        **kwargs,
    )
    second = _conv_layer(
        _as_conv(block, strides=(1, 1), activation="linear", dropout=0.0),
        first.output_shape,
        label,
        f"{name}_res2",
        "decoder",
        where,
    )
    proj = _transpose_layer(
        shape,
        block.filters,
        (1, 1),
        s,
        "same",
        output_padding_for(shape[:2], target, (1, 1), s, "same"),
        label,
        f"{name}_proj",
        **{**kwargs, "activation": "linear"},
    )
    proj.source = before
    proj.formula = f"shortcut: 1x1 projection of the block's input; {proj.formula}"
    add = _add_layer(
        second,
        proj.name,
        proj.output_shape,
        label,
        f"{name}_add",
        activation=block.activation,
        dropout=block.dropout,
        formula=f"residual: + shortcut ({proj.name}, the projected input)",
    )
    return [first, second, proj, add]


# ---------------------------------------------------------------------------------------------
# Encoder and latent code


def _plan_encoder(cfg: ModelConfig) -> list[list[PlannedLayer]]:
    """The encoder's layers, block by block."""
    shape: Shape = tuple(cfg.input_shape)
    blocks, before = [], "image"
    for i, block in enumerate(cfg.encoder, 1):
        label, name, where = f"enc {i}", f"enc{i}", _enc_where(i)
        if isinstance(block, ConvBlock):
            layers = [_conv_layer(block, shape, label, name, "encoder", where)]
        elif isinstance(block, ResidualBlock):
            layers = _residual_layers(block, shape, before, label, name, "encoder", where)
        else:
            layers = [_pool_layer(block, shape, label, name, where)]
        blocks.append(layers)
        shape, before = layers[-1].output_shape, layers[-1].name
    return blocks


def _last_activation(cfg: ModelConfig) -> str:
    convs = [b for b in cfg.encoder if isinstance(b, (ConvBlock, ResidualBlock))]
    return convs[-1].activation if convs else "relu"


def _plan_code(cfg: ModelConfig, shape: Shape) -> tuple[list[PlannedLayer], list[PlannedLayer]]:
    """Flatten -> Dense(latent_dim) for the encoder; Dense(H*W*C) -> Reshape for the decoder.

    A VAE's encoder ends in two Dense heads instead, the mean and the log-variance of its
    Gaussian code, and a Sampling layer (in the VAE model, between encoder and decoder) draws
    z = mean + exp(log_var / 2) * noise.
    """
    flat, latent = _prod(shape), cfg.latent_dim
    flatten = PlannedLayer(
        block="code",
        name="code_flatten",
        kind="Flatten",
        part="encoder",
        input_shape=shape,
        output_shape=(flat,),
    )
    # A linear code: the decoder's first Dense applies the nonlinearity.
    dense = dict(
        block="code",
        kind="Dense",
        part="encoder",
        input_shape=(flat,),
        output_shape=(latent,),
        params=flat * latent + latent,
        activation="linear",
    )
    if cfg.kind == "vae":
        # float32 whatever the policy: exp(log_var) and the KL term overflow bfloat16 early.
        heads = dict(units=latent, dtype="float32")
        encode = [
            flatten,
            PlannedLayer(name="code_mean", options=heads, formula="mean of q(z|x)", **dense),
            PlannedLayer(
                name="code_log_var",
                options=heads,
                source="code_flatten",
                formula="log-variance of q(z|x), from code_flatten",
                **dense,
            ),
            PlannedLayer(
                block="code",
                name="code_sampling",
                kind="Sampling",
                part="vae",
                input_shape=(latent,),
                output_shape=(latent,),
                formula="z = mean + exp(log_var/2) * N(0, 1) noise; the decoder reads z",
            ),
        ]
    else:
        encode = [flatten, PlannedLayer(name="code_dense", options=dict(units=latent), **dense)]
    decode = [
        PlannedLayer(
            block="code",
            name="expand_dense",
            kind="Dense",
            part="decoder",
            input_shape=(latent,),
            output_shape=(flat,),
            params=latent * flat + flat,
            activation=_last_activation(cfg),
            options=dict(units=flat),
        ),
        PlannedLayer(
            block="code",
            name="expand_reshape",
            kind="Reshape",
            part="decoder",
            input_shape=(flat,),
            output_shape=shape,
            options=dict(target_shape=shape),
        ),
    ]
    return encode, decode


# ---------------------------------------------------------------------------------------------
# Mirror decoder


def _nearest_conv(encoder: list, index: int) -> ConvBlock | ResidualBlock | None:
    """The conv or residual block closest before encoder[index], else after it."""
    convs = (ConvBlock, ResidualBlock)
    before = [b for b in encoder[:index] if isinstance(b, convs)]
    after = [b for b in encoder[index + 1 :] if isinstance(b, convs)]
    return before[-1] if before else (after[0] if after else None)


def _mirror_conv(
    block: ConvBlock, shape: Shape, target: Pair, label: str, name: str
) -> list[PlannedLayer]:
    """Undo one Conv2D: a Conv2DTranspose with its kernel, stride and padding landing on target."""
    kwargs = _pass_through(block)
    k, s, d = block.kernel_size, block.strides, block.dilation_rate
    if max(d) > 1:
        # TensorFlow has no CPU kernel for a dilated Conv2DTranspose ("Current CPU implementations
        # do not yet support dilation rates larger than 1"). Strides are 1 here (config/blocks.py),
        # so a 'same' layer keeps the size: mirror it with the same dilated Conv2D; a 'valid' one grows
        # by (dilated kernel - 1): an undilated Conv2DTranspose of the dilated extent does that.
        if block.padding == "same":
            return [_conv_layer(block, shape, label, name, "decoder", label)]
        k, d = (dilated(k[0], d[0]), dilated(k[1], d[1])), (1, 1)
    try:
        op = output_padding_for(shape[:2], target, k, s, block.padding, d)
    except LookupError:
        # Only 'same' with an even kernel and axes that need different defaults lands here:
        # Keras's default gives in*stride >= target on both axes; crop the rest.
        layer = _transpose_layer(
            shape, block.filters, k, s, block.padding, None, label, name, d, **kwargs
        )
        return [layer, *_fit_layers(layer.output_shape, target, label, name)]
    return [
        _transpose_layer(shape, block.filters, k, s, block.padding, op, label, name, d, **kwargs)
    ]


def _mirror_pool(
    block: PoolBlock, near: ConvBlock | None, shape: Shape, target: Pair, label: str, name: str
) -> list[PlannedLayer]:
    """Undo one pooling: learned Conv2DTranspose (default) or UpSampling2D."""
    p = block.pool_size
    s = block.strides or p
    if block.mirror == "upsample":
        out = (shape[0] * s[0], shape[1] * s[1], shape[2])
        up = PlannedLayer(
            block=label,
            name=f"{name}_upsample",
            kind="UpSampling2D",
            part="decoder",
            input_shape=shape,
            output_shape=out,
            strides=s,
            options=dict(size=s, interpolation="nearest"),
        )
        return [up, *_fit_layers(out, target, label, name)]
    # The pool's own window, stride and padding: 'valid' reaches every size the pooling rounded
    # down through output_padding (out = (in-1)*s + p + op, op = (in - p) mod s < s), 'same' through
    # (in-1)*s + p%2 + op or Keras's default in*s, so no crop is needed. With window = stride the
    # windows do not overlap, which avoids the checkerboard of overlapping transposed kernels.
    # Filters, activation and initializer follow the nearest conv; its batch norm and dropout stay
    # with that conv's own mirror.
    filters = near.filters if near else shape[2]
    kwargs = _pass_through(near) if near else {}
    kwargs.update(batch_norm=False, dropout=0.0)
    op = output_padding_for(shape[:2], target, p, s, block.padding)
    return [_transpose_layer(shape, filters, p, s, block.padding, op, label, name, **kwargs)]


def _plan_mirror(
    cfg: ModelConfig, encoder: list[list[PlannedLayer]], shape: Shape, before: str
) -> list[PlannedLayer]:
    """Walk the encoder backwards; each block lands on the size the encoder had before it."""
    layers: list[PlannedLayer] = []
    taps = _skip_taps(encoder)
    for j, index in enumerate(reversed(range(len(cfg.encoder))), 1):
        block, target = cfg.encoder[index], encoder[index][0].input_shape[:2]
        label, name = f"dec {j}", f"dec{j}"
        if isinstance(block, ConvBlock):
            new = _mirror_conv(block, shape, target, label, name)
        elif isinstance(block, ResidualBlock):
            new = _mirror_residual(block, shape, target, before, label, name)
        else:
            new = _mirror_pool(block, _nearest_conv(cfg.encoder, index), shape, target, label, name)
        if cfg.skips != "none" and new[-1].output_shape[:2] != shape[:2]:
            new += _skip_layers(cfg.skips, new[-1], taps, label, name)
        layers += new
        shape, before = new[-1].output_shape, new[-1].name
    return layers


# ---------------------------------------------------------------------------------------------
# U-Net skips


def _skip_taps(encoder: list[list[PlannedLayer]]) -> dict[Pair, tuple[int, PlannedLayer]]:
    """Size -> (block number, last layer) of the encoder's last block output at that size.

    The last block (the code, or what the Dense code reads) is left out: the decoder starts
    from it. So is the input: the image itself is no activation to skip.
    """
    taps = {}
    for i, layers in enumerate(encoder[:-1], 1):
        taps[layers[-1].output_shape[:2]] = (i, layers[-1])
    return taps


def _skip_layers(
    skips: str, last: PlannedLayer, taps: dict, label: str, name: str
) -> list[PlannedLayer]:
    """The merge of the encoder's activation of last's size into the decoder, if it has one."""
    size = last.output_shape[:2]
    if size not in taps:
        return []  # back at the input's size, with no encoder activation there but the image
    i, tap = taps[size]
    shape, channels = last.output_shape, last.output_shape[2]
    text = f"skip from enc {i} ({_shape_text(tap.output_shape)})"
    if skips == "concat":
        return [
            PlannedLayer(
                block=label,
                name=f"{name}_skip",
                kind="Concatenate",
                part="decoder",
                input_shape=shape,
                output_shape=(*size, channels + tap.output_shape[2]),
                merge=tap.name,
                merge_shape=tap.output_shape,
                formula=text,
            )
        ]
    layers, other = [], tap
    if tap.output_shape[2] != channels:
        # Add needs equal channels: a 1x1 convolution brings the encoder's to the decoder's.
        other = PlannedLayer(
            block=label,
            name=f"{name}_skip_proj",
            kind="Conv2D",
            part="decoder",
            input_shape=tap.output_shape,
            output_shape=(*size, channels),
            params=_conv_params((1, 1), tap.output_shape[2], channels, True, False),
            kernel=(1, 1),
            strides=(1, 1),
            padding="same",
            dilation=(1, 1),
            activation="linear",
            options=dict(
                filters=channels,
                use_bias=True,
                kernel_initializer="glorot_uniform",
                kernel_regularizer=None,
            ),
            source=tap.name,
            formula=f"1x1 projection of enc {i}'s {_shape_text(tap.output_shape)} for the skip",
        )
        layers.append(other)
    layers.append(_add_layer(last, other.name, other.output_shape, label, f"{name}_skip"))
    layers[-1].kind, layers[-1].formula = "Add", text
    return layers


def _skip_check(
    j: int, block: Any, start: Shape, end: Shape, chain: list[Pair], step: int, taps: dict
) -> int:
    """With skips, a decoder block that changes the size must land on the encoder's next size.

    Returns the step along `chain` (the encoder's sizes from the code back to the input) that
    the block reached; UserError names the block if it lands anywhere else.
    """
    if end[:2] == start[:2]:
        return step
    step += 1
    want = chain[step] if step < len(chain) else None
    if end[:2] == want:
        return step
    if want is None:
        raise UserError(
            f"{_dec_where(j)}: {hw(start)} -> {hw(end)}, but the decoder is already back at the "
            f"input's {hw(chain[-1])}; remove the block or give it strides 1"
        )
    tap = taps.get(want)
    whose = f"encoder block {tap[0]}'s output" if tap else "the input"
    raise UserError(
        f"{_dec_where(j)}: {hw(start)} -> {hw(end)}, but with skips it must land on {hw(want)} "
        f"({whose}, which the skip joins there); {_fix_hint(block, start, want)}"
    )


# ---------------------------------------------------------------------------------------------
# Explicit decoder


def _reachable(shape: Shape, block: ConvTransposeBlock) -> str:
    """The sizes one Conv2DTranspose can reach, e.g. "13x13, 14x14" or "height 13, 14; width 9"."""
    axes = [
        list(
            transpose_choices(
                shape[a],
                block.kernel_size[a],
                block.strides[a],
                block.padding,
                block.dilation_rate[a],
            )
        )
        for a in range(2)
    ]
    if axes[0] == axes[1]:
        return ", ".join(f"{n}x{n}" for n in axes[0])
    return "; ".join(
        f"{axis} {', '.join(map(str, sizes))}" for axis, sizes in zip(("height", "width"), axes)
    )


def _explicit_transpose(block: ConvTransposeBlock, shape: Shape, j: int) -> PlannedLayer:
    where, label, name = _dec_where(j), f"dec {j}", f"dec{j}"
    k, s, d = block.kernel_size, block.strides, block.dilation_rate
    if max(d) > 1:
        reach = (dilated(k[0], d[0]), dilated(k[1], d[1]))
        raise UserError(
            f"{where}.dilation_rate: TensorFlow has no CPU kernel for a dilated "
            f"Conv2DTranspose; use dilation_rate: 1 with kernel_size {list(reach)} "
            f"(the same reach)"
        )
    op = block.output_padding
    if op is not None:
        for a in range(2):
            if not output_padding_ok(k[a], s[a], block.padding, op[a]):
                raise UserError(
                    f"{where}.output_padding: {op[a]} with the even kernel_size {k[a]} and padding "
                    f"same gives (in-1)*stride, one stride short, which TensorFlow refuses at run "
                    f"time; use output_padding between 1 and stride-1, or leave it out for "
                    f"in*stride"
                )
    if block.target_size is not None:
        try:
            op = output_padding_for(shape[:2], block.target_size, k, s, block.padding)
        except LookupError:
            raise UserError(
                f"{where}.target_size: {hw(block.target_size)} is out of reach from {hw(shape)} "
                f"with kernel_size {hw(k)}, strides {hw(s)}, padding {block.padding}; it can reach "
                f"{_reachable(shape, block)} ({FORMULA})"
            ) from None
    return _transpose_layer(
        shape, block.filters, k, s, block.padding, op, label, name, **_pass_through(block)
    )


def _explicit_layers(block: Any, shape: Shape, j: int, before: str) -> list[PlannedLayer]:
    """The layers of an explicit decoder block (a residual block has several)."""
    label, name, where = f"dec {j}", f"dec{j}", _dec_where(j)
    if isinstance(block, ResidualBlock):
        if block.strides != (1, 1):
            raise UserError(
                f"{where}.strides: a residual block in an explicit decoder keeps its size "
                f"(strides 1); upsample with a conv_transpose block before it, or use "
                f"decoder: mirror, which mirrors strided residual blocks"
            )
        return _residual_layers(block, shape, before, label, name, "decoder", where)
    return [_explicit_layer(block, shape, j)]


def _explicit_layer(block: Any, shape: Shape, j: int) -> PlannedLayer:
    """The one layer of an explicit decoder block."""
    label, name, where = f"dec {j}", f"dec{j}", _dec_where(j)
    if isinstance(block, ConvTransposeBlock):
        return _explicit_transpose(block, shape, j)
    if isinstance(block, ConvBlock):
        return _conv_layer(block, shape, label, name, "decoder", where)
    if isinstance(block, UpsampleBlock):
        out = (shape[0] * block.size[0], shape[1] * block.size[1], shape[2])
        return PlannedLayer(
            block=label,
            name=f"{name}_upsample",
            kind="UpSampling2D",
            part="decoder",
            input_shape=shape,
            output_shape=out,
            strides=block.size,
            options=dict(size=block.size, interpolation=block.interpolation),
        )
    (top, bottom), (left, right) = block.cropping
    out = (shape[0] - top - bottom, shape[1] - left - right, shape[2])
    if min(out[:2]) <= 0:
        raise UserError(
            f"{where}.cropping: removes {top + bottom}x{left + right} from a {hw(shape)} "
            f"input, leaving {hw(out)}; crop less"
        )
    return PlannedLayer(
        block=label,
        name=f"{name}_crop",
        kind="Cropping2D",
        part="decoder",
        input_shape=shape,
        output_shape=out,
        options=dict(cropping=block.cropping),
    )


def _fix_hint(block: Any, shape: Shape, expected: Pair) -> str:
    """What setting of this decoder block lands on `expected`."""
    if isinstance(block, ConvTransposeBlock):
        try:
            op = output_padding_for(
                shape[:2],
                expected,
                block.kernel_size,
                block.strides,
                block.padding,
                block.dilation_rate,
            )
        except LookupError:
            return (
                f"no output_padding reaches it with kernel_size {hw(block.kernel_size)}, "
                f"strides {hw(block.strides)}, padding {block.padding} (it can reach "
                f"{_reachable(shape, block)}); change kernel_size, strides or padding "
                f"({FORMULA})"
            )
        if op is None:
            return f"leave output_padding out (Keras's default) ({FORMULA})"
        value = op[0] if op[0] == op[1] else list(op)
        return f"use output_padding: {value} ({FORMULA})"
    if isinstance(block, UpsampleBlock):
        return (
            f"UpSampling2D multiplies by size {hw(block.size)}; use a conv_transpose block "
            f"with target_size: {list(expected)} instead"
        )
    if isinstance(block, CropBlock):
        return "change cropping"
    return (
        "a Conv2D gives ceil(in/stride) with padding same and floor((in - kernel)/stride) + 1 "
        "with valid; change kernel_size, strides or padding"
    )


def _size_chain(cfg: ModelConfig, encoder: list[PlannedLayer]) -> list[Pair]:
    """The encoder's distinct sizes from the code back to the input, e.g. 7x7, 14x14, 28x28."""
    sizes = [layer.output_shape[:2] for layer in reversed(encoder)] + [tuple(cfg.input_shape[:2])]
    return [size for n, size in enumerate(sizes) if n == 0 or size != sizes[n - 1]]


def _check_decoder(
    cfg: ModelConfig, encoder: list[PlannedLayer], decoder: list[tuple[int, Any, Shape, Shape]]
) -> None:
    """Refuse a decoder that misses input_shape, naming the first block that parts from the encoder.

    `decoder` holds (block number, block, its input shape, its output shape).
    """
    want, got = tuple(cfg.input_shape[:2]), decoder[-1][3][:2]
    if got == want:
        return
    chain = _size_chain(cfg, encoder)
    step = 0
    for j, block, start, end in decoder:
        size_in, size_out = start[:2], end[:2]
        if size_out == size_in:
            continue
        step += 1
        if step >= len(chain):
            break
        if size_out != chain[step]:
            raise UserError(
                f"decoder block {j} (model.decoder[{j - 1}]): {hw(size_in)} -> "
                f"{hw(size_out)}, but the encoder had {hw(chain[step])} there; "
                f"{_fix_hint(block, start, chain[step])}"
            )
    path = " -> ".join(hw(end) for _, _, _, end in decoder)
    raise UserError(
        f"decoder: ends at {hw(got)}, but input_shape is {hw(want)} (decoder sizes "
        f"{hw(chain[0])} -> {path}; encoder sizes "
        f"{' -> '.join(hw(s) for s in reversed(chain))}); add or change blocks, e.g. "
        f"a conv_transpose block with target_size: {list(want)}"
    )


def _land_on_skip(block: Any, shape: Shape, chain: list[Pair], step: int) -> Any | None:
    """A conv_transpose block that leaves output_padding unset, with the one meeting the skip.

    With skips every size change must land on the encoder's next size (chain[step + 1]); Keras's
    default output_padding gives in*stride, which misses an odd size. None when the block sets
    output_padding or target_size itself, keeps the size, already lands, or cannot land at all
    (_skip_check then refuses it, naming what it can reach).
    """
    if not isinstance(block, ConvTransposeBlock) or step + 1 >= len(chain):
        return None
    if block.output_padding is not None or block.target_size is not None:
        return None
    k, s, d = block.kernel_size, block.strides, block.dilation_rate
    if s == (1, 1) or max(d) > 1:
        return None
    want = chain[step + 1]
    try:
        op = output_padding_for(shape[:2], want, k, s, block.padding)
    except LookupError:
        return None
    if op is None:  # Keras's default lands there already
        return None
    return block.model_copy(update={"output_padding": op})


def _plan_explicit(
    cfg: ModelConfig, encoder: list[list[PlannedLayer]], shape: Shape, before: str
) -> list[PlannedLayer]:
    flat = [layer for layers in encoder for layer in layers]
    chain, taps, step = _size_chain(cfg, flat), _skip_taps(encoder), 0
    planned, layers = [], []
    for j, block in enumerate(cfg.decoder, 1):
        landed = _land_on_skip(block, shape, chain, step) if cfg.skips != "none" else None
        new = _explicit_layers(landed or block, shape, j, before)
        if landed is not None:
            new[-1].formula += f"; output_padding chosen to meet the skip at {hw(chain[step + 1])}"
        end = new[-1].output_shape
        if cfg.skips != "none":
            step = _skip_check(j, block, shape, end, chain, step, taps)
            if end[:2] != shape[:2]:
                new += _skip_layers(cfg.skips, new[-1], taps, f"dec {j}", f"dec{j}")
        planned.append((j, block, shape, end))
        layers += new
        shape, before = new[-1].output_shape, new[-1].name
    _check_decoder(cfg, flat, planned)
    return layers


# ---------------------------------------------------------------------------------------------
# Whole model


def plan_model(cfg: ModelConfig) -> Plan:
    """Plan every layer of the autoencoder; UserError (one line) if the shapes cannot work."""
    blocks = _plan_encoder(cfg)
    encoder = [layer for layers in blocks for layer in layers]
    feature_map = encoder[-1].output_shape
    encode_code, decode_code = _plan_code(cfg, feature_map) if cfg.latent_dim else ([], [])
    before = (decode_code or encoder)[-1].name  # what the first decoder block reads
    if cfg.decoder == "mirror":
        decoder = _plan_mirror(cfg, blocks, feature_map, before)
    else:
        decoder = _plan_explicit(cfg, blocks, feature_map, before)
    if cfg.skips != "none" and not any(layer.name.endswith("_skip") for layer in decoder):
        raise UserError(
            f"model.skips: {cfg.skips}, but the decoder never comes back to a size the encoder "
            f"had before its last block (the encoder goes "
            f"{' -> '.join(hw(s) for s in reversed(_size_chain(cfg, encoder)))}); use skips: none, "
            f"or add encoder blocks that keep a size before shrinking it"
        )
    last = decoder[-1].output_shape
    channels = cfg.input_shape[2]
    out = PlannedLayer(
        block="out",
        name="output_conv",
        kind="Conv2D",
        part="decoder",
        input_shape=last,
        output_shape=(*last[:2], channels),
        kernel=cfg.output.kernel_size,
        strides=(1, 1),
        padding="same",
        dilation=(1, 1),
        activation=cfg.output.activation,
        params=_conv_params(cfg.output.kernel_size, last[2], channels, True, False),
        options=dict(
            filters=channels,
            use_bias=True,
            kernel_initializer="glorot_uniform",
            kernel_regularizer=None,
        ),
    )
    code_shape = encode_code[-1].output_shape if encode_code else feature_map
    return Plan(
        input_shape=tuple(cfg.input_shape),
        code_shape=code_shape,
        layers=[*encoder, *encode_code, *decode_code, *decoder, out],
        kind=cfg.kind,
        skips=cfg.skips,
    )


# ---------------------------------------------------------------------------------------------
# Printing


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _pair_text(pair: Pair | None) -> str:
    if pair is None:
        return "-"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _row(layer: PlannedLayer) -> list[str]:
    kind = (
        layer.kind
        + (" +bn" if layer.batch_norm else "")
        + (f" +drop {layer.dropout:g}" if layer.dropout else "")
    )
    return [
        layer.block,
        kind,
        hw(layer.kernel) if layer.kernel else "-",
        _pair_text(layer.strides),
        layer.padding or "-",
        _pair_text(layer.output_padding),
        _pair_text(layer.dilation),
        layer.activation or "-",
        f"{_shape_text(layer.input_shape)}"
        + (f" + {_shape_text(layer.merge_shape)}" if layer.merge_shape else "")
        + f" -> {_shape_text(layer.output_shape)}",
        f"{layer.params:,}",
        layer.formula,
    ]


def skip_note(plan: Plan, denoising: bool | None) -> str | None:
    """Where a skip model's decoder reads the encoder, and what that means; None without skips.

    Args:
      plan: the model's plan.
      denoising: whether data.noise is set (None: not known, e.g. for `autoencoder denoise`).
    """
    if plan.skips == "none":
        return None
    sizes = ", ".join(hw(layer.output_shape) for layer in plan.skip_layers)
    where = (
        f"skips ({plan.skips}): the decoder also reads the encoder's {sizes} activations, "
        f"bypassing the code ({_shape_text(plan.code_shape)})"
    )
    if denoising:
        return f"{where}; trained on noisy inputs, as here, that is the point of them"
    return (
        f"{where}; trained to reconstruct its own clean input (data.noise not set), it can copy "
        f"them through, so its compression means nothing there: skips are for denoising "
        f"(data.noise, or `autoencoder denoise`); use skips: none for a real bottleneck"
    )


def format_plan(plan: Plan, denoising: bool | None = None) -> str:
    """The plan as an aligned table, the transposed-convolution arithmetic, totals and the code.

    Args:
      plan: the model's plan.
      denoising: whether the model is trained on noisy inputs, for the note on skips.
    """
    head = [
        "block",
        "layer",
        "kernel",
        "stride",
        "padding",
        "out_pad",
        "dilation",
        "activation",
        "input -> output",
        "params",
        "size arithmetic",
    ]
    rows = [head] + [_row(layer) for layer in plan.layers]
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    right = {9}  # params
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    enc = sum(layer.params for layer in plan.part("encoder"))
    dec = sum(layer.params for layer in plan.part("decoder"))
    ratio = plan.compression
    notes = ["the code is larger than the image"] if ratio < 1 else []
    if plan.skips != "none":
        notes.append("the skips bypass the code")
    note = f" ({'; '.join(notes)})" if notes else ""
    gaussian = (
        "; a VAE: each is a Gaussian (mean and log-variance), sampled by the reparameterisation "
        "z = mean + exp(log_var/2) * noise"
        if plan.kind == "vae"
        else ""
    )
    lines += [
        "",
        f"Conv2DTranspose: {FORMULA}; pad = 0 ('valid') or kernel//2 ('same'), "
        f"kernel dilated; out_pad '-' = Keras's default",
        f"parameters: {plan.total_params:,} (encoder {enc:,}, decoder {dec:,})",
        f"code: {_shape_text(plan.code_shape)} = {plan.code_size:,} values{gaussian}; input "
        f"{_shape_text(plan.input_shape)} = {plan.input_size:,} values; compression "
        f"{plan.input_size:,}/{plan.code_size:,} = {ratio:.2f}x{note}",
    ]
    skips = skip_note(plan, denoising)
    if skips:
        lines.append(f"note: {skips}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Arithmetic cost


def forward_flops(layer: PlannedLayer) -> int:
    """Multiply-adds x 2 of one layer's forward pass for one image (convolutions and Dense only).

    A Conv2D computes kh*kw*cin products for each output value; a Conv2DTranspose scatters each
    input value through kh*kw*cout products, so it is counted on its input grid. Dilation does
    not change the count; bias, batch norm, activations and pooling are left out (they are a few
    operations per value, not per value times kernel times channels).
    """
    if layer.kind == "Conv2D":
        h, w, cout = layer.output_shape
        return 2 * h * w * cout * layer.kernel[0] * layer.kernel[1] * layer.input_shape[2]
    if layer.kind == "Conv2DTranspose":
        h, w, cin = layer.input_shape
        return 2 * h * w * cin * layer.kernel[0] * layer.kernel[1] * layer.output_shape[2]
    if layer.kind == "Dense":
        return 2 * _prod(layer.input_shape) * _prod(layer.output_shape)
    return 0
