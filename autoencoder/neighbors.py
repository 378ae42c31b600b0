"""The code-distance anomaly score (anomaly.score knn): how far an image's code lies from normal.

An image the autoencoder was not trained on can come back well enough pixel by pixel (a shirt
reconstructed as a pullover-shaped blur is close to a pullover) while its code sits away from
every normal training image's code. The score is the mean Euclidean distance from an image's
code to its `neighbors` nearest codes of the normal training images, each code value first
standardised by the training codes' mean and spread (so no one unit of the code dominates).

The reference codes are saved with the run (anomaly_codes.npz) so `predict` scores new images
the same way.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoencoder import atomic
from autoencoder.errors import UserError

FILE = "anomaly_codes.npz"
# Reference codes kept at most: k-nearest-neighbour search is brute force over them, and a few
# thousand normal codes already place the normal region; drawn with the run's seed.
MAX_CODES = 20_000
# A code value that (nearly) never varies over the training images, as a ReLU feature map's
# dead units (often hundreds), would divide by (nearly) zero. No scale is taken below this
# share of the median varying unit's: a new image that moves a dead unit by a typical unit's
# spread lies 10 spreads out on it, which counts, where a scale of 1e-6 put normal test images
# a million spreads away for a small move.
FLOOR_SHARE = 0.1
MIN_SCALE = 1e-6  # when no unit varies at all


def flat_codes(encoded) -> np.ndarray:
    """An encoder's output as one row per image: a VAE's mean, a feature map flattened."""
    codes = encoded[0] if isinstance(encoded, (list, tuple)) else encoded
    codes = np.asarray(codes, np.float32)
    return codes.reshape(len(codes), -1)


@dataclass
class CodeNeighbors:
    """The normal training images' codes, standardised, and how many neighbours a score uses."""

    codes: np.ndarray  # (N, D) float32, standardised
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    neighbors: int
    index: object = field(default=None, init=False, repr=False, compare=False)  # built on first use

    @classmethod
    def fit(cls, codes: np.ndarray, neighbors: int, seed: int = 0) -> CodeNeighbors:
        """From the normal training images' codes (N, D)."""
        codes = np.asarray(codes, np.float32)
        if len(codes) > MAX_CODES:
            keep = np.random.default_rng(seed).choice(len(codes), MAX_CODES, replace=False)
            codes = codes[np.sort(keep)]
        mean = codes.mean(0)
        spread = codes.std(0)
        varying = spread[spread > 0]
        floor = FLOOR_SHARE * float(np.median(varying)) if len(varying) else 0.0
        scale = np.maximum(spread, max(floor, MIN_SCALE)).astype(np.float32)
        return cls((codes - mean) / scale, mean, scale, int(neighbors))

    def distances(self, codes: np.ndarray) -> np.ndarray:
        """Each code's mean distance to its nearest reference codes, shape (n,), float64."""
        from sklearn.neighbors import NearestNeighbors

        if self.index is None:
            self.index = NearestNeighbors().fit(self.codes)
        k = min(self.neighbors, len(self.codes))
        standard = (np.asarray(codes, np.float32).reshape(len(codes), -1) - self.mean) / self.scale
        found, _ = self.index.kneighbors(standard, n_neighbors=k)
        return found.astype(np.float64).mean(1)

    def save(self, run_dir: Path) -> Path:
        """Into the run directory (FILE), atomically."""
        path = Path(run_dir) / FILE
        arrays = {"codes": self.codes, "mean": self.mean, "scale": self.scale}
        atomic.write_with(path, lambda tmp: np.savez(tmp, neighbors=self.neighbors, **arrays))
        return path

    @classmethod
    def load(cls, run_dir: Path) -> CodeNeighbors:
        """The run's saved codes; one line when they are missing or unreadable."""
        path = Path(run_dir) / FILE
        if not path.is_file():
            raise UserError(
                f"{path}: missing; the knn score compares an image's code with the normal "
                f"training codes `autoencoder anomaly` saves there; run `autoencoder anomaly` on "
                f"this config, or use a score of the reconstruction (mse, mae, ssim)"
            )
        try:
            with np.load(path) as saved:
                return cls(saved["codes"], saved["mean"], saved["scale"], int(saved["neighbors"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(
                f"{path}: corrupt or truncated ({exc}); rerun `autoencoder anomaly` to write it"
            ) from None
