"""Noise models for denoising: gaussian, salt_pepper, speckle and mask, on batches of images.

Every kind is a stateless TensorFlow function of (batch, seed), so the same seed gives the same
noise. Training draws a fresh seed per batch from a tf.random.Generator seeded by the run's
seed: its state lives in a variable, so it keeps advancing across epochs (a plain stateful op in
a tf.data map would restart with every new iterator and repeat one epoch's noise forever).
Evaluation noise (`noisy_eval`) is keyed by a fixed seed so figures compare across models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autoencoder.runtime import tensorflow


def apply_noise(x, kind: str, level: float, clip: bool, seed):
    """Corrupt a float batch (B, H, W, C) in [0, 1] with one noise kind; seed is an int (2,) tensor."""
    tf = tensorflow()
    x = tf.convert_to_tensor(x, tf.float32)
    noisy = _KINDS[kind](tf, x, float(level), tf.cast(seed, tf.int64))
    return tf.clip_by_value(noisy, 0.0, 1.0) if clip else noisy


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
    keep = tf.random.stateless_uniform((b, grid, grid), cells_seed) >= level  # (B, G, G)
    offset = tf.random.stateless_uniform((b, 2), offset_seed, maxval=p, dtype=tf.int32)
    rows = (tf.range(h)[None, :] + offset[:, :1]) // p  # (B, H): grid row of each pixel row
    cols = (tf.range(w)[None, :] + offset[:, 1:]) // p  # (B, W)
    keep = tf.gather(keep, rows, axis=1, batch_dims=1)  # (B, H, G)
    keep = tf.gather(keep, cols, axis=2, batch_dims=1)  # (B, H, W)
    return x * tf.cast(keep, x.dtype)[..., None]


_KINDS = {"gaussian": _gaussian, "salt_pepper": _salt_pepper, "speckle": _speckle, "mask": _mask}


def noisy_eval(x: np.ndarray, noise_cfg, seed: int) -> np.ndarray:
    """The images with evaluation noise: identical arrays for the same seed."""
    tf = tensorflow()
    noisy = apply_noise(
        x, noise_cfg.kind, noise_cfg.level, noise_cfg.clip, tf.constant([seed, 0], tf.int64)
    )
    return noisy.numpy()


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
        return apply_noise(
            batch, noise_cfg.kind, noise_cfg.level, noise_cfg.clip, generator.make_seeds(1)[:, 0]
        )

    return noise_fn


def model_inputs(x: np.ndarray, config, seed_offset: int = 0) -> np.ndarray:
    """What a run's model is evaluated on: x itself, or x with the run's noise at a fixed seed."""
    if config.data.noise is None:
        return x
    return noisy_eval(x, config.data.noise, config.denoise.eval_seed + seed_offset)
