"""Typed run configuration: defaults, YAML loading, --set overrides and one-line error messages.

Every default lives here. A YAML file overrides the defaults, `--set a.b=v` overrides the file,
and anything unknown, mistyped or out of range is refused with one line naming the file and the
key path (see `load_config`).
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from autoencoder.errors import UserError

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

# Keras 1 words that users of Deconvolution2D still write, and the Keras 3 key that replaced each.
KERAS1_KEYS = {
    "nb_filter": "filters",
    "nb_row": "kernel_size",
    "nb_col": "kernel_size",
    "subsample": "strides",
    "border_mode": "padding",
    "output_shape": "target_size (or output_padding)",
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "bias": "use_bias",
}
KERAS1_TYPES = {
    "deconvolution2d": "conv_transpose",
    "deconv": "conv_transpose",
    "convolution2d": "conv",
    "conv2d": "conv",
    "conv2dtranspose": "conv_transpose",
    "maxpooling2d": "maxpool",
    "averagepooling2d": "avgpool",
}

PosInt = Annotated[StrictInt, Field(gt=0)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
Fraction = Annotated[StrictFloat, Field(ge=0, lt=1)]
PosFloat = Annotated[StrictFloat, Field(gt=0)]


def _pair(minimum: int):
    def check(value: Any) -> tuple[int, int]:
        what = "a positive integer" if minimum > 0 else "a non-negative integer"
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            if min(value) < minimum:
                raise ValueError(f"must be {what} or a pair [h, w] of them, got {list(value)}")
            return (int(value[0]), int(value[1]))
        raise ValueError(f"must be {what} or a pair [h, w] of them, got {value!r}")

    return check


# Sizes that may differ by axis: `3` means (3, 3); `[3, 5]` means height 3, width 5.
Pair = Annotated[tuple[int, int], BeforeValidator(_pair(1))]
NonNegPair = Annotated[tuple[int, int], BeforeValidator(_pair(0))]


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


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
    l1: Annotated[StrictFloat, Field(ge=0)] = 0.0
    l2: Annotated[StrictFloat, Field(ge=0)] = 0.0


class _LayerOptions(Section):
    """Options shared by Conv2D and Conv2DTranspose blocks; they pass through to Keras."""

    filters: PosInt
    kernel_size: Pair = (3, 3)
    strides: Pair = (1, 1)
    padding: Literal["same", "valid"] = "same"
    dilation_rate: Pair = (1, 1)
    activation: StrictStr = "relu"
    batch_norm: StrictBool = False
    dropout: Fraction = 0.0
    use_bias: StrictBool = True
    kernel_initializer: StrictStr = "glorot_uniform"
    kernel_regularizer: Regularizer | None = None

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
    """Encoder Conv2D block."""

    type: Literal["conv"] = "conv"


class ResidualBlock(_LayerOptions):
    """Two convolutions and a shortcut (identity, or a 1x1 projection where the shape changes)."""

    type: Literal["residual"]

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
    pool_size: Pair = (2, 2)
    strides: Pair | None = None  # None: same as pool_size, as in Keras
    padding: Literal["same", "valid"] = "valid"
    # How `decoder: mirror` undoes this pooling: a learned Conv2DTranspose with the pool's window,
    # stride and padding (reaches every size through output_padding), or UpSampling2D (no weights;
    # cropped or zero-padded where the pooling rounded).
    mirror: Literal["conv_transpose", "upsample"] = "conv_transpose"


class ConvTransposeBlock(_LayerOptions):
    """Decoder Conv2DTranspose block; `target_size` asks the planner to pick output_padding."""

    type: Literal["conv_transpose"] = "conv_transpose"
    output_padding: NonNegPair | None = None
    target_size: Pair | None = None

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
    size: Pair = (2, 2)
    interpolation: Literal["nearest", "bilinear"] = "nearest"


class CropBlock(Section):
    """Decoder Cropping2D block: ((top, bottom), (left, right))."""

    type: Literal["crop"]
    cropping: tuple[NonNegPair, NonNegPair]


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
    | Annotated[PoolBlock, Tag("avgpool")],
    Discriminator(
        _block_type("conv"),
        custom_error_type="block_type",
        custom_error_message="unknown encoder block type; use conv, residual, maxpool or avgpool",
    ),
]

DecoderBlock = Annotated[
    Annotated[ConvTransposeBlock, Tag("conv_transpose")]
    | Annotated[UpsampleBlock, Tag("upsample")]
    | Annotated[CropBlock, Tag("crop")]
    | Annotated[ConvBlock, Tag("conv")]
    | Annotated[ResidualBlock, Tag("residual")],
    Discriminator(
        _block_type("conv_transpose"),
        custom_error_type="block_type",
        custom_error_message=(
            "unknown decoder block type; use conv_transpose, upsample, crop, conv or residual"
        ),
    ),
]


class OutputLayer(Section):
    """The final Conv2D that maps the decoder's features back to the input's channels."""

    activation: StrictStr = "sigmoid"
    kernel_size: Pair = (3, 3)

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        return _check_activation(value)


def _seed_tutorial_encoder() -> list:
    return [
        ConvBlock(filters=f, padding="valid", kernel_initializer="he_normal") for f in (32, 16, 8)
    ]


class ModelConfig(Section):
    # "vae": a variational autoencoder; latent_dim is then the size of its Gaussian code.
    kind: Literal["autoencoder", "vae"] = "autoencoder"
    input_shape: tuple[PosInt, PosInt, PosInt] = (28, 28, 1)
    encoder: Annotated[list[EncoderBlock], Field(min_length=1)] = Field(
        default_factory=_seed_tutorial_encoder
    )
    latent_dim: PosInt | None = None
    # U-Net skips: after each decoder block that changes the size, the encoder's activation of
    # that size is concatenated or added (docs/families.md).
    skips: Literal["none", "concat", "add"] = "none"
    decoder: Annotated[
        Annotated[Literal["mirror"], Tag("mirror")]
        | Annotated[
            list[DecoderBlock],
            Field(min_length=1),
            Tag("blocks"),
        ],
        Discriminator(lambda v: "blocks" if isinstance(v, list) else "mirror"),
    ] = "mirror"
    output: OutputLayer = Field(default_factory=OutputLayer)

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
        return self


class NoiseConfig(Section):
    kind: Literal["gaussian", "salt_pepper", "speckle", "mask"] = "gaussian"
    level: Annotated[StrictFloat, Field(ge=0)] = 0.4
    clip: StrictBool = True


# Built-in datasets: the (H, W, C) of their images and how many classes they have. A folder's
# come from its files (data.image_size and data.color say them in advance).
DATASET_SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "mnist_sample": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "photos": (96, 96, 3),
}
DATASET_CLASSES = {"mnist": 10, "fashion_mnist": 10, "mnist_sample": 10, "cifar10": 10, "photos": 2}


def _class_key(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be a class number or a class name, got {_show(value)}")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"class numbers start at 0, got {value}")
    if isinstance(value, str) and not value:
        raise ValueError("a class name cannot be empty")
    return value


ClassKey = Annotated[int | str, BeforeValidator(_class_key)]


class PatchConfig(Section):
    """Random crops of size (h, w), per_image of them from each image in every epoch."""

    size: Pair
    per_image: PosInt = 1


class DataConfig(Section):
    dataset: Literal["mnist", "fashion_mnist", "mnist_sample", "cifar10", "photos", "folder"] = (
        "mnist_sample"
    )
    path: StrictStr | None = None
    validation_split: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.1
    # Cut from the images with a fixed seed when the data has no test set of its own (a folder
    # without test/, the photos); the same images whatever config.seed is.
    test_split: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.1
    limit: PosInt | None = None  # caps the training pool (before the validation split)
    classes: list[ClassKey] | None = None  # numbers (0, 1, ...) or names (folder names)
    image_size: Pair | None = None  # [H, W] every image is brought to, by `fit`
    fit: Literal["resize", "crop", "pad"] = "resize"
    color: Literal["grayscale", "rgb"] | None = None  # None: the data's own
    patches: PatchConfig | None = None
    cache: Literal["auto", "memory", "none"] = "auto"  # decoded images in memory, or streamed
    skip_bad: StrictBool = False  # skip unreadable files (one warning) instead of refusing
    noise: NoiseConfig | None = None

    @field_validator("classes")
    @classmethod
    def _classes(cls, value, info):
        if value is not None:
            if not value:
                raise ValueError("must list at least one class, or be left out for all")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a class twice: {value}")
            dataset = info.data.get("dataset")
            count = DATASET_CLASSES.get(dataset)
            high = [v for v in value if isinstance(v, int) and count is not None and v >= count]
            if high:
                raise ValueError(
                    f"class {high[0]} is not one of {dataset}'s classes 0 to {count - 1}"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.dataset == "folder" and self.path is None:
            raise ValueError(
                "data.dataset folder needs data.path: the folder that holds the images"
            )
        if self.patches is not None and self.image_size is not None:
            if any(p > s for p, s in zip(self.patches.size, self.image_size)):
                raise ValueError(
                    f"data.patches.size {list(self.patches.size)} is larger than "
                    f"data.image_size {list(self.image_size)}; patches are cut from the images"
                )
        return self

    def image_shape(self) -> tuple[int, int, int] | None:
        """(H, W, C) of the whole images when known without reading a file, else None."""
        known = DATASET_SHAPES.get(self.dataset)
        channels = {"grayscale": 1, "rgb": 3}.get(self.color or "", known and known[2])
        size = self.image_size or (known and known[:2])
        return (*size, channels) if size and channels else None

    def input_shape(self) -> tuple[int, int, int] | None:
        """(H, W, C) of what the model sees (a patch, or a whole image), or None if unknown."""
        shape = self.image_shape()
        if self.patches is not None:
            channels = {"grayscale": 1, "rgb": 3}.get(self.color or "")
            channels = channels or (shape[2] if shape else None)
            return (*self.patches.size, channels) if channels else None
        return shape


class OptimizerConfig(Section):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: PosFloat = 1e-3
    momentum: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.9  # sgd only
    weight_decay: Annotated[StrictFloat, Field(ge=0)] = 1e-4  # adamw only
    clipnorm: PosFloat | None = None


class ScheduleConfig(Section):
    kind: Literal["constant", "cosine", "plateau"] = "constant"
    min_lr: Annotated[StrictFloat, Field(ge=0)] = 0.0  # cosine floor and plateau floor
    factor: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.5  # plateau
    patience: PosInt = 2  # plateau


class EarlyStoppingConfig(Section):
    patience: PosInt | None = None  # None: off
    restore_best: StrictBool = True


class KLConfig(Section):
    """A VAE's KL term: its weight, reached by a linear warm-up over the first epochs."""

    weight: Annotated[StrictFloat, Field(ge=0)] = 1.0
    warmup_epochs: NonNegInt = 0  # 0: the full weight from the first step


