"""Datasets: find and check the raw images, split them, and batch them for tf.data."""

from autoencoder.data.folder import ImageFiles
from autoencoder.data.formats import DIGITS, IDX_FILES, NPZ_KEYS, Raw, load_idx, load_npz, read_idx
from autoencoder.data.patches import from_tiles, to_tiles
from autoencoder.data.pipeline import make_dataset, predict_batches
from autoencoder.data.sources import keras_cache, load_sample
from autoencoder.data.splits import (
    Splits,
    chunk_size,
    class_table,
    data_shape,
    describe,
    load_splits,
    resolve_input_shape,
    scaled,
    split_indices,
    subset_splits,
    to_float,
)

__all__ = [
    "DIGITS",
    "IDX_FILES",
    "NPZ_KEYS",
    "ImageFiles",
    "Raw",
    "Splits",
    "chunk_size",
    "class_table",
    "describe",
    "from_tiles",
    "keras_cache",
    "load_idx",
    "load_npz",
    "load_sample",
    "load_splits",
    "make_dataset",
    "predict_batches",
    "read_idx",
    "data_shape",
    "resolve_input_shape",
    "scaled",
    "split_indices",
    "subset_splits",
    "to_float",
    "to_tiles",
]
