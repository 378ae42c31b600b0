"""Whole images as overlapping tiles of a patch model's input size, and the tiles blended back.

One scheme for every whole-image output of a patch model (evaluate, plot, the TensorBoard
images, predict): tiles about a quarter tile apart, blended with a Hann window.
"""

from __future__ import annotations

import numpy as np


def tile_step(tile: int) -> int:
    """Pixels between neighbouring tiles: about a quarter of a tile, and odd."""
    # A model's reconstruction of a flat patch is not flat (zero padding at its borders, the
    # texture of strided layers); blending identical tiles repeats that residue with the tile
    # step, a faint grid on a smooth image. Four tiles per pixel and axis average more of it
    # away than two, and an odd step is never in phase with a stride-2 or stride-4 texture.
    return max(1, tile // 4) | 1


def tile_starts(size: int, tile: int) -> list[int]:
    """Offsets of tiles covering `size` pixels, tile_step apart, the last flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile_step(tile)))
    return [*starts, size - tile]


def tile_origins(height: int, width: int, size: tuple[int, int]) -> list[tuple[int, int]]:
    """(top, left) of every tile of size (h, w) covering height x width pixels, row by row."""
    rows, cols = tile_starts(height, size[0]), tile_starts(width, size[1])
    return [(y, x) for y in rows for x in cols]


def window(height: int, width: int) -> np.ndarray:
    """Blending weights of a tile (H, W): a Hann window, small but never zero at the edges."""
    # A tile's edge pixels, where its reconstruction is worst, count least; the blend divides by
    # the summed weights, so any tile step gives weights that sum to one.
    rows = np.sin(np.pi * (np.arange(height) + 0.5) / height) ** 2
    cols = np.sin(np.pi * (np.arange(width) + 0.5) / width) ** 2
    return np.outer(rows, cols).astype(np.float32)


class Blend:
    """Tiles' outputs summed into whole images (..., H, W, C), weighted by a window."""

    def __init__(self, shape: tuple, weights: np.ndarray):
        self.weights = weights
        self.sum = np.zeros(shape, np.float32)
        # One tile covering the whole image is the output as it is, not a weighted copy of it.
        whole = weights.shape == tuple(shape[-3:-1])
        self.weight = None if whole else np.zeros(shape[-3:-1], np.float32)

    def add(self, origin: tuple[int, int], tile: np.ndarray) -> None:
        """Blend in the output (..., h, w, C) of the tile at `origin` (top, left)."""
        if self.weight is None:
            self.sum[...] = tile
            return
        (y, x), (h, w) = origin, self.weights.shape
        self.sum[..., y : y + h, x : x + w, :] += self.weights[:, :, None] * tile
        self.weight[y : y + h, x : x + w] += self.weights

    def result(self) -> np.ndarray:
        """The blended images, float32."""
        return self.sum if self.weight is None else self.sum / self.weight[:, :, None]


def to_tiles(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(k, H, W, C) -> (k * tiles, h, w, C): each image's tiles, row by row."""
    (h, w), origins = size, tile_origins(x.shape[1], x.shape[2], size)
    tiles = [x[:, y : y + h, c : c + w] for y, c in origins]
    return np.stack(tiles, axis=1).reshape(-1, h, w, x.shape[3])


def from_tiles(tiles: np.ndarray, shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """to_tiles undone: float32 (k, H, W, C), overlapping tiles blended by their windows."""
    k, height, width, channels = shape
    origins = tile_origins(height, width, size)
    tiles = tiles.reshape(k, len(origins), *size, channels)
    blend = Blend(shape, window(*size))
    for t, origin in enumerate(origins):
        blend.add(origin, tiles[:, t])
    return blend.result()
