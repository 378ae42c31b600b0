"""Datasets: find and check the raw images, split them, and batch them for tf.data."""

from autoencoder.data.formats import IDX_FILES, NPZ_KEYS, Raw, load_idx, load_npz, read_idx
from autoencoder.data.pipeline import make_dataset
from autoencoder.data.sources import keras_cache, load_sample
from autoencoder.data.splits import (
    Splits,
    class_table,
    describe,
    load_splits,
    scaled,
    split_indices,
    to_float,
)

__all__ = [
    "IDX_FILES",
    "NPZ_KEYS",
    "Raw",
    "Splits",
    "class_table",
    "describe",
    "keras_cache",
    "load_idx",
    "load_npz",
    "load_sample",
    "load_splits",
    "make_dataset",
    "read_idx",
    "scaled",
    "split_indices",
    "to_float",
]
