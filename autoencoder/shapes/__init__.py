"""Pure shape planning, no TensorFlow: `autoencoder shapes` answers at once.

`plan_model` turns a ModelConfig into a flat list of planned layers (planner.py), built from the
one-axis arithmetic (arithmetic.py), the layers of a block (layers.py), the decoder (decoder.py)
and its U-Net skips (skips.py); text.py prints the plan.
"""

from autoencoder.shapes.plan import Plan, PlannedLayer, forward_flops
from autoencoder.shapes.planner import plan_model
from autoencoder.shapes.text import format_plan, skip_note

# The arithmetic of one axis (conv_output_size, output_padding_for, ...): shapes.arithmetic.
__all__ = ["Plan", "PlannedLayer", "format_plan", "forward_flops", "plan_model", "skip_note"]
