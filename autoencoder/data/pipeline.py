"""The tf.data pipeline: one split's images (or patches of them) as batches of (input, target)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autoencoder.runtime import tensorflow

# The keys of the random crops' and augmentations' Philox streams; the training noise uses the
# run's seed itself.
CROP_KEY, AUGMENT_KEY = 1 << 32, 2 << 32
# A streamed split: threads reading files, decoding calls at a time; every split: batches made
# ahead, noise calls at a time (vectorised over the batch: one call keeps ahead of a step).
READERS, DECODERS, PREFETCH, NOISE_CALLS = 4, 1, 4, 2


def make_dataset(
    x,
    y_target: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    noise_fn: Callable | None = None,
    patches=None,
    first_epoch: int = 0,
    image_noise_fn: Callable | None = None,
    augment=None,
):
    """Batches of float32 (input, target); the target is the clean image unless y_target is given.

    Args:
      x: the images: uint8 pixels (Splits.pixels(split): an array, or ImageFiles decoded here,
        in parallel, as the batches are drawn) or float32 in [0, 1].
      y_target: one target per image, uint8 or float32 like x; None means x itself.
      batch_size: images (or patches) per batch (the last batch may be smaller).
      shuffle: draw a new seeded order for each iterator (each epoch), as Dataset.shuffle does.
      seed: the shuffle's seed, also passed to noise_fn and keying the crops.
      noise_fn: noise_fn(batch, seed) -> noisy batch, applied to the inputs only (denoising).
      patches: data.patches: every image gives per_image crops of size (h, w); random crops,
        new each epoch, when shuffling, else the same crops every time (validation).
      first_epoch: the epoch a resumed run starts at: random crops go on from there.
      image_noise_fn: image_noise_fn(batch, keys) -> noisy batch, the same noise for the same key
        (the index of the image, or of the patch) every time: validation noise.
      augment: data.augment: random shifts and mirrors of the images (or patches), new each
        epoch, before the noise; only when shuffling (training). Inputs and targets move alike.
    """
    tf = tensorflow()
    n, per = len(x), (patches.per_image if patches is not None else 1)
    streamed = not isinstance(x, np.ndarray)
    if streamed and y_target is not None:
        raise ValueError("a streamed split is its own target; y_target must be None")
    if augment is not None and y_target is not None:
        raise ValueError("augmenting moves the input; a separate y_target would not follow it")

    ds = tf.data.Dataset.range(n * per)
    if shuffle:
        ds = ds.shuffle(n * per, seed=seed, reshuffle_each_iteration=True)
    if streamed:
        # Files are read by TensorFlow's threads, outside the GIL; only decoding is Python's.
        paths = tf.Variable(x.paths, trainable=False, dtype=tf.string)
        ds = ds.map(
            lambda idx: (idx, tf.io.read_file(paths[idx // per])), num_parallel_calls=READERS
        )
    ds = ds.batch(batch_size)
    crop = _cropper(tf, x.shape[1:3], patches, shuffle, seed, first_epoch, n * per)
    augmented = _augmenter(tf, augment if shuffle else None, seed, first_epoch)

    def scale(batch):
        # uint8 stays bytes in the pipeline (a quarter of float32) and is scaled per batch.
        return tf.cast(batch, tf.float32) / 255.0 if batch.dtype == tf.uint8 else batch

    def with_noise(idx, inputs):
        return inputs if image_noise_fn is None else image_noise_fn(inputs, idx)

    if streamed:
        shape = tuple(x.shape[1:])

        def fetch(idx, blobs):
            images = tf.numpy_function(x.decode, [idx // per, blobs], tf.uint8, stateful=False)
            images = tf.ensure_shape(images, (None, *shape))
            if crop is not None:
                images = crop(images, tf.range(tf.shape(idx, out_type=tf.int64)[0]), idx)
            images = augmented(scale(images))
            return with_noise(idx, images), images

        # One decoding call at a time: Pillow's work on small files is mostly Python holding the
        # GIL, and a second decoding thread only makes the training loop wait for it. Kept in
        # order: the batches are those of the in-memory path.
        ds = ds.map(fetch, num_parallel_calls=DECODERS)
    else:
        # The images stay in memory as one tensor and each batch is gathered by index: shuffling
        # the indices and gathering a batch is faster than from_tensor_slices -> shuffle -> batch,
        # which moves every image through the shuffle buffer one at a time.
        # Variables, not constants: a constant would be copied into the map function's graph.
        images = tf.Variable(x, trainable=False)
        targets = None if y_target is None else tf.Variable(y_target, trainable=False)

        def gather(store, idx):
            if crop is None:
                return scale(tf.gather(store, idx))
            return scale(crop(store, idx // per, idx))

        def fetch(idx):
            clean = augmented(gather(images, idx))
            target = clean if targets is None else gather(targets, idx)
            return with_noise(idx, clean), target

        ds = ds.map(fetch)
    if noise_fn is not None:
        # After batching, where vectorised noise is cheapest.
        ds = ds.map(
            lambda inputs, target: (noise_fn(inputs, seed), target),
            num_parallel_calls=NOISE_CALLS,
        )
    return _untuned(tf, ds.prefetch(PREFETCH))


def predict_batches(x: np.ndarray, batch_size: int):
    """x in batches, in order, for Keras's predict: as make_dataset's, without autotuning."""
    # Keras's own pipeline for an array autotunes, and its iterator's end can stall as below.
    tf = tensorflow()
    return _untuned(tf, tf.data.Dataset.from_tensor_slices(x).batch(batch_size))


def _untuned(tf, ds):
    """The dataset with tf.data's autotuning off."""
    # With it on, the start of every few epochs stalled for 10-60 s on 2 cores: the main thread
    # waited in the previous epoch's iterator's destructor for one of the iterator's background
    # threads, with the CPU idle (docs/performance.md). The fixed parallelism keeps up.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _cropper(tf, image_size, patches, random: bool, seed: int, first_epoch: int, count: int):
    """crop(store, image_indices, patch_indices) -> uint8 patches, or None without patches."""
    if patches is None:
        return None
    (h, w), (ph, pw) = image_size, patches.size
    room = np.array([h - ph + 1, w - pw + 1])
    if random:
        # A generator's state lives in a variable, so each epoch draws new crops; a resumed run
        # starts its counter's high word at its first epoch, as the training noise does.
        generator = tf.random.Generator.from_key_counter(
            key=seed + CROP_KEY, counter=[0, first_epoch], alg="philox"
        )

        def offsets(keys):
            u = generator.uniform((tf.shape(keys)[0], 2))
            return tf.cast(tf.floor(u * room.astype(np.float32)), tf.int64)
    else:
        table = tf.constant(np.random.default_rng([seed, 1]).integers(0, room, size=(count, 2)))

        def offsets(keys):
            return tf.gather(table, keys)

    rows, cols = tf.range(ph, dtype=tf.int64), tf.range(pw, dtype=tf.int64)

    def crop(store, image_idx, keys):
        # Gathers exactly the patches' pixels: never a whole (possibly large) image per patch.
        at = offsets(keys)
        b = tf.shape(keys)[0]
        index = tf.stack(
            [
                tf.broadcast_to(tf.cast(image_idx, tf.int64)[:, None, None], (b, ph, pw)),
                tf.broadcast_to((at[:, 0:1] + rows[None])[:, :, None], (b, ph, pw)),
                tf.broadcast_to((at[:, 1:2] + cols[None])[:, None, :], (b, ph, pw)),
            ],
            axis=-1,
        )
        return tf.gather_nd(store, index)

    return crop


