"""Reconstruction metrics, the BCE floor and the PCA baseline; `autoencoder evaluate RUN_DIR`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from autoencoder import atomic
from autoencoder.runs import load_run
from autoencoder.runtime import tensorflow
from autoencoder.shapes import plan_model

EPS = 1e-7  # the clip Keras applies inside binary cross-entropy

# Metrics run over this many images at a time, in float64: whole-test-set float64 temporaries
# would dominate a run's peak memory.
CHUNK = 1000


def per_image_mse(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Mean squared error of each image, shape (N,)."""
    axes = tuple(range(1, x.ndim))
    return np.concatenate(
        [
            np.mean((x[i : i + CHUNK].astype(np.float64) - recon[i : i + CHUNK]) ** 2, axis=axes)
            for i in range(0, len(x), CHUNK)
        ]
    )


def _mean_over_chunks(fn, *arrays: np.ndarray) -> float:
    """The mean of fn(chunks...) elementwise over all images, chunk by chunk, in float64."""
    total = sum(
        float(np.sum(fn(*(a[i : i + CHUNK].astype(np.float64) for a in arrays))))
        for i in range(0, len(arrays[0]), CHUNK)
    )
    return total / arrays[0].size


def psnr(mse: float) -> float:
    """PSNR in dB for pixels in [0, 1], from a mean squared error."""
    return math.inf if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def mae(x: np.ndarray, recon: np.ndarray) -> float:
    """Mean absolute error per pixel."""
    return _mean_over_chunks(lambda a, b: np.abs(a - b), x, recon)


def bce(x: np.ndarray, recon: np.ndarray) -> float:
    """Mean binary cross-entropy per pixel (targets may be grey, not just 0/1)."""

    def terms(x, p):
        p = np.clip(p, EPS, 1 - EPS)
        return -(x * np.log(p) + (1 - x) * np.log(1 - p))

    return _mean_over_chunks(terms, x, recon)


