"""The model section: encoder and decoder blocks, the output layer, the kind of autoencoder."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from autoencoder.config.types import Fraction, NonNegPair, Pair, PosInt, Section

ACTIVATIONS = (
    "relu",
    "sigmoid",
    "tanh",
    "linear",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "leaky_relu",
    "softplus",
    "relu6",
    "hard_sigmoid",
)

# A string checked by _check_activation (its message suggests the closest name); the JSON
# Schema lists the names, so that editors complete them.
Activation = Annotated[StrictStr, WithJsonSchema({"type": "string", "enum": list(ACTIVATIONS)})]


def _check_activation(value: str) -> str:
    if value not in ACTIVATIONS:
        close = difflib.get_close_matches(value, ACTIVATIONS, n=1)
        hint = (
            f"; did you mean '{close[0]}'?"
            if close
            else f"; choose one of {', '.join(ACTIVATIONS)}"
        )
        raise ValueError(f"unknown activation '{value}'{hint}")
    return value


class Regularizer(Section):
    """Weight penalties on a block's kernel (Keras L1L2)."""

    l1: Annotated[StrictFloat, Field(ge=0)] = 0.0
    """L1 penalty on the kernel's weights, added to the loss."""
    l2: Annotated[StrictFloat, Field(ge=0)] = 0.0
    """L2 penalty on the kernel's weights, added to the loss."""


class _LayerOptions(Section):
    """Options shared by Conv2D and Conv2DTranspose blocks; they pass through to Keras."""

    filters: PosInt
    """Output channels (feature maps) of the convolution."""
    kernel_size: Pair = (3, 3)
    """Kernel height and width: one number for both, or [h, w]."""
    strides: Pair = (1, 1)
    """Step of the kernel: 2 halves the size (a conv_transpose doubles it); a number or [h, w]."""
    padding: Literal["same", "valid"] = "same"
    """same: zero padding keeps the size (up to the stride); valid: none, so borders are lost."""
    dilation_rate: Pair = (1, 1)
    """Spacing between kernel taps; above 1 only with strides 1."""
    activation: Activation = "relu"
    """Activation after the convolution (after batch norm when batch_norm is on)."""
    batch_norm: StrictBool = False
    """BatchNormalization between the convolution and its activation."""
    dropout: Fraction = 0.0
    """Fraction of the block's outputs dropped while training; 0: no Dropout layer."""
    use_bias: StrictBool = True
    """Whether the convolution adds a bias (batch norm has its own shift)."""
    kernel_initializer: StrictStr = "glorot_uniform"
    """Keras initializer of the kernel, e.g. glorot_uniform or he_normal."""
    kernel_regularizer: Regularizer | None = None
    """L1/L2 penalty on the kernel; left out: none."""

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        return _check_activation(value)

    @model_validator(mode="after")
    def _stride_xor_dilation(self):
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides {list(self.strides)} together with dilation_rate "
                f"{list(self.dilation_rate)} is not supported by Keras; set one of them to 1"
            )
        return self


class ConvBlock(_LayerOptions):
    """A Conv2D block."""

    type: Literal["conv"] = "conv"
    """conv: a Conv2D (an encoder block without type is one)."""


class ResidualBlock(_LayerOptions):
    """Two convolutions and a shortcut (identity, or a 1x1 projection where the shape changes)."""

    type: Literal["residual"]
    """residual: two convolutions and a shortcut."""

    @model_validator(mode="after")
    def _same_and_odd(self):
        # The shortcut is added to the second convolution's output, so both paths must keep the
        # same size: 'same' padding, and an odd kernel so that the mirrored transposed
        # convolution reaches every size the stride rounded away.
        if self.padding != "same":
            raise ValueError(
                "a residual block needs padding same (its shortcut is added to the convolutions' "
                "output, so both must keep the size); leave padding out"
            )
        if self.kernel_size[0] % 2 == 0 or self.kernel_size[1] % 2 == 0:
            raise ValueError(
                f"a residual block needs an odd kernel_size (got {list(self.kernel_size)}); "
                f"use 3 or 5"
            )
        return self


class PoolBlock(Section):
    """Encoder pooling block (MaxPooling2D / AveragePooling2D)."""

    type: Literal["maxpool", "avgpool"]
    """maxpool (MaxPooling2D) or avgpool (AveragePooling2D)."""
    pool_size: Pair = (2, 2)
    """Window height and width: a number or [h, w]."""
    strides: Pair | None = None
    """Step of the window; left out: pool_size, as in Keras."""
    padding: Literal["same", "valid"] = "valid"
    """valid: rows and columns that do not fill a window are dropped; same: padded."""
    # How `decoder: mirror` undoes this pooling: a learned Conv2DTranspose with the pool's window,
    # stride and padding (reaches every size through output_padding), or UpSampling2D (no weights;
    # cropped or zero-padded where the pooling rounded).
    mirror: Literal["conv_transpose", "upsample"] = "conv_transpose"
    """How `decoder: mirror` undoes this pooling: a learned Conv2DTranspose, or UpSampling2D (no
    weights)."""


