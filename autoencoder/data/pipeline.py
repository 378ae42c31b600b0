"""The tf.data pipeline: one split's images as batches of (input, target) pairs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autoencoder.runtime import tensorflow


def make_dataset(
    x: np.ndarray,
    y_target: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    noise_fn: Callable | None = None,
):
    """Batches of float32 (input, target); the target is the clean image unless y_target is given.

    Args:
      x: the images, uint8 pixels (Splits.pixels(split)) or float32 in [0, 1].
      y_target: one target per image, uint8 or float32 like x; None means x itself.
      batch_size: images per batch (the last batch may be smaller).
      shuffle: draw a new seeded order for each iterator (each epoch), as Dataset.shuffle does.
      seed: the shuffle's seed, also passed to noise_fn.
      noise_fn: noise_fn(batch, seed) -> noisy batch, applied to the inputs only (denoising).
    """
    tf = tensorflow()
    # The images stay in memory as one tensor and each batch is gathered by index: shuffling
    # the indices and gathering a batch is faster than from_tensor_slices -> shuffle -> batch,
    # which moves every image through the shuffle buffer one at a time.
    # Variables, not constants: a constant would be copied into the map function's graph.
    images = tf.Variable(x, trainable=False)
    targets = images if y_target is None else tf.Variable(y_target, trainable=False)

    def fetch(store, idx):
        # uint8 stays bytes in the pipeline (a quarter of float32) and is scaled per batch.
        batch = tf.gather(store, idx)
        return tf.cast(batch, tf.float32) / 255.0 if store.dtype == tf.uint8 else batch

    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: (fetch(images, idx), fetch(targets, idx)))
    if noise_fn is not None:
        # After batching, where vectorised noise is cheapest.
        ds = ds.map(
            lambda inputs, target: (noise_fn(inputs, seed), target),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
