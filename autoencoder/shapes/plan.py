"""The plan: every layer of the autoencoder with the sizes around it, and its arithmetic cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from autoencoder.shapes.arithmetic import Pair, Shape, _prod

# What a layer is for, where the model builder or a reader of the plan must know it (the Keras
# name is for saved models and people, not for code to parse):
#   "skip"             the Concatenate / Add that brings an encoder activation into the decoder
#   "skip_projection"  the 1x1 Conv2D that gives that activation the decoder's channels (skips: add)
#   "shortcut"         the 1x1 projection of a residual block's input, where channels or size change
#   "residual"         the Add that closes a residual block
#   "output"           the reconstruction's Conv2D, whose activation runs in float32
#   "residual_output"  the Subtract after it in a residual head (model.output.residual): image - it
Role = Literal["", "skip", "skip_projection", "shortcut", "residual", "output", "residual_output"]


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
    role: Role = ""


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
        return [layer for layer in self.layers if layer.role == "skip"]

    @property
    def residual(self) -> bool:
        """Whether the model returns its input minus the output Conv2D's (a residual head)."""
        return any(layer.role == "residual_output" for layer in self.layers)

    @property
    def one_graph(self) -> bool:
        """Whether the image reaches the decoder past the code (skips, a residual head): then
        there is no decoder of the code alone."""
        return self.skips != "none" or self.residual

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