class TrainConfig(Section):
    epochs: PosInt = 10
    batch_size: PosInt = 128
    loss: Literal["bce", "mse", "mae"] = "bce"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    tensorboard: StrictBool = True
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    # tf.distribute: "auto" mirrors across the local GPUs when there are several; batch_size is
    # the global batch, split across replicas (the learning rate is not rescaled).
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    worker_timeout: PosInt = 60  # seconds a worker waits for a lost peer before giving up
    memory_check: StrictBool = True  # refuse a run whose memory plan exceeds the machine's
    kl: KLConfig | None = None  # model.kind vae only; None there means weight 1, no warm-up

    @property
    def kl_term(self) -> KLConfig:
        """The KL settings in force (a VAE without train.kl: weight 1, no warm-up)."""
        return self.kl or KLConfig()

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_switch(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare on / off as true / false: take them as the words they were.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


NoiseLevels = Annotated[list[Annotated[StrictFloat, Field(ge=0)]], Field(min_length=1)]


class DenoiseConfig(Section):
    """`autoencoder denoise`: one model per training level, each evaluated at every eval level."""

    kind: Literal["gaussian", "salt_pepper", "speckle", "mask"] = "gaussian"
    clip: StrictBool = True
    train_levels: NoiseLevels = [0.2, 0.4, 0.6]
    eval_levels: NoiseLevels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    eval_seed: NonNegInt = 1234  # fixed evaluation noise: numbers compare across models and runs
    eval_images: PosInt | None = None  # caps the test images evaluated (None: all)

    @field_validator("train_levels", "eval_levels")
    @classmethod
    def _distinct(cls, value):
        if len(set(value)) != len(value):
            raise ValueError(f"lists a level twice: {value}")
        return sorted(value)


class ThresholdConfig(Section):
    """How `autoencoder anomaly` draws the line: at most one of these; none means quantile 0.95.

    quantile and fpr are chosen on the normal validation images (fpr f is quantile 1 - f); value
    is a threshold of your own, used as given.
    """

    quantile: Annotated[StrictFloat, Field(gt=0, lt=1)] | None = None
    fpr: Annotated[StrictFloat, Field(gt=0, lt=1)] | None = None
    value: Annotated[StrictInt | StrictFloat, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _one_rule(self):
        given = [k for k in ("quantile", "fpr", "value") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"sets {' and '.join(given)}; choose one way to set the threshold "
                f"(quantile, fpr or value)"
            )
        return self

    def rule(self) -> tuple[str, float]:
        """("quantile" | "fpr" | "value", its number)."""
        for key in ("quantile", "fpr", "value"):
            if getattr(self, key) is not None:
                return key, float(getattr(self, key))
        return "quantile", 0.95


class AnomalyConfig(Section):
    """`autoencoder anomaly`: train on the normal classes, score every test image."""

    normal: list[ClassKey] | None = None  # numbers or names; the other classes are anomalies
    score: Literal["mse", "mae", "ssim"] = "mse"  # per image; ssim scores 1 - SSIM
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    examples: PosInt = 8  # highest- and lowest-scoring test images in the figure

    @field_validator("normal")
    @classmethod
    def _normal(cls, value):
        if value is not None:
            if not value:
                raise ValueError("must list at least one class")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a class twice: {value}")
        return value


class Config(Section):
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "run"
    seed: NonNegInt = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    denoise: DenoiseConfig = Field(default_factory=DenoiseConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    output: StrictStr = "outputs"

    @field_validator("train")
    @classmethod
    def _kl_is_for_a_vae(cls, value: TrainConfig, info: ValidationInfo) -> TrainConfig:
        model = info.data.get("model")  # validated first: fields go in order
        if value.kl is not None and model is not None and model.kind != "vae":
            raise ValueError(
                "kl is the KL term of a VAE, but model.kind is autoencoder; set model.kind: vae "
                "(with latent_dim) or remove train.kl"
            )
        return value

    @model_validator(mode="after")
    def _input_shape_from_data(self):
        # model.input_shape left out means the data's (H, W, C): filled here when the config says
        # it, else by data.resolve_input_shape from the first image file.
        shape = self.data.input_shape()
        if "input_shape" not in self.model.model_fields_set and shape is not None:
            self.model = self.model.model_copy(update={"input_shape": shape})
        return self


# ---------------------------------------------------------------------------------------------
# Loading and messages


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML config, apply `--set key=value` overrides, validate.

    Args:
      path: YAML file; None starts from the defaults alone.
      overrides: strings like "train.epochs=5"; values are parsed as YAML.
    Raises:
      UserError: one line per mistake (at most five, then a count of the rest), each naming the
        file (or the --set) and the key path.
    """
    raw = read_yaml(path) if path is not None else {}
    sets: list[tuple[tuple, str]] = []
    for item in overrides:
        keys, value = parse_override(item)
        set_path(raw, keys, value, _printable(item))
        sets.append((keys, f"--set {_printable(item)}"))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        # Keras 1 words always fail validation too (unknown keys and types), so they are
        # looked for only here.
        found = mistakes(raw, exc.errors())
        lines = [f"{_source(loc, path, sets)}: {format_loc(loc)}: {text}" for loc, text in found]
        raise UserError(summary(lines)) from None


def mistakes(raw: dict, errors: list) -> typing.Iterator[tuple[tuple, str]]:
    """(key path, message) for every mistake: Keras 1 words first, then pydantic's errors."""
    explained: set[tuple[tuple, str]] = set()
    for loc, message, explains in keras1_words(raw):
        explained |= explains
        yield loc, message
    for error in errors:
        loc = user_loc(error["loc"])
        # A Keras 1 word also trips pydantic (unknown key, missing filters, unknown type);
        # its own line already says what to write instead.
        if (loc, error["type"]) not in explained:
            yield loc, describe_error(error, loc)


def keras1_words(raw: dict) -> typing.Iterator[tuple[tuple, str, set]]:
    """(loc, message, pydantic errors it explains) for each Keras 1 key or type in a block."""
    model = raw.get("model")
    for part in ("encoder", "decoder"):
        blocks = model.get(part) if isinstance(model, dict) else None
        for i, block in enumerate(blocks if isinstance(blocks, list) else []):
            at = ("model", part, i)
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if isinstance(kind, str) and kind.lower() in KERAS1_TYPES:
                new = KERAS1_TYPES[kind.lower()]
                message = f"block {i}: type '{kind}' is the old Keras layer name; use type: {new}"
                yield at[:-1], message, {(at, "block_type")}
            for key in block:
                if key in KERAS1_KEYS:
                    new = KERAS1_KEYS[key]
                    message = f"'{key}' is Keras 1 (Deconvolution2D era); use '{new}'"
                    yield at, message, {(at + (key,), "extra_forbidden"), (at + (new,), "missing")}


def user_loc(loc: tuple) -> tuple:
    """Pydantic's error path without the union tags it inserts, which users never wrote."""
    # The tagged unions: model.decoder ("mirror" or "blocks") and each block ("conv", ...).
    loc = list(loc)
    if loc[:2] == ["model", "decoder"] and loc[2:3] in (["mirror"], ["blocks"]):
        del loc[2]
    if loc[:2] in (["model", "encoder"], ["model", "decoder"]) and len(loc) > 3:
        del loc[3]
    return tuple(loc)


def _source(loc: tuple, path: str | Path | None, sets: list[tuple[tuple, str]]) -> str:
    """Where `loc` was written: the last --set on it, above it or inside it, else the file."""
    for keys, item in reversed(sets):
        if loc[: len(keys)] == keys or keys[: len(loc)] == loc:
            return item
    return str(path) if path is not None else "defaults"


def summary(lines: list[str], keep: int = 5) -> str:
    """The first `keep` lines, then how many more there are."""
    # More lines would scroll the first mistakes away; the count says how much is left to fix.
    rest = len(lines) - keep
    more = [f"... and {rest} more mistake{'s' * (rest > 1)}"] if rest > 0 else []
    return "\n".join(lines[:keep] + more)


def read_yaml(path: str | Path) -> dict:
    """Load a YAML mapping with safe_load; refuse anything else with one line."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{path}: config file not found; check the path (presets are in configs/)"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read config: {exc.__class__.__name__}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = _printable(getattr(exc, "problem", None) or str(exc).partition("\n")[0])
        if not isinstance(exc, yaml.constructor.ConstructorError):
            raise UserError(f"{path}: not valid YAML: {line}{problem}") from None
        # Valid YAML that safe_load will not build, such as a Python tag.
        hint = "; configs are plain YAML and Python object tags are refused (yaml.safe_load)"
        raise UserError(f"{path}: {line}{problem}{hint if 'tag' in problem else ''}") from None
    except (ValueError, RecursionError) as exc:  # a date like 2001-13-01, a 5,000-digit number,
        raise UserError(f"{path}: not valid YAML: {_unreadable(exc)}") from None  # deep nesting
    if not isinstance(raw, (dict, type(None))):
        raise UserError(
            f"{path}: a config must be a YAML mapping with sections such as "
            f"name, seed, data, model, train; got a {type(raw).__name__}"
        )
    return raw or {}


def parse_override(item: str) -> tuple[tuple, Any]:
    """Split "a.b=v" into (("a", "b"), v) with v parsed as YAML."""
    key, sep, text = item.partition("=")
    item = _printable(item)
    if not sep or not key.strip():
        raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set train.epochs=5")
    keys = tuple(int(k) if k.isascii() and k.isdigit() else k for k in key.strip().split("."))
    if "" in keys:
        raise UserError(
            f"--set {item}: empty key in '{_printable(key)}'; write dotted keys like train.epochs"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or _unreadable(exc)
        raise UserError(
            f"--set {item}: value '{_printable(text)}' is not valid YAML ({problem}); "
            f"quote strings, e.g. --set name=my_run"
        ) from None
    return keys, value


def _unreadable(exc: Exception) -> str:
    """Why PyYAML's constructors could not build a value, in a few words."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "digits" in str(exc):
        return "a number with too many digits"
    return f"a value cannot be read: {_printable(str(exc))}"


def _printable(text: str) -> str:
    """Text for a one-line message: as typed, or with newlines and the like escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def set_path(raw: dict, keys: tuple, value: Any, item: str) -> None:
    """Set raw[k1][k2]... = value, creating sections as needed."""
    node: Any = raw
    for depth, key in enumerate(keys):
        if isinstance(node, list) and (not isinstance(key, int) or key >= len(node)):
            raise UserError(
                f"--set {item}: {format_loc(keys[: depth + 1])}: no such list item "
                f"(the list has {len(node)})"
            )
        if not isinstance(node, (dict, list)):
            raise UserError(f"--set {item}: {format_loc(keys[:depth])} is not a section")
        if depth == len(keys) - 1:
            node[key] = value
            return
        if isinstance(node, dict) and (node.get(key) is None or isinstance(node[key], str)):
            node[key] = _default_section(keys[: depth + 1])
        node = node[key]


def _default_section(keys: tuple) -> Any:
    # A --set into a section the file left out starts from that section's defaults, so that
    # e.g. `--set model.encoder.0.filters=64` edits the default encoder rather than replacing it.
    node: Any = Config().model_dump(mode="python", exclude_none=True)
    # A left-out model.input_shape means "the data's", so it is no default to copy in.
    node["model"].pop("input_shape")
    try:
        for key in keys:
            node = node[key]
    except (KeyError, IndexError, TypeError):
        return {}
    return node if isinstance(node, (dict, list)) else {}


def format_loc(loc: tuple) -> str:
    """("model", "encoder", 0, "filters") -> "model.encoder[0].filters"."""
    out = ""
    for part in loc:
        part = part if isinstance(part, int) else _printable(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


# Pydantic error types whose message needs nothing but the value given.
_PHRASES = {
    "missing": "is required but missing",
    "int_type": "must be an integer, got {}",
    "int_parsing": "must be an integer, got {}",
    "float_type": "must be a number, got {}",
    "bool_type": "must be true or false, got {}",
    "string_type": "must be a string, got {}",
    "model_type": "must be a mapping of keys, got {}",
    "dict_type": "must be a mapping of keys, got {}",
    "string_pattern_mismatch": "must be a plain name (letters, digits, '_', '.', '-'), got {}",
}


def describe_error(error: dict, loc: tuple) -> str:
    """One pydantic error as a short phrase: what is wrong and what would be right."""
    kind, msg, value, ctx = error["type"], error["msg"], error.get("input"), error.get("ctx", {})
    if kind == "extra_forbidden":
        valid = valid_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean '{close[0]}'?"
        return f"unknown key; valid keys here: {', '.join(valid)}" if valid else "unknown key"
    if kind in _PHRASES:
        return _PHRASES[kind].format(_show(value))
    if kind == "greater_than" and ctx.get("gt") == 0 and isinstance(value, int):
        return f"must be a positive integer, got {value}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '')}, got {_show(value)}"
    if kind == "block_type":
        return f"{msg}, got type {_show(value.get('type') if isinstance(value, dict) else value)}"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return msg if isinstance(value, (dict, list)) else f"{msg}, got {_show(value)}"


def _show(value: Any, limit: int = 80) -> str:
    """A value as YAML would write it, cut to `limit` characters."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict):
        return "a mapping"
    else:  # width: YAML would wrap a long list over several lines; messages are one line
        text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
        text = text.removesuffix("...").strip()
        text = text if text.isprintable() else repr(value)  # YAML breaks lines inside strings
    return text if len(text) <= limit else text[: limit - 3] + "..."


def valid_keys(loc: tuple) -> list[str]:
    """The field names of the section found at `loc` (best effort, for suggestions)."""
    models: list[type[BaseModel]] = [Config]
    for part in loc:
        if not isinstance(part, int):
            fields = [m.model_fields[part] for m in models if part in m.model_fields]
            models = [m for field in fields for m in _models_in(field.annotation)]
    return list(dict.fromkeys(key for model in models for key in model.model_fields))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold, looking inside unions, lists and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return list(dict.fromkeys(m for arg in typing.get_args(annotation) for m in _models_in(arg)))


def dump_config(config: Config) -> str:
    """The resolved config as YAML, loadable again by load_config."""
    data = config.model_dump(mode="json")
    if "input_shape" not in config.model.model_fields_set:
        # Left out, and not yet read from the data's files: stays left out (not 28x28x1).
        del data["model"]["input_shape"]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
