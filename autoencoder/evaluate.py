"""Reconstruction metrics, the BCE floor and the PCA baseline; `autoencoder evaluate RUN_DIR`.

A split is scored chunk by chunk (Scores), so the figures of a streamed folder are computed
with only a chunk of its images in memory, and are the same as over the whole split at once.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder import runs
from autoencoder.data import load_splits
from autoencoder.model import is_vae, load_model, vae_test_terms
from autoencoder.noise import model_inputs
from autoencoder.runs import open_run, reconstruct_chunks
from autoencoder.runtime import tensorflow
from autoencoder.shapes import plan_model

EPS = 1e-7  # the clip Keras applies inside binary cross-entropy

# Metrics run over this many images at a time, in float64: whole-test-set float64 temporaries
# would dominate a run's peak memory.
CHUNK = 1000
# No PCA baseline for images with more values than this: its covariance matrix holds
# values**2 float64 numbers (128 MB here), and an eigendecomposition of that size takes minutes.
PCA_MAX_VALUES = 4096
CHANNEL_NAMES = {3: ("R", "G", "B")}
EXAMPLES, WORST = 10, 8  # images kept for the figures


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


def ssim_values(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """SSIM of each image (11x11 Gaussian window, as tf.image.ssim; mean over channels)."""
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
    return np.concatenate(values) if values else np.zeros(0)


def ssim(x: np.ndarray, recon: np.ndarray) -> float:
    """Mean SSIM (11x11 Gaussian window, as tf.image.ssim) over the images."""
    return float(np.mean(ssim_values(x, recon)))


# The anomaly scores by kind, and their names in reports: per_image_score's three of the
# reconstruction, and knn, the code's distance to the normal training codes (neighbors.py). Also
# the order `anomaly.score: auto` breaks ties in: the plainest score first.
SCORE_NAMES = {"mse": "MSE", "mae": "MAE", "ssim": "1 - SSIM", "knn": "code kNN distance"}
# The kinds as a one-line message offers them: "a, b or c".
SCORE_CHOICES = f"{', '.join(list(SCORE_NAMES)[:-1])} or {list(SCORE_NAMES)[-1]}"


def per_image_score(kind: str, x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Each image's anomaly score, shape (N,): its MSE, MAE or 1 - SSIM (higher: less normal)."""
    if kind == "mse":
        return per_image_mse(x, recon)
    if kind == "mae":
        axes = tuple(range(1, x.ndim))
        return np.concatenate(
            [
                np.mean(np.abs(x[i : i + CHUNK].astype(np.float64) - recon[i : i + CHUNK]), axes)
                for i in range(0, len(x), CHUNK)
            ]
        )
    if kind == "ssim":
        return 1.0 - ssim_values(x, recon).astype(np.float64)
    raise ValueError(f"unknown anomaly score {kind!r}")


def pca_baseline(x_train: np.ndarray, x_eval: np.ndarray, components: int) -> dict:
    """MSE and PSNR of PCA with `components` components fit on x_train, applied to x_eval.

    Exact PCA from the pixel covariance matrix, accumulated CHUNK images at a time in float64:
    the fit holds one (pixels x pixels) matrix, not a centred float copy of the training set.
    uint8 inputs are pixels / 255.
    """
    pca = Pca.fit(
        lambda: (x_train[i : i + CHUNK] for i in range(0, len(x_train), CHUNK)), components
    )
    for i in range(0, len(x_eval), CHUNK):
        pca.add(x_eval[i : i + CHUNK])
    return pca.result()


class Pca:
    """PCA fit from chunks of images; add() scores chunks of others, result() says how well."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray):
        self.mean, self.basis = mean, basis
        self.squared, self.values = 0.0, 0

    @staticmethod
    def _rows(x: np.ndarray) -> np.ndarray:
        out = x.reshape(len(x), -1).astype(np.float64)
        return out / 255.0 if x.dtype == np.uint8 else out

    @classmethod
    def fit(cls, chunks, components: int) -> Pca:
        """chunks() -> an iterator of image chunks (it is read twice: mean, then covariance)."""
        total, n = None, 0
        for x in chunks():
            rows = cls._rows(x)
            total = rows.sum(axis=0) if total is None else total + rows.sum(axis=0)
            n += len(rows)
        mean = total / n
        cov = np.zeros((len(mean), len(mean)))
        for x in chunks():
            centred = cls._rows(x) - mean
            cov += centred.T @ centred
        k = int(min(components, len(mean), n))
        basis = np.linalg.eigh(cov)[1][:, ::-1][:, :k]  # eigh sorts eigenvalues ascending
        return cls(mean, basis)

    def add(self, x: np.ndarray) -> None:
        rows = self._rows(x)
        recon = np.clip((rows - self.mean) @ self.basis @ self.basis.T + self.mean, 0.0, 1.0)
        self.squared += float(((rows - recon) ** 2).sum())
        self.values += rows.size

    def result(self) -> dict:
        mse = self.squared / self.values
        return {"components": int(self.basis.shape[1]), "mse": mse, "psnr": psnr(mse)}


def _pca_for(splits, split: str, config) -> Pca | None:
    """PCA with as many components as the model's code has numbers, fit on the training pool."""
    # A code as large as the image has no compression to compare against, a patch model's code
    # describes a patch, not the whole image, and a large image makes exact PCA too costly.
    if splits.patches is not None:
        return None
    components = plan_model(config.model).code_size
    values = int(np.prod(splits.image_shape))
    if components >= values or values > PCA_MAX_VALUES:
        return None
    pool = ("train", "val") if split == "test" else ("train",)
    return Pca.fit(lambda: (x for s in pool for _, x in splits.chunks(s)), int(components))