def bce_floor(x: np.ndarray) -> float:
    """Mean entropy of the target pixels: the BCE of a perfect reconstruction (0 log 0 = 0)."""

    def entropy(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(-(x * np.log(x) + (1 - x) * np.log(1 - x)), nan=0.0)

    return _mean_over_chunks(entropy, x)


def ssim(x: np.ndarray, recon: np.ndarray) -> float:
    """Mean SSIM (11x11 Gaussian window, as tf.image.ssim) over the images."""
    tf = tensorflow()
    # Window must fit the image: shrink it for very small inputs.
    size = min(11, x.shape[1], x.shape[2])
    values = [
        tf.image.ssim(
            tf.constant(x[i : i + CHUNK], tf.float32),
            tf.constant(recon[i : i + CHUNK], tf.float32),
            max_val=1.0,
            filter_size=size,
        ).numpy()
        for i in range(0, len(x), CHUNK)
    ]
    return float(np.mean(np.concatenate(values)))


def pca_baseline(x_train: np.ndarray, x_eval: np.ndarray, components: int) -> dict:
    """MSE and PSNR of PCA with `components` components fit on x_train, applied to x_eval.

    Exact PCA from the pixel covariance matrix, accumulated CHUNK images at a time in float64:
    the fit holds one (pixels x pixels) matrix, not a centred float copy of the training set.
    uint8 inputs are pixels / 255.
    """
    n, d = len(x_train), int(np.prod(x_train.shape[1:]))
    k = int(min(components, d, n))

    def rows(x, i):
        out = x[i : i + CHUNK].reshape(-1, d).astype(np.float64)
        return out / 255.0 if x.dtype == np.uint8 else out

    mean = sum(rows(x_train, i).sum(axis=0) for i in range(0, n, CHUNK)) / n
    cov = np.zeros((d, d))
    for i in range(0, n, CHUNK):
        centred = rows(x_train, i) - mean
        cov += centred.T @ centred
    basis = np.linalg.eigh(cov)[1][:, ::-1][:, :k]  # eigh sorts eigenvalues ascending
    squared = 0.0
    for i in range(0, len(x_eval), CHUNK):
        x = rows(x_eval, i)
        recon = np.clip((x - mean) @ basis @ basis.T + mean, 0.0, 1.0)
        squared += float(((x - recon) ** 2).sum())
    mse = squared / (len(x_eval) * d)
    return {"components": k, "mse": mse, "psnr": psnr(mse)}


def evaluate_arrays(splits, images: np.ndarray, recon: np.ndarray, split: str, config) -> dict:
    """All metrics of `recon` against `images`, the clean images of `split`: '<split>/<metric>'."""
    x, y = images, splits.labels(split)
    errors = per_image_mse(x, recon)
    mse = float(errors.mean())
    out = {
        f"{split}/mse": mse,
        f"{split}/sse_per_image": float(mse * np.prod(x.shape[1:])),
        f"{split}/mae": mae(x, recon),
        f"{split}/psnr": psnr(mse),
        f"{split}/ssim": ssim(x, recon),
        f"{split}/bce": bce(x, recon),
        f"{split}/bce_floor": bce_floor(x),
        f"{split}/images": int(len(x)),
    }
    out[f"{split}/mse_by_class"] = {str(int(c)): float(errors[y == c].mean()) for c in np.unique(y)}
    # PCA with as many components as the code has numbers; a code as large as the image has no
    # compression to compare against, so there is no baseline then.
    components = plan_model(config.model).code_size
    if components < np.prod(x.shape[1:]):
        pool = (
            np.concatenate([splits.train_pixels, splits.val_pixels])
            if split == "test"
            else splits.train_pixels
        )
        out[f"{split}/pca"] = pca_baseline(pool, x, int(components))
    return out


def format_metrics(metrics: dict, split: str) -> str:
    """A small text table of one split's metrics."""
    m = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{split}/")}
    pca = m.get("pca")
    pixels = m["sse_per_image"] / max(m["mse"], 1e-12)
    head, mse_b, sse_b, psnr_b = "", "", "", ""
    if pca:
        head, mse_b = f"{'PCA-' + str(pca['components']):>12}", f"{pca['mse']:>12.5f}"
        sse_b, psnr_b = f"{pca['mse'] * pixels:>12.3f}", f"{pca['psnr']:>12.2f}"
    lines = [
        f"{split} split, {m['images']:,} images",
        f"  {'':22}{'model':>10}{head}",
        f"  {'MSE per pixel':22}{m['mse']:>10.5f}{mse_b}",
        f"  {'squared error / image':22}{m['sse_per_image']:>10.3f}{sse_b}",
        f"  {'PSNR (dB)':22}{m['psnr']:>10.2f}{psnr_b}",
        f"  {'MAE':22}{m['mae']:>10.5f}",
        f"  {'SSIM':22}{m['ssim']:>10.4f}",
        f"  {'BCE (floor)':22}{m['bce']:>10.4f}  ({m['bce_floor']:.4f}: no model can go lower)",
        "  MSE by class: " + "  ".join(f"{c}: {v:.4f}" for c, v in m["mse_by_class"].items()),
    ]
    if "kl" in m:  # a VAE: its loss terms per image, from a sampled code
        lines.append(
            f"  VAE terms per image: reconstruction {m['reconstruction']:.2f}, KL {m['kl']:.2f}, "
            f"sum {m['neg_elbo']:.2f} (the negative ELBO)"
        )
    if not pca:
        lines.append("  (no PCA baseline: the code has as many numbers as the image or more)")
    return "\n".join(lines)


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict:
    """Load a run, compute one split's metrics and merge them into its metrics.json.

    Args:
      run_dir: a directory written by `autoencoder train`.
      split: "test" or "val".
    Returns:
      The split's metrics (format_metrics prints them).
    """
    run = load_run(run_dir, split)
    metrics = evaluate_arrays(run.splits, run.images, run.recon, split, run.config)
    path = run.run_dir / "metrics.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(metrics)
    atomic.write_json(path, merged)
    return metrics
