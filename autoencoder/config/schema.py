"""The typed run configuration: every section, its defaults and its checks.

Every default lives here (and in `blocks.py` for the model section); `load.py` reads YAML and
`--set` overrides into it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from autoencoder.config.blocks import ModelConfig
from autoencoder.config.types import ClassKey, NonNegInt, Pair, PosFloat, PosInt, Section


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
