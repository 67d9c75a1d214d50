"""Random background textures for the synthetic benchmark.

Backgrounds are deliberately busy (smooth colour noise, stripes, checkers) so that
raw pixel statistics say little about the foreground shapes; a model has to find
edges and shape outlines to classify well.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

BACKGROUND_KINDS: tuple[str, ...] = ("smooth_noise", "stripes", "checker")


@functools.lru_cache(maxsize=8)
def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a square image, cached per size.

    Returns:
        ``(xs, ys)``, each float32 of shape (size, size); treat them as read-only.
    """
    coords = np.arange(size, dtype=np.float32) + 0.5
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _two_colour_blend(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend two random colours with a per-pixel weight (H, W) -> (H, W, 3) float32."""
    c1 = rng.uniform(0, 255, size=3).astype(np.float32)
    c2 = rng.uniform(0, 255, size=3).astype(np.float32)
    return c1 + weight[..., None] * (c2 - c1)


def _smooth_noise(size: int, rng: np.random.Generator) -> np.ndarray:
    # A coarse random colour grid upsampled bilinearly gives smooth colour blobs.
    cells = int(rng.integers(2, 9))
    grid = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    up = Image.fromarray(grid).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(up, dtype=np.float32)


def _stripes(size: int, rng: np.random.Generator) -> np.ndarray:
    xs, ys = pixel_grid(size)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(size / 16, size / 4)
    phase = rng.uniform(0, 2 * math.pi)
    t = (xs * math.cos(theta) + ys * math.sin(theta)) * (2 * math.pi / period) + phase
    return _two_colour_blend(0.5 + 0.5 * np.sin(t), rng)


def _checker(size: int, rng: np.random.Generator) -> np.ndarray:
    xs, ys = pixel_grid(size)
    theta = rng.uniform(0, math.pi / 2)
    cell = rng.uniform(size / 16, size / 5)
    c, s = math.cos(theta), math.sin(theta)
    u = np.floor((xs * c + ys * s) / cell)
    v = np.floor((ys * c - xs * s) / cell)
    return _two_colour_blend(((u + v) % 2).astype(np.float32), rng)


def random_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one random background texture.

    Args:
        size: Image side in pixels.
        rng: Source of randomness; the result is a pure function of its state.

    Returns:
        Float32 RGB image in [0, 255], shape (size, size, 3).
    """
    kind = int(rng.integers(len(BACKGROUND_KINDS)))
    if kind == 0:
        return _smooth_noise(size, rng)
    if kind == 1:
        return _stripes(size, rng)
    return _checker(size, rng)