# Pixel (un)shuffle, as in ESPCN (Shi et al. 2016) and FFDNet (Zhang et al. 2018): a lossless
# reshape, so a network can work at half the resolution on all of the image's pixels, and upsample
# without the checkerboard of overlapping transposed kernels.
FoldSize = Annotated[StrictInt, Field(ge=2)]


class SpaceToDepthBlock(Section):
    """Encoder block that folds each size x size patch of pixels into the channels (no weights)."""

    type: Literal["space_to_depth"]
    """space_to_depth: height and width divided by size, channels times size squared, no weights."""
    size: FoldSize = 2
    """Side of the patch folded into one pixel; height and width must be multiples of it."""


class DepthToSpaceBlock(Section):
    """Decoder block that unfolds channels into size x size patches of pixels (no weights)."""

    type: Literal["depth_to_space"]
    """depth_to_space: height and width times size, channels divided by size squared, no weights."""
    size: FoldSize = 2
    """Side of the patch each pixel unfolds into; the channels must be a multiple of its square."""


class ConvTransposeBlock(_LayerOptions):
    """Decoder Conv2DTranspose block; `target_size` asks the planner to pick output_padding."""

    type: Literal["conv_transpose"] = "conv_transpose"
    """conv_transpose: a Conv2DTranspose (a decoder block without type is one)."""
    output_padding: NonNegPair | None = None
    """Extra rows and columns of output, smaller than strides on each axis; or give target_size."""
    target_size: Pair | None = None
    """[h, w] the block must output; the planner picks output_padding to reach it."""

    @model_validator(mode="after")
    def _padding_checks(self):
        if self.output_padding is not None and self.target_size is not None:
            raise ValueError("give output_padding or target_size, not both")
        if self.output_padding is not None:
            for op, s in zip(self.output_padding, self.strides):
                if op >= s:
                    raise ValueError(
                        f"output_padding {list(self.output_padding)} must be smaller than strides "
                        f"{list(self.strides)} on every axis (Keras rule: output_padding < stride)"
                    )
        return self


class UpsampleBlock(Section):
    """Decoder UpSampling2D block."""

    type: Literal["upsample"]
    """upsample: an UpSampling2D (no weights)."""
    size: Pair = (2, 2)
    """Factor for height and width: a number or [h, w]."""
    interpolation: Literal["nearest", "bilinear"] = "nearest"
    """How new pixels are filled: nearest copies, bilinear blends."""


class CropBlock(Section):
    """Decoder Cropping2D block: ((top, bottom), (left, right))."""

    type: Literal["crop"]
    """crop: a Cropping2D."""
    cropping: tuple[NonNegPair, NonNegPair]
    """Rows and columns removed: [[top, bottom], [left, right]]."""


def _block_type(default: str):
    def kind(value: Any) -> str | None:
        if isinstance(value, dict):
            kind = value.get("type", default)
            return kind if isinstance(kind, str) else None  # a list or mapping is no tag
        return getattr(value, "type", None)

    return kind


EncoderBlock = Annotated[
    Annotated[ConvBlock, Tag("conv")]
    | Annotated[ResidualBlock, Tag("residual")]
    | Annotated[PoolBlock, Tag("maxpool")]
    | Annotated[PoolBlock, Tag("avgpool")]
    | Annotated[SpaceToDepthBlock, Tag("space_to_depth")],
    Discriminator(
        _block_type("conv"),
        custom_error_type="block_type",
        custom_error_message=(
            "unknown encoder block type; use conv, residual, maxpool, avgpool or space_to_depth"
        ),
    ),
]

DecoderBlock = Annotated[
    Annotated[ConvTransposeBlock, Tag("conv_transpose")]
    | Annotated[UpsampleBlock, Tag("upsample")]
    | Annotated[CropBlock, Tag("crop")]
    | Annotated[ConvBlock, Tag("conv")]
    | Annotated[ResidualBlock, Tag("residual")]
    | Annotated[DepthToSpaceBlock, Tag("depth_to_space")],
    Discriminator(
        _block_type("conv_transpose"),
        custom_error_type="block_type",
        custom_error_message=(
            "unknown decoder block type; use conv_transpose, upsample, depth_to_space, crop, "
            "conv or residual"
        ),
    ),
]


