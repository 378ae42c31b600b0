"""The planned layers of one block: Conv2D, pooling, Conv2DTranspose, crop / pad, residual blocks."""

from __future__ import annotations

from typing import Any

from autoencoder.config import ConvBlock, ConvTransposeBlock, PoolBlock, ResidualBlock
from autoencoder.errors import UserError
from autoencoder.shapes.arithmetic import (
    Pair,
    Shape,
    _shape_text,
    conv_output_size,
    conv_transpose_output_size,
    default_output_padding,
    dilated,
    hw,
    output_padding_for,
    pool_output_size,
    transpose_pad,
)
from autoencoder.shapes.plan import PlannedLayer


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


def _plain_conv(
    shape: Shape, filters: int, kernel: Pair, label: str, name: str, **kwargs: Any
) -> PlannedLayer:
    """A decoder Conv2D that no config block describes: 'same', a bias, Keras's initializer."""
    return PlannedLayer(
        block=label,
        name=name,
        kind="Conv2D",
        part="decoder",
        input_shape=shape,
        output_shape=(*shape[:2], filters),
        kernel=kernel,
        strides=(1, 1),
        padding="same",
        dilation=(1, 1),
        params=_conv_params(kernel, shape[2], filters, True, False),
        options=dict(
            filters=filters,
            use_bias=True,
            kernel_initializer="glorot_uniform",
            kernel_regularizer=None,
        ),
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


def _upsample_layer(
    shape: Shape, size: Pair, interpolation: str, label: str, name: str
) -> PlannedLayer:
    """An UpSampling2D: each axis times its size."""
    return PlannedLayer(
        block=label,
        name=f"{name}_upsample",
        kind="UpSampling2D",
        part="decoder",
        input_shape=shape,
        output_shape=(shape[0] * size[0], shape[1] * size[1], shape[2]),
        strides=size,
        options=dict(size=size, interpolation=interpolation),
    )


def _space_to_depth_layer(
    shape: Shape, size: int, label: str, name: str, where: str
) -> PlannedLayer:
    """A SpaceToDepth: each size x size patch becomes one pixel of size*size times the channels."""
    if shape[0] % size or shape[1] % size:
        fits = f"{shape[0] - shape[0] % size}x{shape[1] - shape[1] % size}"
        raise UserError(
            f"{where}: space_to_depth folds {size}x{size} patches, but its input is "
            f"{hw(shape)}, not a multiple of {size} on each side; use size: a divisor of both, "
            f"or bring the size to a multiple first (e.g. {fits}: data.image_size, or a conv "
            f"with padding valid)"
        )
    return PlannedLayer(
        block=label,
        name=f"{name}_space_to_depth",
        kind="SpaceToDepth",
        part="encoder",
        input_shape=shape,
        output_shape=(shape[0] // size, shape[1] // size, shape[2] * size * size),
        strides=(size, size),
        formula=(
            f"each {size}x{size} patch folded into one pixel: {shape[0]}/{size} = "
            f"{shape[0] // size}, channels {shape[2]}*{size}*{size} = {shape[2] * size * size}"
        ),
        options=dict(size=size),
    )


def _depth_to_space_layer(
    shape: Shape, size: int, label: str, name: str, where: str, whose: str = "the block before it"
) -> PlannedLayer:
    """A DepthToSpace: each pixel's channels unfold into a size x size patch."""
    if shape[2] % (size * size):
        raise UserError(
            f"{where}: depth_to_space unfolds {size * size} channels into each {size}x{size} "
            f"patch, but its input {_shape_text(shape)} has {shape[2]}, not a multiple of "
            f"{size * size}; give {whose} filters: a multiple of {size * size}"
        )
    return PlannedLayer(
        block=label,
        name=f"{name}_depth_to_space",
        kind="DepthToSpace",
        part="decoder",
        input_shape=shape,
        output_shape=(shape[0] * size, shape[1] * size, shape[2] // (size * size)),
        strides=(size, size),
        formula=(
            f"each pixel unfolded into a {size}x{size} patch: {shape[0]}*{size} = "
            f"{shape[0] * size}, channels {shape[2]}/({size}*{size}) = {shape[2] // (size * size)}"
        ),
        options=dict(size=size),
    )


def _crop_layer(shape: Shape, cropping: Any, label: str, name: str) -> PlannedLayer:
    """A Cropping2D of ((top, bottom), (left, right)); a size <= 0 is the caller's to refuse."""
    (top, bottom), (left, right) = cropping
    return PlannedLayer(
        block=label,
        name=f"{name}_crop",
        kind="Cropping2D",
        part="decoder",
        input_shape=shape,
        output_shape=(shape[0] - top - bottom, shape[1] - left - right, shape[2]),
        options=dict(cropping=cropping),
    )


def _fit_layers(shape: Shape, target: Pair, label: str, name: str) -> list[PlannedLayer]:
    """Cropping2D / ZeroPadding2D at the bottom and right, where nothing else lands on target."""
    over = (max(0, shape[0] - target[0]), max(0, shape[1] - target[1]))
    under = (max(0, target[0] - shape[0]), max(0, target[1] - shape[1]))
    layers = []
    if any(over):
        layers.append(_crop_layer(shape, ((0, over[0]), (0, over[1])), label, name))
        shape = layers[-1].output_shape
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
        proj.source, proj.role = before, "shortcut"
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
        role="residual",
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
    proj.source, proj.role = before, "shortcut"
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
        role="residual",
    )
    return [first, second, proj, add]
