"""Noise kinds: their statistics, clipping, reproducible evaluation noise, fresh training noise."""

import numpy as np
import pytest

from autoencoder.config import NoiseConfig
from autoencoder.noise import noisy_eval, patch_size, training_noise

GREY = np.full((64, 28, 28, 1), 0.5, np.float32)  # mid-grey: clipping at 0.3 noise is rare


def noisy(kind, level, clip=False, x=GREY, seed=1):
    return noisy_eval(x, NoiseConfig(kind=kind, level=level, clip=clip), seed)


def test_gaussian_spread_before_clipping_is_the_level():
    out = noisy("gaussian", 0.3)
    assert out.shape == GREY.shape and out.dtype == np.float32
    assert np.std(out - GREY) == pytest.approx(0.3, rel=0.02)
    assert abs(np.mean(out - GREY)) < 0.005


def test_speckle_is_multiplicative():
    out = noisy("speckle", 0.4)
    assert np.std(out / GREY - 1) == pytest.approx(0.4, rel=0.02)
    assert np.array_equal(noisy("speckle", 0.4, x=np.zeros_like(GREY)), np.zeros_like(GREY))


def test_salt_and_pepper_sets_a_level_fraction_to_0_or_1():
    out = noisy("salt_pepper", 0.2)
    hit = out != 0.5
    assert hit.mean() == pytest.approx(0.2, abs=0.01)
    assert set(np.unique(out[hit])) == {0.0, 1.0}
    assert (out[hit] == 1).mean() == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("level", [0.1, 0.3, 0.6])
def test_mask_covers_about_level_in_square_patches(level):
    out = noisy("mask", level, x=np.ones_like(GREY))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert (out == 0).mean() == pytest.approx(level, abs=0.04)
    # Patches, not scattered pixels: most zeroed pixels have a zeroed right or lower neighbour.
    zero = out[..., 0] == 0
    neighbour = np.zeros_like(zero)
    neighbour[:, :, :-1] |= zero[:, :, 1:]
    neighbour[:, :-1, :] |= zero[:, 1:, :]
    neighbour[:, :, 1:] |= zero[:, :, :-1]
    assert neighbour[zero].mean() > 0.95
    assert patch_size(28) == 4


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "speckle", "mask"])
def test_clip_keeps_pixels_in_unit_range(kind):
    x = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    out = noisy(kind, 0.7, clip=True, x=x)
    assert out.min() >= 0 and out.max() <= 1
    if kind in ("gaussian", "speckle"):
        assert noisy(kind, 0.7, clip=False, x=x).max() > 1.5  # clip did the work


def test_eval_noise_is_reproducible_for_a_seed_and_differs_for_another():
    a, b, c = (
        noisy("gaussian", 0.4, seed=7),
        noisy("gaussian", 0.4, seed=7),
        noisy("gaussian", 0.4, seed=8),
    )
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_training_noise_changes_between_epochs():
    from autoencoder.data import make_dataset

    fn = training_noise(NoiseConfig(kind="gaussian", level=0.4, clip=False), seed=0)
    ds = make_dataset(GREY, batch_size=16, shuffle=False, seed=0, noise_fn=fn)
    first = np.concatenate([inputs.numpy() for inputs, _ in ds])
    second = np.concatenate([inputs.numpy() for inputs, _ in ds])
    targets = np.concatenate([target.numpy() for _, target in ds])
    assert np.array_equal(targets, GREY)  # the target stays clean
    assert np.std(first - GREY) == pytest.approx(0.4, rel=0.03)
    assert np.abs(first - second).mean() > 0.3  # fresh draws, not the same epoch again
    # ... and different batches of one epoch get different noise too
    assert not np.allclose(first[:16] - GREY[:16], first[16:32] - GREY[16:32])


