"""Typed run configuration: the schema (`schema`, `blocks`), YAML and `--set` (`load`), messages.

The names other modules import are re-exported here: `from autoencoder.config import Config`.
"""

from autoencoder.config.blocks import (
    ACTIVATIONS,
    ConvBlock,
    ConvTransposeBlock,
    CropBlock,
    DecoderBlock,
    EncoderBlock,
    ModelConfig,
    OutputLayer,
    PoolBlock,
    Regularizer,
    ResidualBlock,
    UpsampleBlock,
)
from autoencoder.config.load import dump_config, load_config, parse_override, read_yaml
from autoencoder.config.messages import KERAS1_KEYS, KERAS1_TYPES, describe_error, valid_keys
from autoencoder.config.schema import (
    DATASET_CLASSES,
    DATASET_SHAPES,
    AnomalyConfig,
    Config,
    DataConfig,
    DenoiseConfig,
    EarlyStoppingConfig,
    KLConfig,
    NoiseConfig,
    ObjectiveConfig,
    OptimizerConfig,
    PatchConfig,
    ScheduleConfig,
    ThresholdConfig,
    TrainConfig,
    TuneConfig,
)
from autoencoder.config.text import format_loc
from autoencoder.config.types import Pair, Section, level_text

__all__ = [
    "ACTIVATIONS",
    "DATASET_CLASSES",
    "DATASET_SHAPES",
    "KERAS1_KEYS",
    "KERAS1_TYPES",
    "AnomalyConfig",
    "Config",
    "ConvBlock",
    "ConvTransposeBlock",
    "CropBlock",
    "DataConfig",
    "DecoderBlock",
    "DenoiseConfig",
    "EarlyStoppingConfig",
    "EncoderBlock",
    "KLConfig",
    "ModelConfig",
    "NoiseConfig",
    "ObjectiveConfig",
    "OptimizerConfig",
    "OutputLayer",
    "Pair",
    "PatchConfig",
    "PoolBlock",
    "Regularizer",
    "ResidualBlock",
    "ScheduleConfig",
    "Section",
    "ThresholdConfig",
    "TrainConfig",
    "TuneConfig",
    "UpsampleBlock",
    "describe_error",
    "dump_config",
    "format_loc",
    "level_text",
    "load_config",
    "parse_override",
    "read_yaml",
    "valid_keys",
]
