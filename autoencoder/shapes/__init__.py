"""Pure shape planning, no TensorFlow: `autoencoder shapes` answers at once.

`plan_model` turns a ModelConfig into a flat list of planned layers (planner.py), built from the
one-axis arithmetic (arithmetic.py), the layers of a block (layers.py), the decoder (decoder.py)
and its U-Net skips (skips.py); text.py prints the plan.
"""

from autoencoder.shapes.arithmetic import (
    FORMULA,
    Pair,
    Shape,
    conv_output_size,
    conv_transpose_output_size,
    default_output_padding,
    dilated,
    hw,
    output_padding_for,
    output_padding_ok,
    pool_output_size,
    transpose_choices,
    transpose_pad,
)
from autoencoder.shapes.plan import Plan, PlannedLayer, forward_flops
from autoencoder.shapes.planner import plan_model
from autoencoder.shapes.text import format_plan, skip_note

__all__ = [
    "FORMULA",
    "Pair",
    "Plan",
    "PlannedLayer",
    "Shape",
    "conv_output_size",
    "conv_transpose_output_size",
    "default_output_padding",
    "dilated",
    "forward_flops",
    "format_plan",
    "hw",
    "output_padding_for",
    "output_padding_ok",
    "plan_model",
    "pool_output_size",
    "skip_note",
    "transpose_choices",
    "transpose_pad",
]
