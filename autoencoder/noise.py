"""Noise models for denoising: gaussian, salt_pepper, speckle and mask, on batches of images.

Every kind is a stateless TensorFlow function of (batch, seed), so the same seed gives the same
noise; each channel of a colour image gets its own draws (mask drops a pixel in all channels).
A level given as a range (low, high) is blind noise: each image first draws its own level from
the range, from the same seed (uniformly, or triangular: densest at low, none at high), then its
noise at that level.
Training draws a fresh seed per batch from a tf.random.Generator seeded by the run's seed: its
state lives in a variable, so it keeps advancing across epochs (a plain stateful op in a tf.data
map would restart with every new iterator and repeat one epoch's noise forever). Evaluation and
validation noise (`noisy_eval`, `fixed_noise`) is keyed by a fixed seed and the image's index in
its split, so it is the same however the images are batched, chunked, cached or streamed, and
figures compare across models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from autoencoder.data import chunk_size, make_dataset
from autoencoder.runtime import tensorflow


def apply_noise(x, kind: str, level, clip: bool, seed, draw: str = "uniform"):
    """Corrupt a float batch (B, H, W, C) in [0, 1] with one noise kind; seed is an int (2,) tensor."""
    # level: a number, or a range (low, high) from which each image draws its own (draw).
    tf = tensorflow()
    x = tf.convert_to_tensor(x, tf.float32)
    seed = tf.cast(seed, tf.int64)
    if isinstance(level, (tuple, list)):
        # The fixed-level streams stay as they were: only a range splits the seed.
        level_seed, seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        low, high = float(level[0]), float(level[1])
        drawn = tf.random.stateless_uniform(tf.shape(x)[:1], level_seed, minval=low, maxval=high)
        if draw == "triangular":
            # Inverse CDF of the density 2 (high - l) / (high - low)^2: most images near low,
            # none at high. With an MSE-like loss the heavily noised images' larger errors
            # dominate the gradient; this gives the light end the share of training it lacks.
            u = (drawn - low) / (high - low)
            drawn = low + (high - low) * (1.0 - tf.sqrt(1.0 - u))
        level = tf.reshape(drawn, (-1, 1, 1, 1))  # broadcast over H, W, C
    else:
        level = float(level)
    noisy = _KINDS[kind](tf, x, level, seed)
    return tf.clip_by_value(noisy, 0.0, 1.0) if clip else noisy


def _level_key(level) -> float | tuple[float, float]:
    """A level as a hashable key: a float, or a (low, high) tuple of floats."""
    return tuple(map(float, level)) if isinstance(level, (tuple, list)) else float(level)


def _gaussian(tf, x, level, seed):
    return x + level * tf.random.stateless_normal(tf.shape(x), seed)


def _speckle(tf, x, level, seed):
    return x * (1.0 + level * tf.random.stateless_normal(tf.shape(x), seed))


def _salt_pepper(tf, x, level, seed):
    which, value = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    hit = tf.random.stateless_uniform(tf.shape(x), which) < level
    salt = tf.cast(tf.random.stateless_uniform(tf.shape(x), value) < 0.5, x.dtype)
    return tf.where(hit, salt, x)


def patch_size(height: int) -> int:
    """Side of the mask's square patches: 4 pixels on 28x28 MNIST."""
    return max(1, height // 7)


def _mask(tf, x, level, seed):
    # Each p x p cell of a grid shifted by a random offset per image is dropped with probability
    # `level`, so the expected covered fraction is exactly `level` and the patches are squares
    # (neighbouring dropped cells merge into larger blocks). Vectorised: no per-image loops.
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    p = patch_size(x.shape[1] or 28)
    cells_seed, offset_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    grid = tf.maximum(h, w) // p + 2
    level = tf.reshape(level, (-1, 1, 1))  # one level for all, or each image's (blind noise)
    keep = tf.random.stateless_uniform((b, grid, grid), cells_seed) >= level  # (B, G, G)
    offset = tf.random.stateless_uniform((b, 2), offset_seed, maxval=p, dtype=tf.int32)
    rows = (tf.range(h)[None, :] + offset[:, :1]) // p  # (B, H): grid row of each pixel row
    cols = (tf.range(w)[None, :] + offset[:, 1:]) // p  # (B, W)
    keep = tf.gather(keep, rows, axis=1, batch_dims=1)  # (B, H, G)
    keep = tf.gather(keep, cols, axis=2, batch_dims=1)  # (B, H, W)
    return x * tf.cast(keep, x.dtype)[..., None]


_KINDS = {"gaussian": _gaussian, "salt_pepper": _salt_pepper, "speckle": _speckle, "mask": _mask}


def _keyed_noise(batch, keys, seed, kind: str, level, clip: bool, draw: str):
    """The batch with image i's noise drawn from the stateless seed (seed, keys[i])."""
    tf = tensorflow()
    keys = tf.cast(keys, tf.int64)
    seeds = tf.stack([tf.fill(tf.shape(keys), tf.cast(seed, tf.int64)), keys], axis=1)
    return tf.map_fn(
        lambda pair: apply_noise(pair[0][None], kind, level, clip, pair[1], draw)[0],
        (tf.cast(batch, tf.float32), seeds),
        fn_output_signature=tf.float32,
    )


def fixed_noise(noise_cfg, seed: int) -> Callable:
    """fn(batch, keys) -> noisy batch: image i gets the noise of seed (seed, keys[i]), always."""
    return lambda batch, keys: _keyed_noise(
        batch, keys, seed, noise_cfg.kind, noise_cfg.level, noise_cfg.clip, noise_cfg.draw
    )


@functools.cache
def _traced_noise(kind: str, level: float | tuple[float, float], clip: bool, draw: str) -> Callable:
    """_keyed_noise traced once per noise kind, the seed an argument."""
    # A tf.function wrapped anew on every call would retrace each time, and TensorFlow warns
    # about that once an evaluation has asked for a few noisy splits.
    tf = tensorflow()
    return tf.function(
        lambda batch, keys, seed: _keyed_noise(batch, keys, seed, kind, level, clip, draw),
        reduce_retracing=True,
    )


def noisy_eval(x: np.ndarray, noise_cfg, seed: int, first: int = 0) -> np.ndarray:
    """The images with evaluation noise; x[i] is image first + i of its split (its noise key)."""
    # Blind noise (a range of levels) gives image i its own level from the range, keyed like its
    # noise: the same level every time, spread over the range across the images, so a blind
    # run's test PSNR is its average over the range.
    noise_fn = _traced_noise(
        noise_cfg.kind, _level_key(noise_cfg.level), bool(noise_cfg.clip), noise_cfg.draw
    )
    out = np.empty(x.shape, np.float32)
    step = chunk_size(x.shape[1:])
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        keys = np.arange(first + start, first + start + len(chunk), dtype=np.int64)
        out[start : start + len(chunk)] = noise_fn(chunk, keys, np.int64(seed)).numpy()
    return out


def training_noise(noise_cfg, seed: int, start_epoch: int = 0) -> Callable:
    """A make_dataset noise_fn: fresh noise for every batch of every epoch, from the run's seed.

    A resumed run passes its first epoch: the high word of the Philox counter starts there, so
    the resumed stream never replays the draws of the epochs already trained.
    """
    tf = tensorflow()
    generator = tf.random.Generator.from_key_counter(
        key=seed, counter=[0, start_epoch], alg="philox"
    )

    def noise_fn(batch, _seed):
        seed = generator.make_seeds(1)[:, 0]
        return apply_noise(
            batch, noise_cfg.kind, noise_cfg.level, noise_cfg.clip, seed, noise_cfg.draw
        )

    return noise_fn


def model_inputs(x: np.ndarray, config, seed_offset: int = 0, first: int = 0) -> np.ndarray:
    """What a run's model is evaluated on: x itself, or x with the run's noise at a fixed seed."""
    # x[i] is image first + i of its split; seed_offset 0 is the test split's noise, 1 the
    # validation split's (the noise the trainer validates with).
    if config.data.noise is None:
        return x
    return noisy_eval(x, config.data.noise, config.denoise.eval_seed + seed_offset, first)


def run_datasets(config, splits, first_epoch: int = 0):
    """(training, validation) datasets of a run, from its first epoch (0, or a resumed run's)."""
    # Training reshuffles every epoch and, for a denoiser, draws fresh noise for every batch;
    # validation is the same batches with the same noise every epoch (keyed as model_inputs with
    # seed_offset 1), so val/loss compares by epoch. Patches: random crops for training, fixed
    # ones for validation.
    batch, noise = config.train.batch_size, config.data.noise
    train_ds = make_dataset(
        splits.train_pixels,
        batch_size=batch,
        shuffle=True,
        seed=config.seed,
        noise_fn=None if noise is None else training_noise(noise, config.seed, first_epoch),
        patches=splits.patches,
        first_epoch=first_epoch,
        augment=config.data.augment,
    )
    val_ds = make_dataset(
        splits.val_pixels,
        batch_size=batch,
        shuffle=False,
        seed=config.seed,
        patches=splits.patches,
        image_noise_fn=None if noise is None else fixed_noise(noise, config.denoise.eval_seed + 1),
    )
    return train_ds, val_ds