class Scores:
    """One split's metrics, accumulated chunk by chunk; result() gives '<split>/<metric>'."""

    def __init__(self, split: str, channels: int, class_names, pca: Pca | None = None):
        self.split, self.channels, self.names, self.pca = split, channels, class_names, pca
        self.errors, self.labels, self.ssim, self.noisy_errors, self.noisy_ssim = [], [], [], [], []
        self.abs = self.bce = self.floor = 0.0
        self.values = 0
        self.channel_squared = np.zeros(channels)
        self.channel_ssim = [[] for _ in range(channels)]

    def add(self, x: np.ndarray, recon: np.ndarray, labels: np.ndarray, noisy=None) -> np.ndarray:
        """Score one chunk of clean images, their reconstructions (and noisy inputs); its errors."""
        x64, r64 = x.astype(np.float64), recon.astype(np.float64)
        errors = per_image_mse(x, recon)
        self.errors.append(errors)
        self.labels.append(np.asarray(labels))
        self.abs += float(np.sum(np.abs(x64 - r64)))
        p = np.clip(r64, EPS, 1 - EPS)
        self.bce += float(np.sum(-(x64 * np.log(p) + (1 - x64) * np.log(1 - p))))
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -(x64 * np.log(x64) + (1 - x64) * np.log(1 - x64))
        self.floor += float(np.sum(np.nan_to_num(entropy, nan=0.0)))
        self.values += x.size
        self.ssim.append(ssim_values(x, recon))
        if self.channels > 1:
            self.channel_squared += ((x64 - r64) ** 2).sum(axis=(0, 1, 2))
            for c in range(self.channels):
                self.channel_ssim[c].append(ssim_values(x[..., c : c + 1], recon[..., c : c + 1]))
        if noisy is not None:
            self.noisy_errors.append(per_image_mse(x, noisy))
            self.noisy_ssim.append(ssim_values(x, noisy))
        if self.pca is not None:
            self.pca.add(x)
        return errors

    def result(self) -> dict:
        split, errors = self.split, np.concatenate(self.errors)
        labels = np.concatenate(self.labels)
        mse = float(errors.mean())
        per_image = self.values / len(errors)
        out = {
            f"{split}/mse": mse,
            f"{split}/sse_per_image": float(mse * per_image),
            f"{split}/mae": self.abs / self.values,
            f"{split}/psnr": psnr(mse),
            f"{split}/ssim": float(np.mean(np.concatenate(self.ssim))),
            f"{split}/bce": self.bce / self.values,
            f"{split}/bce_floor": self.floor / self.values,
            f"{split}/images": int(len(errors)),
        }
        if self.channels > 1:
            names = CHANNEL_NAMES.get(self.channels, [str(c) for c in range(self.channels)])
            pixels = self.values / self.channels
            out[f"{split}/psnr_by_channel"] = {
                n: psnr(float(sq / pixels)) for n, sq in zip(names, self.channel_squared)
            }
            out[f"{split}/ssim_by_channel"] = {
                n: float(np.mean(np.concatenate(v))) for n, v in zip(names, self.channel_ssim)
            }
        if self.noisy_errors:
            out[f"{split}/noisy_psnr"] = psnr(float(np.concatenate(self.noisy_errors).mean()))
            out[f"{split}/noisy_ssim"] = float(np.mean(np.concatenate(self.noisy_ssim)))
        out[f"{split}/mse_by_class"] = {
            _name(self.names, c): float(errors[labels == c].mean()) for c in np.unique(labels)
        }
        if self.pca is not None:
            out[f"{split}/pca"] = self.pca.result()
        return out


def _name(names, label) -> str:
    return names[int(label)] if names is not None and int(label) < len(names) else str(int(label))


@dataclass
class Evaluation:
    """A split's metrics, every image's error, and the few images the figures show."""

    metrics: dict
    errors: np.ndarray  # per-image MSE, every image of the split
    labels: np.ndarray
    picked: np.ndarray  # indices of the kept images: the examples and the worst, in order
    images: np.ndarray  # their clean images, float32
    inputs: np.ndarray | None  # their noisy model inputs (a denoiser), else None
    recon: np.ndarray

    @property
    def picked_labels(self) -> np.ndarray:
        return self.labels[self.picked]