def test_a_resumed_run_does_not_replay_the_first_epochs_noise():
    from autoencoder.data import make_dataset

    cfg = NoiseConfig(kind="gaussian", level=0.4, clip=False)
    epoch = [
        np.concatenate(
            [
                x.numpy()
                for x, _ in make_dataset(
                    GREY,
                    batch_size=64,
                    shuffle=False,
                    seed=0,
                    noise_fn=training_noise(cfg, 0, start),
                )
            ]
        )
        for start in (0, 0, 3)
    ]
    assert np.array_equal(epoch[0], epoch[1])  # same seed, same start: the same stream
    assert np.abs(epoch[0] - epoch[2]).mean() > 0.3


def test_evaluation_noise_is_keyed_by_image_not_by_chunk(monkeypatch):
    from autoencoder.data import splits as splits_module

    x = np.random.default_rng(0).random((30, 12, 12, 3)).astype(np.float32)
    cfg = NoiseConfig(kind="gaussian", level=0.2, clip=False)
    whole = noisy_eval(x, cfg, 5)
    # Image i's noise depends on (seed, i) only: the same for a slice given its offset, and for
    # any chunk size (a streamed split is evaluated chunk by chunk).
    np.testing.assert_array_equal(noisy_eval(x[10:], cfg, 5, first=10), whole[10:])
    monkeypatch.setattr(splits_module, "CHUNK_IMAGES", 7)
    np.testing.assert_array_equal(noisy_eval(x, cfg, 5), whole)
    assert not np.array_equal(noisy_eval(x, cfg, 6), whole)


def test_noise_is_drawn_per_channel():
    # A grey image in three equal channels: every noise kind but mask differs between them.
    rgb = np.full((8, 16, 16, 3), 0.5, np.float32)
    for kind in ("gaussian", "salt_pepper", "speckle"):
        out = noisy(kind, 0.3, x=rgb)
        assert not np.array_equal(out[..., 0], out[..., 1]), kind
        assert np.corrcoef(out[..., 0].ravel(), out[..., 2].ravel())[0, 1] < 0.1, kind
    masked = noisy("mask", 0.5, x=np.ones_like(rgb))
    np.testing.assert_array_equal(masked[..., 0], masked[..., 2])  # a pixel is dropped whole


@pytest.mark.parametrize("level", ["0.3", "[0.1, 0.5]"])
def test_validation_batches_carry_the_evaluation_noise_of_their_images(level):
    from autoencoder.config import load_config
    from autoencoder.data import load_splits
    from autoencoder.noise import model_inputs, run_datasets

    cfg = load_config(
        None,
        ["data.limit=200", "train.batch_size=32", f"data.noise={{kind: gaussian, level: {level}}}"],
    )
    splits = load_splits(cfg)
    _, val_ds = run_datasets(cfg, splits)
    inputs = np.concatenate([i.numpy() for i, _ in val_ds])
    targets = np.concatenate([t.numpy() for _, t in val_ds])
    np.testing.assert_array_equal(targets, splits.images("val"))
    np.testing.assert_allclose(
        inputs, model_inputs(splits.images("val"), cfg, seed_offset=1), atol=1e-6
    )
    again = np.concatenate([i.numpy() for i, _ in val_ds])
    np.testing.assert_array_equal(inputs, again)  # the same noise every epoch


# Blind noise: a range of levels, each image drawing its own.

RANGE = (0.1, 0.5)


def level_estimate(kind, noisy_images, clean):
    """Each image's level read back from its noise (a per-image statistic that equals it)."""
    axes = (1, 2, 3)
    if kind == "gaussian":
        return (noisy_images - clean).std(axis=axes)
    if kind == "speckle":
        return (noisy_images / clean - 1).std(axis=axes)
    if kind == "salt_pepper":
        return (noisy_images != clean).mean(axis=axes)
    return (noisy_images == 0).mean(axis=axes)  # mask, on white images


def test_the_blind_noise_draws_levels_in_the_range():
    # 64x64 grey images without clipping: each image's noise std is its level to about 1%.
    grey = np.full((128, 64, 64, 1), 0.5, np.float32)
    levels = level_estimate("gaussian", noisy("gaussian", RANGE, x=grey), grey)
    low, high = RANGE
    assert levels.min() >= low * 0.95 and levels.max() <= high * 1.05, (levels.min(), levels.max())
    assert levels.max() - levels.min() > 0.8 * (high - low)  # spread over the range
    assert np.mean(levels) == pytest.approx((low + high) / 2, abs=0.03)  # uniformly
    # A fixed level gives every image the same std: the spread above is the drawn levels'.
    fixed = level_estimate("gaussian", noisy("gaussian", 0.3, x=grey), grey)
    assert fixed.max() - fixed.min() < 0.05


