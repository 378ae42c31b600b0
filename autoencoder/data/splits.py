"""Train / validation / test splits of a dataset, their float conversion, and their report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoencoder.data.sources import load_raw, offline
from autoencoder.errors import UserError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Splits:
    """uint8 pixels (N, H, W, C) and int64 labels of each split, and where they came from."""

    # Held as bytes, a quarter of the memory of float32, for the whole run; images() converts.
    train_pixels: np.ndarray
    y_train: np.ndarray
    val_pixels: np.ndarray
    y_val: np.ndarray
    test_pixels: np.ndarray
    y_test: np.ndarray
    source: str

    def pixels(self, split: str) -> np.ndarray:
        """The uint8 pixels of "train", "val" or "test", as held (not a copy)."""
        return getattr(self, f"{_checked(split)}_pixels")

    def labels(self, split: str) -> np.ndarray:
        """The int64 labels of "train", "val" or "test"."""
        return getattr(self, f"y_{_checked(split)}")

    def images(self, split: str) -> np.ndarray:
        """The split as float32 in [0, 1]: a new array on each call, so keep the result."""
        return scaled(self.pixels(split))

    def count(self, split: str) -> int:
        """The number of images in the split (nothing converted)."""
        return len(self.pixels(split))


def _checked(split: str) -> str:
    """The split name if it is one of SPLIT_NAMES, else ValueError."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    return split


def load_splits(config, *, download: bool | None = None) -> Splits:
    """Train / validation / test splits for a Config (uses config.data and config.seed).

    Keeps the configured classes, caps the training pool at data.limit, then cuts it into
    train / validation with a shuffle seeded by config.seed; the test set is the dataset's own.

    Args:
      config: the whole run Config.
      download: allow the last-resort download; None means "unless $AUTOENCODER_OFFLINE is set".
    Raises:
      UserError: no data found, a corrupt file, or classes/limit that leave no images.
    """
    data = config.data
    if download is None:
        skip = "AUTOENCODER_OFFLINE is set" if offline() else None
    else:
        skip = None if download else "download=False"
    raw = load_raw(data, skip)
    x_pool, y_pool = _keep_classes(raw.x_train, raw.y_train, data.classes)
    x_test, y_test = _keep_classes(raw.x_test, raw.y_test, data.classes)
    if data.limit is not None:
        x_pool, y_pool = x_pool[: data.limit], y_pool[: data.limit]
    if len(x_pool) < 2 or len(x_test) == 0:
        raise UserError(
            f"data.classes/limit leave too few images (classes {data.classes}, "
            f"limit {data.limit}: {len(x_pool)} in the training pool, {len(x_test)} "
            f"in the test set; training needs at least 2, testing 1); list classes "
            f"the dataset holds, or raise data.limit"
        )
    train, val = split_indices(len(x_pool), data.validation_split, config.seed)
    return Splits(
        x_pool[train, ..., None],
        y_pool[train],
        x_pool[val, ..., None],
        y_pool[val],
        x_test[..., None],
        y_test,
        source=raw.source,
    )


def _keep_classes(x: np.ndarray, y: np.ndarray, classes: list[int] | None):
    """Only the images whose label is in `classes` (all when None)."""
    if classes is None:
        return x, y
    keep = np.isin(y, classes)
    return x[keep], y[keep]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) cut into (train, validation); both keep at least one item."""
    n_val = min(max(1, round(n * fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], a new array."""
    return scaled(x.reshape(*x.shape, 1))


def scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] of the same shape, a new array."""
    out = pixels.astype(np.float32)
    out /= 255.0  # in place: dividing into a new array would hold a second float32 copy
    return out


# ---------------------------------------------------------------------------------------------
# Report


def describe(config) -> str:
    """What `autoencoder data CONFIG` prints: source, split sizes, class counts, mean pixel."""
    splits = load_splits(config)
    pool = splits.count("train") + splits.count("val")
    shape = splits.pixels("train").shape[1:]
    # Summed as integers from the bytes, so no float copy of the pool is made.
    total = sum(splits.pixels(s).sum(dtype=np.int64) for s in ("train", "val"))
    mean = total / (pool * np.prod(shape) * 255.0)
    rows = [("train", "train"), ("validation", "val"), ("test", "test")]
    lines = [
        f"dataset     {config.data.dataset}",
        f"source      {splits.source}",
        f"images      {' x '.join(map(str, shape))}, float32 in [0, 1]",
        f"mean pixel  {mean:.4f} (training pool: train + validation, {pool:,} images)",
        "",
        *class_table([(name, splits.labels(split)) for name, split in rows]),
    ]
    return "\n".join(lines)


def class_table(rows: list[tuple[str, np.ndarray]]) -> list[str]:
    """Aligned lines: one row per split with its size and the count of each class 0..9."""
    header = f"{'split':<10} {'images':>7} " + " ".join(f"{c:>6}" for c in range(10))
    body = [
        f"{name:<10} {len(y):>7,} " + " ".join(f"{n:>6,}" for n in np.bincount(y, minlength=10))
        for name, y in rows
    ]
    return [header, *body]