def pick_examples(y: np.ndarray, n: int = EXAMPLES) -> np.ndarray:
    """Indices of the first image of each class, then the second of each, ..., n in all."""
    # Class by class in turn: with two classes, five of each rather than one and nine.
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    picked: list[int] = []
    for rank in range(max((len(m) for m in members), default=0)):
        picked += [int(m[rank]) for m in members if rank < len(m)]
        if len(picked) >= n:
            break
    return np.array(picked[:n], dtype=np.int64)


def evaluate_split(config, model, splits, split: str = "test") -> Evaluation:
    """Score a trained model on one split, chunk by chunk, keeping the images for the figures.

    Args:
      config: the run's config.
      model: the trained autoencoder.
      splits: the data (data.load_splits).
      split: "test" or "val".
    """
    labels = splits.labels(split)
    scores = Scores(
        split, splits.image_shape[2], splits.class_names, _pca_for(splits, split, config)
    )
    examples = set(pick_examples(labels).tolist())
    kept: dict[int, tuple] = {}
    worst: list[tuple[float, int]] = []  # a min-heap of (error, index): the WORST largest
    noisy = config.data.noise is not None
    for start, images, inputs, recon in reconstruct_chunks(config, model, splits, split):
        stop = start + len(images)
        errors = scores.add(images, recon, labels[start:stop], inputs if noisy else None)
        for j, error in enumerate(errors):
            i = start + j
            if len(worst) < WORST:
                heapq.heappush(worst, (float(error), i))
            elif error > worst[0][0]:
                heapq.heapreplace(worst, (float(error), i))
            if i in examples or any(i == w for _, w in worst):
                kept[i] = (images[j], inputs[j] if noisy else None, recon[j])
        chosen = examples | {w for _, w in worst}
        kept = {i: v for i, v in kept.items() if i in chosen}
    picked = np.array(sorted(kept), dtype=np.int64)
    metrics = scores.result()
    if is_vae(model):
        # Its two terms as validation computes them (a sampled code); test noise is seed 0.
        images = splits.images(split)
        inputs = model_inputs(images, config, seed_offset=0 if split == "test" else 1)
        terms = vae_test_terms(model, inputs, images)
        metrics.update({f"{split}/{k}": v for k, v in terms.items()})
    rows = [kept[i] for i in picked]
    return Evaluation(
        metrics=metrics,
        errors=np.concatenate(scores.errors),
        labels=labels,
        picked=picked,
        images=np.stack([r[0] for r in rows]),
        inputs=np.stack([r[1] for r in rows]) if noisy else None,
        recon=np.stack([r[2] for r in rows]).astype(np.float32),
    )


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
        f"{split} split, {m['images']:,} image{'s' * (m['images'] != 1)}",
        f"  {'':22}{'model':>10}{head}",
        f"  {'MSE per pixel':22}{m['mse']:>10.5f}{mse_b}",
        f"  {'squared error / image':22}{m['sse_per_image']:>10.3f}{sse_b}",
        f"  {'PSNR (dB)':22}{m['psnr']:>10.2f}{psnr_b}",
        f"  {'MAE':22}{m['mae']:>10.5f}",
        f"  {'SSIM':22}{m['ssim']:>10.4f}",
        f"  {'BCE (floor)':22}{m['bce']:>10.4f}  ({m['bce_floor']:.4f}: no model can go lower)",
    ]
    if "kl" in m:  # a VAE: its loss terms per image, from a sampled code
        lines.append(
            f"  VAE terms per image: reconstruction {m['reconstruction']:.2f}, KL {m['kl']:.2f}, "
            f"sum {m['neg_elbo']:.2f} (the negative ELBO)"
        )
    if "psnr_by_channel" in m:
        lines.append(
            "  PSNR by channel: "
            + "  ".join(f"{c} {v:.2f} dB" for c, v in m["psnr_by_channel"].items())
            + "; SSIM: "
            + "  ".join(f"{c} {v:.4f}" for c, v in m["ssim_by_channel"].items())
        )
    if "noisy_psnr" in m:
        lines.append(
            f"  noisy input: PSNR {m['noisy_psnr']:.2f} dB, SSIM {m['noisy_ssim']:.4f} (the "
            f"model's output: {m['psnr']:.2f} dB, {m['ssim']:.4f})"
        )
    lines.append(
        "  MSE by class: " + "  ".join(f"{c}: {v:.4f}" for c, v in m["mse_by_class"].items())
    )
    if not pca:
        lines.append(
            "  (no PCA baseline: the code has as many numbers as the image or more, the model "
            "sees patches, or the images are too large for exact PCA)"
        )
    return "\n".join(lines)


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict:
    """Load a run, compute one split's metrics and merge them into its metrics.json.

    Args:
      run_dir: a directory written by `autoencoder train`.
      split: "test" or "val".
    Returns:
      The split's metrics (format_metrics prints them).
    """
    run_dir = Path(run_dir)
    with runs.writing(run_dir, "autoencoder evaluate"):
        config = open_run(run_dir)
        model = load_model(run_dir / "model.keras")
        splits = load_splits(config)
        runs.warn_changed_data_files(run_dir, splits)
        metrics = evaluate_split(config, model, splits, split).metrics
        runs.merge_metrics(run_dir, metrics)
    return metrics
