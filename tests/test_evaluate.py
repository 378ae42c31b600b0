"""Metrics, the BCE floor and the PCA baseline against values computed independently here."""

import numpy as np
import pytest
from scipy.special import entr

from autoencoder.evaluate import bce, bce_floor, pca_baseline, per_image_mse, psnr, ssim


@pytest.fixture(scope="module")
def digits():
    from autoencoder.data import load_sample, to_float

    raw = load_sample()
    return to_float(raw.x_train[:600]), to_float(raw.x_test[:200])


def test_bce_floor_is_mean_binary_entropy(digits):
    _, x = digits
    expected = np.mean(entr(x.astype(np.float64)) + entr(1 - x.astype(np.float64)))
    assert bce_floor(x) == pytest.approx(expected, rel=1e-9)
    # MNIST pixels are mostly exactly 0 or 1: the floor is small but not zero (about 0.06).
    assert 0.03 < bce_floor(x) < 0.09
    # A perfect reconstruction scores the floor (up to the 1e-7 clip); a blurred one scores more.
    assert bce(x, x) == pytest.approx(bce_floor(x), abs=1e-5)
    assert bce(x, np.full_like(x, x.mean())) > bce_floor(x) + 0.1


def test_pca_baseline_matches_numpy_svd(digits):
    train, test = digits
    a = train.reshape(len(train), -1).astype(np.float64)
    b = test.reshape(len(test), -1).astype(np.float64)
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    basis = vt[:16]
    recon = np.clip((b - mean) @ basis.T @ basis + mean, 0, 1)
    expected = np.mean((b - recon) ** 2)
    got = pca_baseline(train, test, 16)
    assert got["components"] == 16
    assert got["mse"] == pytest.approx(expected, rel=1e-6)
    assert got["psnr"] == pytest.approx(10 * np.log10(1 / expected), abs=0.1)
    # More components, less error.
    assert pca_baseline(train, test, 64)["mse"] < got["mse"]
    # Fit on uint8 pixels (what evaluation passes) = fit on the same images as float.
    pixels = np.rint(train * 255).astype(np.uint8)
    assert pca_baseline(pixels, test, 16)["mse"] == pytest.approx(got["mse"], rel=1e-9)


def test_mse_psnr_ssim_values():
    x = np.zeros((2, 16, 16, 1), np.float32)
    y = x.copy()
    y[0] += 0.1
    np.testing.assert_allclose(per_image_mse(x, y), [0.01, 0.0], atol=1e-7)
    assert psnr(0.01) == pytest.approx(20.0)
    assert psnr(0.0) == float("inf")
    rng = np.random.default_rng(0)
    img = rng.random((4, 28, 28, 1)).astype(np.float32)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert ssim(img, rng.random(img.shape).astype(np.float32)) < 0.2


def test_chunked_metrics_equal_whole_array_ones(digits, monkeypatch):
    """Metrics go chunk by chunk (memory); a last, short chunk must not change any figure."""
    from autoencoder import evaluate

    _, x = digits
    recon = np.clip(x + np.random.default_rng(1).normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    whole = (
        per_image_mse(x, recon),
        bce(x, recon),
        bce_floor(x),
        evaluate.mae(x, recon),
        ssim(x, recon),
    )
    monkeypatch.setattr(evaluate, "CHUNK", 64)  # 200 images: 64 + 64 + 64 + 8
    x64, r64 = x.astype(np.float64), recon.astype(np.float64)
    np.testing.assert_allclose(per_image_mse(x, recon), ((x64 - r64) ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(whole[0], ((x64 - r64) ** 2).mean(axis=(1, 2, 3)))
    p = np.clip(r64, 1e-7, 1 - 1e-7)
    assert bce(x, recon) == pytest.approx(
        np.mean(-(x64 * np.log(p) + (1 - x64) * np.log(1 - p))), rel=1e-12
    )
    assert bce_floor(x) == pytest.approx(whole[2], rel=1e-12)
    assert evaluate.mae(x, recon) == pytest.approx(np.abs(x64 - r64).mean(), rel=1e-12)
    assert ssim(x, recon) == pytest.approx(whole[4], rel=1e-6)
    assert 0.3 < whole[4] < 0.95  # noise of 0.1 lowers SSIM, but not to nothing


def test_examples_take_each_class_in_turn():
    from autoencoder.evaluate import pick_examples

    # Two classes (a folder of china/ and flower/ tiles): five of each, not one and nine.
    y = np.array([0] * 30 + [1] * 6)
    picked = pick_examples(y, 10)
    assert picked.tolist() == [0, 30, 1, 31, 2, 32, 3, 33, 4, 34]
    # Ten digits: the first of each; a class that runs out leaves its turn to the others.
    digits = np.repeat(np.arange(10), 3)
    assert sorted(digits[pick_examples(digits, 10)].tolist()) == list(range(10))
    assert pick_examples(np.array([0, 0, 0, 0, 1]), 4).tolist() == [0, 4, 1, 2]
    assert pick_examples(np.array([2, 2]), 10).tolist() == [0, 1]