class OutputLayer(Section):
    """The final Conv2D that maps the decoder's features back to the input's channels."""

    activation: Activation = "sigmoid"
    """Activation of the reconstruction; sigmoid keeps pixels in [0, 1], linear leaves them free."""
    kernel_size: Pair = (3, 3)
    """Kernel height and width of the final Conv2D: a number or [h, w]."""
    # DnCNN (Zhang et al. 2017): the network predicts the noise, the model returns the input
    # minus it, so an identity map costs nothing to learn.
    residual: StrictBool = False
    """true: the model outputs its input minus the final Conv2D's (what to remove); needs linear."""

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        return _check_activation(value)

    @model_validator(mode="after")
    def _residual_is_linear(self):
        if self.residual and self.activation != "linear":
            raise ValueError(
                f"residual: true subtracts the output from the input, so the output must be free "
                f"to take any sign, but activation is {self.activation}; set activation: linear"
            )
        return self


def _seed_tutorial_encoder() -> list:
    return [
        ConvBlock(filters=f, padding="valid", kernel_initializer="he_normal") for f in (32, 16, 8)
    ]


class ModelConfig(Section):
    """The network: encoder blocks, an optional Dense code, the decoder, the output layer."""

    # "vae": a variational autoencoder; latent_dim is then the size of its Gaussian code.
    kind: Literal["autoencoder", "vae"] = "autoencoder"
    """autoencoder, or vae: a variational autoencoder with a Gaussian code of latent_dim numbers."""
    input_shape: Annotated[
        tuple[PosInt, PosInt, PosInt],
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"type": "integer", "exclusiveMinimum": 0},
                        "minItems": 3,
                        "maxItems": 3,
                    },
                    {"type": "null"},
                ]
            }
        ),
    ] = Field((28, 28, 1), json_schema_extra={"default": None})  # documented as the data's
    """[H, W, C] the model takes; left out or null: the data's (a patch's, with data.patches)."""
    encoder: Annotated[list[EncoderBlock], Field(min_length=1)] = Field(
        default_factory=_seed_tutorial_encoder
    )
    """The encoder's blocks, in order."""
    latent_dim: PosInt | None = None
    """Size of a Dense code between encoder and decoder; left out: no Dense layer."""
    # U-Net skips: after each decoder block that changes the size, the encoder's activation of
    # that size is concatenated or added (docs/families.md).
    skips: Annotated[
        Literal["none", "concat", "add"],
        WithJsonSchema({"enum": ["none", "concat", "add", None]}),  # null: none (_no_skips)
    ] = "none"
    """U-Net skips: the encoder's activation of each size is concatenated (concat) or added (add) in
    the decoder."""
    decoder: Annotated[
        Annotated[Literal["mirror"], Tag("mirror")]
        | Annotated[
            list[DecoderBlock],
            Field(min_length=1),
            Tag("blocks"),
        ],
        Discriminator(lambda v: "blocks" if isinstance(v, list) else "mirror"),
    ] = "mirror"
    """mirror: the encoder undone in reverse order; or a list of decoder blocks."""
    output: OutputLayer = Field(default_factory=OutputLayer)
    """The final Conv2D back to the input's channels."""

    @model_validator(mode="before")
    @classmethod
    def _null_shape_is_left_out(cls, value: Any) -> Any:
        # input_shape: null means left out (the data's): a preset's shape can be unset by --set.
        if isinstance(value, dict) and "input_shape" in value and value["input_shape"] is None:
            value = {k: v for k, v in value.items() if k != "input_shape"}
        return value

    @field_validator("skips", mode="before")
    @classmethod
    def _no_skips(cls, value: Any) -> Any:
        # YAML reads `skips: null` (or a bare `skips:`) as None: the same as none.
        return "none" if value is None else value

    @model_validator(mode="after")
    def _vae_needs_a_code(self):
        if self.kind == "vae" and self.latent_dim is None:
            raise ValueError(
                "kind vae needs latent_dim (the size of its Gaussian code), e.g. latent_dim: 32"
            )
        if self.kind == "vae" and self.skips != "none":
            raise ValueError(
                f"kind vae cannot have skips {self.skips}: a sample from the prior has no encoder "
                f"activations to skip; use skips: none"
            )
        if self.kind == "vae" and self.output.residual:
            raise ValueError(
                "kind vae cannot have output.residual: true: a sample from the prior has no input "
                "to subtract from; use output.residual: false"
            )
        return self
