"""The typed run configuration: every section, its defaults and its checks.

Every default lives here (and in `blocks.py` for the model section); `load.py` reads YAML and
`--set` overrides into it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from autoencoder.config.blocks import ModelConfig
from autoencoder.config.text import show
from autoencoder.config.types import (
    ClassKey,
    NoiseLevel,
    NoiseRange,
    NonNegInt,
    Pair,
    PosFloat,
    PosInt,
    Section,
)
from autoencoder.errors import named

# Kinds whose level is a fraction (of the pixels, of the image), so at most 1.
FRACTION_KINDS = ("salt_pepper", "mask")


def _within_kind(value: Any, info: ValidationInfo) -> Any:
    """A level, range or list of levels, refused when above 1 for a kind whose level is a fraction."""
    kind = info.data.get("kind")  # validated first: fields go in order
    levels = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
    if kind in FRACTION_KINDS and levels and max(levels) > 1:
        shown = show(list(value) if isinstance(value, tuple) else value)
        raise ValueError(
            f"{kind} levels are fractions (at most 1), got {shown}; give levels from 0 to 1"
        )
    return value


BlindDraw = Literal["uniform", "triangular"]


class NoiseConfig(Section):
    """`data.noise`: noisy inputs, clean targets (docs/denoising.md)."""

    kind: Literal["gaussian", "salt_pepper", "speckle", "mask"] = "gaussian"
    """gaussian adds level x N(0, 1); salt_pepper sets a level fraction of pixels to 0 or 1; speckle
    multiplies by 1 + level x N(0, 1); mask zeroes 4x4 patches covering about level of the image."""
    level: NoiseLevel = 0.4
    """Strength of the noise (its meaning depends on kind; at most 1 for salt_pepper and mask); a
    range [low, high] with low < high: each image draws its own level from it (see draw), afresh
    every epoch (blind denoising)."""
    clip: StrictBool = True
    """Keep noisy pixels in [0, 1]."""
    draw: BlindDraw = "uniform"
    """How a range's levels are drawn: uniform, or triangular (density highest at low, falling to
    none at high: more of the training on the light noise, whose small errors weigh little in
    the loss). Only with a range."""

    _level_within_kind = field_validator("level")(_within_kind)

    @model_validator(mode="after")
    def _draw_needs_range(self):
        if self.draw != "uniform" and not isinstance(self.level, tuple):
            raise ValueError(
                f"draw {self.draw} needs a range of levels, got level {show(self.level)}; "
                f"give level as [low, high] or leave draw out"
            )
        return self


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
    """[h, w] of each crop: a number or [h, w]."""
    per_image: PosInt = 1
    """Crops taken from each image in every epoch."""


def augment_too_far(shift: int, size) -> str:
    """The message for a shift the mirrored edge cannot fill."""
    return (
        f"data.augment.shift {shift} is not smaller than the {size[0]}x{size[1]} images the model "
        f"sees; shift by fewer pixels (1-3 suit 28x28 digits)"
    )


class AugmentConfig(Section):
    """`data.augment`: random changes to the training images, new each epoch (targets change too)."""

    shift: NonNegInt = 0
    """Move each image by up to this many pixels in each direction (edges mirrored); 0: no shift."""
    flip: StrictBool = False
    """Mirror half of the images left to right (not for digits or text, whose mirror is another
    shape)."""


class DataConfig(Section):
    """The images: where they come from, the splits, their size and colour."""

    dataset: Literal["mnist", "fashion_mnist", "mnist_sample", "cifar10", "photos", "folder"] = (
        "mnist_sample"
    )
    """Where the images come from: a built-in dataset, or folder (your own images in data.path)."""
    path: StrictStr | None = None
    """The dataset's files (IDX, .npz, the CIFAR-10 archive); for folder, the folder of images.
    A relative path is read from the folder the command runs in."""
    validation_split: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.1
    """Fraction of the training pool held out for validation."""
    # Cut from the images with a fixed seed when the data has no test set of its own (a folder
    # without test/, the photos); the same images whatever config.seed is.
    test_split: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.1
    """Fraction held out as the test set when the data has none of its own (fixed seed)."""
    limit: PosInt | None = None
    """Caps the training pool (before the validation split); left out: all images."""
    classes: list[ClassKey] | None = None
    """Keep only these classes: numbers (0, 1, ...) or names (folder names); left out: all."""
    image_size: Pair | None = None
    """[H, W] every image is brought to, by fit; left out: the images' own size."""
    fit: Literal["resize", "crop", "pad"] = "resize"
    """How an image reaches image_size: resize stretches, crop takes the centred window of the right
    aspect, pad adds black borders."""
    color: Literal["grayscale", "rgb"] | None = None
    """grayscale (1 channel) or rgb (3); left out: the data's own."""
    patches: PatchConfig | None = None
    """Train on random crops of the images; left out: whole images."""
    cache: Literal["auto", "memory", "none"] = "auto"
    """A folder's decoded images kept in memory (memory), streamed from the files (none), or memory
    when they fit (auto); built-in datasets are always in memory."""
    skip_bad: StrictBool = False
    """Skip a folder's unreadable image files with one warning instead of refusing them."""
    noise: NoiseConfig | None = None
    """Train on noisy inputs with clean targets; left out: no noise."""
    augment: AugmentConfig | None = None
    """Shift or mirror the training images (validation and test never); left out: as they are."""

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
        if self.fit != "resize" and self.image_size is None:
            raise ValueError(
                f"data.fit {self.fit} brings images to data.image_size, which is left out, so "
                f"the images keep their own size; set data.image_size: [H, W] or leave fit out"
            )
        if self.patches is not None and self.image_size is not None:
            if any(p > s for p, s in zip(self.patches.size, self.image_size)):
                raise ValueError(
                    f"data.patches.size {list(self.patches.size)} is larger than "
                    f"data.image_size {list(self.image_size)}; patches are cut from the images"
                )
        shape = self.input_shape()
        if self.augment is not None and shape is not None and self.augment.shift >= min(shape[:2]):
            raise ValueError(augment_too_far(self.augment.shift, shape[:2]))
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
    """The optimizer and its settings."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    """adam, adamw (Adam with decoupled weight decay) or sgd (with momentum)."""
    learning_rate: PosFloat = 1e-3
    """Learning rate (the starting one, with a schedule)."""
    momentum: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.9
    """Momentum of sgd (ignored by the others)."""
    weight_decay: Annotated[StrictFloat, Field(ge=0)] = 1e-4
    """Weight decay of adamw (ignored by the others)."""
    clipnorm: PosFloat | None = None
    """Clip each gradient to this norm; left out: no clipping."""


class ScheduleConfig(Section):
    """How the learning rate changes during training."""

    kind: Literal["constant", "cosine", "plateau"] = "constant"
    """constant; cosine: decay to min_lr over all epochs; plateau: multiply by factor when val/loss
    stalls."""
    min_lr: Annotated[StrictFloat, Field(ge=0)] = 0.0
    """Lowest learning rate of cosine and plateau."""
    factor: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.5
    """plateau: multiplies the learning rate when the validation loss stops improving."""
    patience: PosInt = 2
    """plateau: epochs without improvement before the learning rate drops."""


class EarlyStoppingConfig(Section):
    """Stop when the validation loss stops improving."""

    patience: PosInt | None = None
    """Stop after this many epochs without a better validation loss; left out: off."""
    restore_best: StrictBool = True
    """Keep the weights of the best epoch when stopping early."""


class KLConfig(Section):
    """A VAE's KL term: its weight, reached by a linear warm-up over the first epochs."""

    weight: Annotated[StrictFloat, Field(ge=0)] = 1.0
    """Weight of the KL term in the loss."""
    warmup_epochs: NonNegInt = 0
    """Epochs over which the weight rises linearly from 0; 0: the full weight from the start."""