def test_the_triangular_draw_puts_most_images_near_low():
    grey = np.full((512, 32, 32, 1), 0.5, np.float32)
    cfg = NoiseConfig(kind="gaussian", level=(0.0, 0.6), clip=False, draw="triangular")
    levels = noisy_eval(grey, cfg, 3).std(axis=(1, 2, 3))
    # Density 2 (0.6 - l) / 0.36: mean 0.2, a quarter of the images above 0.3, none above 0.6.
    assert levels.min() >= 0 and levels.max() <= 0.6 * 1.05
    assert np.mean(levels) == pytest.approx(0.2, abs=0.02)
    assert np.mean(levels > 0.3) == pytest.approx(0.25, abs=0.05)
    uniform = noisy_eval(grey, NoiseConfig(kind="gaussian", level=(0.0, 0.6), clip=False), 3)
    assert np.mean(uniform.std(axis=(1, 2, 3))) == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "speckle", "mask"])
def test_every_kind_takes_a_range_of_levels_per_image(kind):
    clean = np.ones((256, 28, 28, 1), np.float32) if kind == "mask" else GREY[:1].repeat(256, 0)
    levels = level_estimate(kind, noisy(kind, RANGE, x=clean), clean)
    # Uniform on [0.1, 0.5]: mean 0.3, std 0.4 / sqrt(12) = 0.115; a fixed 0.3 gives std < 0.07.
    assert np.mean(levels) == pytest.approx(0.3, abs=0.03)
    assert 0.09 < np.std(levels) < 0.16
    assert levels.min() > 0.1 - 0.07 and levels.max() < 0.5 + 0.15


def test_blind_eval_noise_is_reproducible_and_keyed_by_image():
    x = np.random.default_rng(0).random((30, 12, 12, 1)).astype(np.float32)
    cfg = NoiseConfig(kind="gaussian", level=RANGE, clip=False)
    whole = noisy_eval(x, cfg, 5)
    np.testing.assert_array_equal(noisy_eval(x, cfg, 5), whole)  # same seed, same noise
    np.testing.assert_array_equal(noisy_eval(x[10:], cfg, 5, first=10), whole[10:])
    assert not np.allclose(noisy_eval(x, cfg, 6), whole)


def test_blind_training_noise_draws_new_levels_every_epoch():
    from autoencoder.data import make_dataset

    grey = np.full((64, 48, 48, 1), 0.5, np.float32)
    fn = training_noise(NoiseConfig(kind="gaussian", level=RANGE, clip=False), seed=0)
    ds = make_dataset(grey, batch_size=16, shuffle=False, seed=0, noise_fn=fn)
    epochs = [np.concatenate([inputs.numpy() for inputs, _ in ds]) for _ in range(2)]
    first, second = (level_estimate("gaussian", e, grey) for e in epochs)
    for levels in (first, second):
        assert levels.min() >= 0.1 * 0.93 and levels.max() <= 0.5 * 1.07
        assert levels.max() - levels.min() > 0.25  # per image, not one level per batch
        assert np.std(levels[:16]) > 0.05  # ... within each batch too
    # The next epoch draws other levels for the same images, not the same ones again.
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.5


def test_blind_training_noise_repeats_for_the_same_seed():
    from autoencoder.data import make_dataset

    # One batch per epoch: the parallel map may hand a stream's seeds to an epoch's batches in
    # another order from run to run, so a replay is compared batch for batch.
    def first_epoch(seed):
        fn = training_noise(NoiseConfig(kind="speckle", level=RANGE, clip=False), seed=seed)
        ds = make_dataset(GREY, batch_size=64, shuffle=False, seed=0, noise_fn=fn)
        return next(iter(ds))[0].numpy()

    a, b, c = first_epoch(0), first_epoch(0), first_epoch(1)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05
