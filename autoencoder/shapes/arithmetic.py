"""Conv2D / pooling / Conv2DTranspose size arithmetic on one axis, as Keras 3 computes it.

Sizes along one axis (k = dilated kernel (kernel-1)*dilation + 1, as in
keras/src/ops/operation_utils.py and keras/src/backend/common/backend_utils.py):
  Conv2D / pooling  'valid': floor((in - k) / stride) + 1      'same': ceil(in / stride)
  Conv2DTranspose         : (in-1)*stride + k - 2*pad + output_padding
                            pad = 0 for 'valid', k//2 for 'same'; an unset output_padding is
                            max(k, stride) - k for 'valid' and stride - k%2 for 'same' (= in*stride).
"""

from __future__ import annotations

FORMULA = "out = (in-1)*stride + kernel - 2*pad + output_padding"

Shape = tuple[int, ...]
Pair = tuple[int, int]


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


def _prod(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def hw(shape: Shape | Pair) -> str:
    """(28, 28, 1) -> "28x28"."""
    return f"{shape[0]}x{shape[1]}"


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))