class TrainConfig(Section):
    """Training: epochs, batch, loss, optimizer, schedule, precision, distribution."""

    epochs: PosInt = 10
    """Passes over the training images."""
    batch_size: PosInt = 128
    """Images per training step (the global batch, split across replicas)."""
    loss: Literal["bce", "mse", "mae", "l1", "charbonnier", "ssim_l1"] = "bce"
    """Reconstruction loss: bce (binary cross-entropy), mse, mae (l1 is the same), charbonnier
    (a smooth L1) or ssim_l1 (0.84 x (1 - SSIM) + 0.16 x L1)."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """The optimizer and its settings."""
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    """How the learning rate changes during training."""
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    """Stop when the validation loss stops improving."""
    tensorboard: StrictBool = True
    """Write TensorBoard logs (scalars and images) under the run's logs/."""
    mixed_precision: Annotated[
        Literal["auto", "on", "off"],
        WithJsonSchema({"enum": ["auto", "on", "off", True, False]}),  # YAML 1.1: see _yaml_switch
    ] = "auto"
    """auto: float16 on GPUs with tensor cores; on a CPU with native bfloat16, the faster of
    float32 and bfloat16, timed on the run's model when training starts (cached per CPU and
    model); else float32. on: mixed precision; off: float32."""
    # tf.distribute: "auto" mirrors across the local GPUs when there are several; batch_size is
    # the global batch, split across replicas (the learning rate is not rescaled).
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    """tf.distribute strategy: auto mirrors across several local GPUs; none, mirrored or
    multi_worker (TF_CONFIG)."""
    worker_timeout: PosInt = 60
    """Seconds a worker waits for the cluster to start, or for a lost peer, before giving up."""
    memory_check: StrictBool = True
    """Refuse a run whose memory plan exceeds the machine's memory."""
    kl: KLConfig | None = None
    """The VAE's KL term (model.kind vae only); left out: weight 1, no warm-up."""
    minutes: PosFloat | None = None
    """Stop after this many minutes of training (epochs' seconds, validation included), or at
    train.epochs if sooner; cosine then decays over the minutes. Left out: epochs alone."""

    @field_validator("minutes", mode="before")
    @classmethod
    def _whole_minutes(cls, value: Any) -> Any:
        # YAML reads `minutes: 20` as an int; a float field that is strict would refuse it.
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _minutes_on_one_clock(self):
        # Each worker of a cluster would read its own clock and stop at its own step, leaving
        # the others waiting in an all-reduce.
        if self.minutes is not None and self.distribute == "multi_worker":
            raise ValueError(
                f"minutes {self.minutes:g} cannot stop a multi_worker run (each worker's clock "
                f"would stop it at a different step); leave minutes out and set train.epochs"
            )
        return self

    @model_validator(mode="after")
    def _min_lr_below_the_rate(self):
        # Cosine would climb from the rate up to min_lr, and plateau never lowers the rate.
        sched, rate = self.schedule, self.optimizer.learning_rate
        if sched.kind != "constant" and sched.min_lr > rate:
            effect = {"cosine": "cosine would raise the rate to it"}.get(
                sched.kind, "plateau would never lower the rate"
            )
            raise ValueError(
                f"schedule.min_lr {sched.min_lr:g} is above optimizer.learning_rate {rate:g}, "
                f"so {effect}; give min_lr below the learning rate (e.g. 0.00001)"
            )
        return self

    @property
    def kl_term(self) -> KLConfig:
        """The KL settings in force (a VAE without train.kl: weight 1, no warm-up)."""
        return self.kl or KLConfig()

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_switch(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare on / off as true / false: take them as the words they were.
        if isinstance(value, bool):
            return {True: "on", False: "off"}[value]
        # The log names the policy a run trained in; the setting is not that name.
        policies = {"mixed_bfloat16", "bfloat16", "mixed_float16", "float16", "float32"}
        if isinstance(value, str) and value.lower() in policies:
            raise ValueError(
                f"'{value}' is a precision policy, not a setting: on (mixed precision: bfloat16 "
                f"on a CPU, float16 on a GPU), off (float32) or auto"
            )
        return value


NoiseLevels = Annotated[list[Annotated[StrictFloat, Field(ge=0)]], Field(min_length=1)]


class DenoiseConfig(Section):
    """`autoencoder denoise`: one model per training level, each evaluated at every eval level."""

    kind: Literal["gaussian", "salt_pepper", "speckle", "mask"] = "gaussian"
    """Noise kind of the sweep (as data.noise.kind)."""
    clip: StrictBool = True
    """Keep noisy pixels in [0, 1]."""
    train_levels: NoiseLevels = [0.2, 0.4, 0.6]
    """One model is trained at each of these noise levels."""
    eval_levels: NoiseLevels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    """Each model is scored at each of these noise levels."""
    eval_seed: NonNegInt = 1234
    """Seed of the fixed evaluation noise, so numbers compare across models and runs."""
    eval_images: PosInt | None = None
    """Caps the test images evaluated; left out: all."""
    blind: NoiseRange | None = None
    """A range [low, high] with low < high: also train one blind model (data.noise.level is the
    range) and score it at every eval level beside the per-level models; left out: none."""
    blind_draw: BlindDraw = "uniform"
    """How the blind model draws its levels from the range (as data.noise.draw)."""
    blind_epochs: PosInt | None = None
    """Epochs of the blind model; left out: train.epochs. One blind model stands in for all the
    per-level ones, so giving it their epochs together compares the two at equal training."""

    @field_validator("train_levels", "eval_levels")
    @classmethod
    def _distinct(cls, value):
        if len(set(value)) != len(value):
            raise ValueError(f"lists a level twice: {value}")
        return sorted(value)

    _levels_within_kind = field_validator("train_levels", "eval_levels", "blind")(_within_kind)

    @model_validator(mode="after")
    def _blind_settings_need_blind(self):
        if self.blind_draw != "uniform" and self.blind is None:
            raise ValueError(
                f"blind_draw {self.blind_draw} needs a blind model: set denoise.blind to a range "
                f"[low, high] or leave blind_draw out"
            )
        if self.blind_epochs is not None and self.blind is None:
            raise ValueError(
                f"blind_epochs {self.blind_epochs} needs a blind model: set denoise.blind to a "
                f"range [low, high] or leave blind_epochs out"
            )
        return self


class ThresholdConfig(Section):
    """How `autoencoder anomaly` draws the line: at most one of these; none means quantile 0.95.

    quantile and fpr are chosen on the normal validation images (fpr f is quantile 1 - f); value
    is a threshold of your own, used as given.
    """

    quantile: Annotated[StrictFloat, Field(gt=0, lt=1)] | None = None
    """Threshold at this quantile of the normal validation images' scores."""
    fpr: Annotated[StrictFloat, Field(gt=0, lt=1)] | None = None
    """Threshold at this false-positive rate on the normal validation images (quantile 1 - fpr)."""
    value: (
        Annotated[
            StrictInt | StrictFloat,
            Field(ge=0),
            WithJsonSchema({"type": "number", "minimum": 0}),  # pydantic's has no bound here
        ]
        | None
    ) = None
    """A threshold of your own, used as given: on anomaly.score's scale, so not with score auto."""

    @model_validator(mode="after")
    def _one_rule(self):
        given = [k for k in ("quantile", "fpr", "value") if getattr(self, k) is not None]
        if len(given) > 1:
            last = given[-1]
            example = f"anomaly.threshold={{{last}: {getattr(self, last)}}}"
            raise ValueError(
                f"sets {' and '.join(given)}; choose one way to set the threshold (quantile, fpr "
                f"or value): the whole mapping replaces a preset's, e.g. "
                f"{named(f'--set {example}', example)}"
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

    normal: list[ClassKey] | None = None
    """The normal classes (numbers or names); every other class is an anomaly."""
    score: Literal["mse", "mae", "ssim", "knn", "auto"] = "mse"
    """Per-image score: mse, mae, ssim (1 - SSIM), knn (the code's distance to normal codes), or
    auto (chosen on validation images)."""
    neighbors: PosInt = 5
    """knn: how many of the nearest normal training codes an image's distance averages over."""
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    """How the threshold is chosen: at most one of quantile, fpr, value; none: quantile 0.95."""
    examples: PosInt = 8
    """Highest- and lowest-scoring test images shown in the figure."""

    @field_validator("normal")
    @classmethod
    def _normal(cls, value):
        if value is not None:
            if not value:
                raise ValueError("must list at least one class")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a class twice: {value}")
        return value

    @model_validator(mode="after")
    def _fixed_threshold_needs_its_score(self):
        # A fixed threshold is a number on one score's scale (an MSE-sized number means nothing
        # on 1 - SSIM), and auto picks the score only after training.
        if self.score == "auto" and self.threshold.value is not None:
            raise ValueError(
                f"anomaly.score auto with anomaly.threshold.value {self.threshold.value:g}: a "
                f"fixed threshold is on one score's scale, and auto chooses the score after "
                f"training; set anomaly.score to mse, mae, ssim or knn, or use "
                f"anomaly.threshold.quantile or fpr"
            )
        return self


# A search space's distribution, as the JSON Schema shows it to editors; autoencoder/tune checks
# it with its own one-line messages (bounds in order, a log range above 0, known keys).
_RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_DISTRIBUTION = {
    "anyOf": [
        {"type": "array", "items": {"type": ["number", "string", "boolean", "null"]}},
        *(
            {
                "type": "object",
                "properties": {k: _RANGE},
                "required": [k],
                "additionalProperties": False,
            }
            for k in ("log", "uniform", "int")
        ),
    ]
}

Distribution = Annotated[Any, WithJsonSchema(_DISTRIBUTION)]


# Patterns of the strings the config checks by form; config.messages words each one's refusal.
METRIC_PATTERN = r"^(train|val)/(loss|mse|psnr|sse)$"
TIMEOUT_PATTERN = r"^\d+(\.\d+)?[smh]$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class ObjectiveConfig(Section):
    """`tune.objective`: the number each trial is scored by, read from its history.csv."""

    metric: Annotated[StrictStr, Field(pattern=METRIC_PATTERN)] = "val/loss"
    """train/ or val/ loss, mse, psnr (10 log10(1/mse)) or sse (mse x the pixels of an input)."""
    direction: Literal["minimize", "maximize"] | None = None
    """minimize (losses, errors) or maximize (psnr); left out: the metric's own."""
    epoch: Literal["best", "last"] = "best"
    """The trial's best epoch by the metric, or its last one."""

    @model_validator(mode="after")
    def _metric_direction(self):
        # PSNR is better larger, the others smaller: the other way round a study would report
        # its worst trial as its best.
        own = self.goal()
        if self.direction is not None and self.direction != own:
            raise ValueError(
                f"direction {self.direction} with metric {self.metric}, which is better "
                f"{'larger' if own == 'maximize' else 'smaller'}: leave direction out, or set "
                f"it to {own}"
            )
        return self

    def goal(self) -> str:
        """The direction the study takes: minimize, or maximize for psnr."""
        return "maximize" if self.metric.endswith("/psnr") else "minimize"


class MedianPrunerConfig(Section):
    """`tune.pruner.median`: when Optuna's MedianPruner may start pruning."""

    startup_trials: NonNegInt = 5
    """Completed trials before any trial is pruned (Optuna's n_startup_trials)."""
    warmup_epochs: NonNegInt = 0
    """Epochs each trial trains before it may be pruned."""


class PrunerConfig(Section):
    """`tune.pruner` as a mapping: the median pruner with its settings."""

    median: MedianPrunerConfig = Field(default_factory=MedianPrunerConfig)
    """The median pruner's startup trials and warm-up epochs."""


def _pruner_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "name"
    return "settings" if isinstance(value, (dict, PrunerConfig)) else None


# A name, or {median: {...}} for the median pruner's settings: one message for any other form.
Pruner = Annotated[
    Annotated[Literal["median", "hyperband", "none"], Tag("name")]
    | Annotated[PrunerConfig, Tag("settings")],
    Discriminator(
        _pruner_form,
        custom_error_type="pruner",
        custom_error_message=(
            "must be median, hyperband or none, or {median: {startup_trials: N, warmup_epochs: N}}"
        ),
    ),
]


class TuneConfig(Section):
    """`autoencoder tune`: a search over config keys with Optuna (docs/experiments.md)."""

    space: dict[StrictStr, Distribution] = {}
    """Dotted config keys and their distributions: {log: [a, b]}, {uniform: [a, b]}, {int: [a,
    b]}, or a list of choices."""
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    """What a trial is scored by and which way is better."""
    epochs_per_trial: PosInt | None = None
    """train.epochs of each trial; left out: the config's."""
    trials: PosInt = 20
    """Trials of the whole study (finished ones of every state count), across workers."""
    timeout: Annotated[StrictStr, Field(pattern=TIMEOUT_PATTERN)] | None = None
    """Stop starting trials after this long, e.g. 90s, 60m or 2h; left out: no limit."""
    pruner: Pruner = "median"
    """Stop unpromising trials early: Optuna's MedianPruner, HyperbandPruner, or none; {median:
    {startup_trials: N, warmup_epochs: N}} sets when the median pruner starts."""
    storage: StrictStr | None = None
    """Database URL of the study (any Optuna accepts); left out: sqlite:///STUDY_DIR/study.db."""


class Config(Section):
    """A run's whole configuration: what a YAML file in configs/ holds."""

    name: Annotated[StrictStr, Field(pattern=NAME_PATTERN)] = "run"
    """Name of the run: its directory is <output>/<name>/<timestamp>/."""
    seed: NonNegInt = 0
    """Seed of weights, shuffling and training noise."""
    data: DataConfig = Field(default_factory=DataConfig)
    """The images: source, splits, size, colour, patches, noise."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The network."""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """Training: epochs, batch, loss, optimizer, schedule, precision."""
    denoise: DenoiseConfig = Field(default_factory=DenoiseConfig)
    """The `autoencoder denoise` sweep."""
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    """`autoencoder anomaly`: normal classes, score, threshold."""
    tune: TuneConfig = Field(default_factory=TuneConfig)
    """`autoencoder tune`: the search space, objective, trials and storage."""
    output: StrictStr = "outputs"
    """Folder under which run directories are made."""

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

    @field_validator("train")
    @classmethod
    def _bce_needs_a_sigmoid(cls, value: TrainConfig, info: ValidationInfo) -> TrainConfig:
        model = info.data.get("model")
        bounded = ("sigmoid", "hard_sigmoid")
        if value.loss == "bce" and model is not None and model.output.activation not in bounded:
            raise ValueError(
                f"loss bce needs outputs in (0, 1), but model.output.activation is "
                f"{model.output.activation}; use a sigmoid output or another loss (mse, l1, "
                f"charbonnier, ssim_l1)"
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