def _augmenter(tf, augment, seed: int, first_epoch: int):
    """augment(batch) -> the batch shifted and mirrored at random (itself when nothing is asked)."""
    if augment is None or (augment.shift == 0 and not augment.flip):
        return lambda batch: batch
    # As the crops: the state lives in a variable, so every epoch draws anew, and a resumed run
    # starts the counter's high word at its first epoch.
    generator = tf.random.Generator.from_key_counter(
        key=seed + AUGMENT_KEY, counter=[0, first_epoch], alg="philox"
    )
    s = augment.shift

    def change(batch):
        b, h, w = tf.shape(batch)[0], tf.shape(batch)[1], tf.shape(batch)[2]
        if s:
            # Mirrored edges: a black border stays black (digits), a photo's edge continues;
            # zeros would paint a frame that the model then learns to draw.
            padded = tf.pad(batch, [[0, 0], [s, s], [s, s], [0, 0]], mode="REFLECT")
            at = generator.uniform((b, 2), minval=0, maxval=2 * s + 1, dtype=tf.int32)
            rows = at[:, :1] + tf.range(h)[None]
            cols = at[:, 1:] + tf.range(w)[None]
            batch = tf.gather(padded, rows, axis=1, batch_dims=1)
            batch = tf.gather(batch, cols, axis=2, batch_dims=1)
        if augment.flip:
            mirror = generator.uniform((b, 1, 1, 1)) < 0.5
            batch = tf.where(mirror, tf.reverse(batch, axis=[2]), batch)
        return batch

    return change
