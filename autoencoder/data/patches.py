"""Whole images as overlapping tiles of a patch model's input size, and the tiles blended back."""

from __future__ import annotations

import numpy as np


def origins(size: int, patch: int) -> list[int]:
    """Starts of the tiles along one axis: half a patch apart, the last one ending at the edge."""
    # Half-overlapping tiles: every pixel but those near the image's border lies in the inner
    # half of some tile, away from the zero padding a convolution sees at a tile's edge.
    step = max(1, patch // 2)
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _window(patch: int) -> np.ndarray:
    """Blending weights along one axis of a tile: highest in the middle, low (never 0) at edges."""
    i = np.arange(patch, dtype=np.float32)
    return np.minimum(i + 1, patch - i) / ((patch + 1) / 2)


def to_tiles(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(k, H, W, C) -> (k * tiles, h, w, C): each image's tiles, row by row."""
    (h, w), rows, cols = size, origins(x.shape[1], size[0]), origins(x.shape[2], size[1])
    tiles = [x[:, r : r + h, c : c + w] for r in rows for c in cols]
    return np.stack(tiles, axis=1).reshape(-1, h, w, x.shape[3])


def from_tiles(tiles: np.ndarray, shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """to_tiles undone: float32 (k, H, W, C), overlapping tiles blended by their windows."""
    k, height, width, channels = shape
    (h, w), rows, cols = size, origins(height, size[0]), origins(width, size[1])
    tiles = tiles.reshape(k, len(rows) * len(cols), h, w, channels)
    window = (_window(h)[:, None] * _window(w)[None, :])[None, :, :, None]
    out = np.zeros((k, height, width, channels), np.float32)
    weight = np.zeros((1, height, width, 1), np.float32)
    for t, (r, c) in enumerate((r, c) for r in rows for c in cols):
        out[:, r : r + h, c : c + w] += tiles[:, t] * window
        weight[:, r : r + h, c : c + w] += window
    return out / weight
