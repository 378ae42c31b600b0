"""Whole images as tiles of a patch model's input size, and the tiles put back together."""

from __future__ import annotations

import numpy as np


def origins(size: int, patch: int) -> list[int]:
    """Starts of the tiles covering 0..size along one axis; the last one ends at the edge."""
    starts = list(range(0, size - patch + 1, patch))
    if starts[-1] + patch < size:
        starts.append(size - patch)  # overlaps its neighbour rather than leave pixels out
    return starts


def to_tiles(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(k, H, W, C) -> (k * tiles, h, w, C): each image's tiles, row by row."""
    (h, w), rows, cols = size, origins(x.shape[1], size[0]), origins(x.shape[2], size[1])
    tiles = [x[:, r : r + h, c : c + w] for r in rows for c in cols]
    return np.stack(tiles, axis=1).reshape(-1, h, w, x.shape[3])


def from_tiles(tiles: np.ndarray, shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """to_tiles undone: float32 (k, H, W, C); where tiles overlap, their mean."""
    k, height, width, channels = shape
    (h, w), rows, cols = size, origins(height, size[0]), origins(width, size[1])
    tiles = tiles.reshape(k, len(rows) * len(cols), h, w, channels)
    out = np.zeros((k, height, width, channels), np.float32)
    weight = np.zeros((1, height, width, 1), np.float32)
    for t, (r, c) in enumerate((r, c) for r in rows for c in cols):
        out[:, r : r + h, c : c + w] += tiles[:, t]
        weight[:, r : r + h, c : c + w] += 1.0
    return out / weight
