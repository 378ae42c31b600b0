"""The decoder: the encoder mirrored (`decoder: mirror`) or the config's own blocks."""

from __future__ import annotations

from typing import Any

from autoencoder.config import (
    ConvBlock,
    ConvTransposeBlock,
    DepthToSpaceBlock,
    ModelConfig,
    PoolBlock,
    ResidualBlock,
    SpaceToDepthBlock,
    UpsampleBlock,
)
from autoencoder.errors import UserError
from autoencoder.shapes.arithmetic import (
    FORMULA,
    Pair,
    Shape,
    dilated,
    hw,
    output_padding_for,
    output_padding_ok,
)
from autoencoder.shapes.layers import (
    _conv_layer,
    _crop_layer,
    _dec_where,
    _depth_to_space_layer,
    _fit_layers,
    _mirror_residual,
    _pass_through,
    _residual_layers,
    _transpose_layer,
    _upsample_layer,
)
from autoencoder.shapes.plan import PlannedLayer
from autoencoder.shapes.skips import (
    _fix_hint,
    _land_on_skip,
    _reachable,
    _size_chain,
    _skip_check,
    _skip_layers,
    _skip_taps,
)


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
        # do not yet support dilation rates larger than 1"). Strides are 1 here (config/blocks.py), so a
        # 'same' layer keeps the size: mirror it with the same dilated Conv2D; a 'valid' one grows
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
        up = _upsample_layer(shape, s, "nearest", label, name)
        return [up, *_fit_layers(up.output_shape, target, label, name)]
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
        elif isinstance(block, SpaceToDepthBlock):
            # The exact inverse: no rounding to undo, since the fold needed whole patches. The
            # channels it unfolds are those the encoder's next block made (its mirror's filters).
            where = f"{label} (decoder: mirror of model.encoder[{index}], a space_to_depth)"
            whose = f"model.encoder[{index + 1}] (the block before this one mirrors it)"
            new = [_depth_to_space_layer(shape, block.size, label, name, where, whose)]
        else:
            new = _mirror_pool(block, _nearest_conv(cfg.encoder, index), shape, target, label, name)
        if cfg.skips != "none" and new[-1].output_shape[:2] != shape[:2]:
            new += _skip_layers(cfg.skips, new[-1], taps, label, name)
        layers += new
        shape, before = new[-1].output_shape, new[-1].name
    return layers


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
        return _upsample_layer(shape, block.size, block.interpolation, label, name)
    if isinstance(block, DepthToSpaceBlock):
        return _depth_to_space_layer(shape, block.size, label, name, where)
    crop = _crop_layer(shape, block.cropping, label, name)
    if min(crop.output_shape[:2]) <= 0:
        (top, bottom), (left, right) = block.cropping
        raise UserError(
            f"{where}.cropping: removes {top + bottom}x{left + right} from a {hw(shape)} "
            f"input, leaving {hw(crop.output_shape)}; crop less"
        )
    return crop


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
