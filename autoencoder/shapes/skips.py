"""U-Net skips, the encoder sizes a decoder must land on, and the hint that fixes a miss."""

from __future__ import annotations

from typing import Any

from autoencoder.config import (
    ConvTransposeBlock,
    CropBlock,
    DepthToSpaceBlock,
    ModelConfig,
    UpsampleBlock,
)
from autoencoder.errors import UserError
from autoencoder.shapes.arithmetic import (
    FORMULA,
    Pair,
    Shape,
    _shape_text,
    hw,
    output_padding_for,
    transpose_choices,
)
from autoencoder.shapes.layers import _add_layer, _dec_where, _plain_conv
from autoencoder.shapes.plan import PlannedLayer


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
                role="skip",
            )
        ]
    layers, other = [], tap
    if tap.output_shape[2] != channels:
        # Add needs equal channels: a 1x1 convolution brings the encoder's to the decoder's.
        other = _plain_conv(
            tap.output_shape,
            channels,
            (1, 1),
            label,
            f"{name}_skip_proj",
            activation="linear",
            source=tap.name,
            formula=f"1x1 projection of enc {i}'s {_shape_text(tap.output_shape)} for the skip",
            role="skip_projection",
        )
        layers.append(other)
    add = _add_layer(
        last, other.name, other.output_shape, label, f"{name}_skip", formula=text, role="skip"
    )
    layers.append(add)
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
    if isinstance(block, DepthToSpaceBlock):
        return (
            f"depth_to_space multiplies by size {block.size}; change size, or use a "
            f"conv_transpose block with target_size: {list(expected)} instead"
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
