"""Fixed 2-D sine-cosine position embeddings.

Latent MIM looks position embeddings up by patch id, so every component (online encoder,
target encoder, decoder, visual cues) shares one table per width: row ``n`` belongs to the
patch at grid cell ``(n // G, n % G)``.

Spacing: the Latent MIM authors place grid cell ``i`` at coordinate ``i * G / (G - 1)``
(``linspace(0, 1, G) * G``), MAE at ``i``. :func:`spacing_factor` names both.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """Sine-cosine embedding of 1-D positions.

    Args:
        dim: embedding width (even).
        positions: (M,) float positions.

    Returns:
        (M, dim): first half sines, second half cosines, frequencies 1 / 10000^(2i/dim).
    """
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


POS_SPACINGS = ("authors", "integer")


def spacing_factor(spacing: str, grid_size: int) -> float:
    """Coordinate of grid cell 1: ``G / (G - 1)`` for the Latent MIM authors' table, 1 for MAE's."""
    if spacing not in POS_SPACINGS:
        raise ValueError(f"position spacing must be one of {', '.join(POS_SPACINGS)}, got {spacing!r}")
    return grid_size / (grid_size - 1) if spacing == "authors" and grid_size > 1 else 1.0


def sincos_2d(dim: int, grid_size: int, cls_token: bool = True, spacing: float = 1.0) -> Tensor:
    """2-D sine-cosine table for a ``grid_size x grid_size`` grid (row-major patch ids).

    Half of the channels encode the row, half the column, as in MAE. Cell ``i`` sits at
    coordinate ``i * spacing`` (see :func:`spacing_factor`).

    Returns:
        (1 + G*G, dim) with a zero row for the cls token first if ``cls_token``,
        else (G*G, dim).
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be divisible by 4, got {dim}")
    coords = torch.arange(grid_size, dtype=torch.float64) * spacing
    rows = coords.repeat_interleave(grid_size)  # (G*G,) row of patch n
    cols = coords.repeat(grid_size)  # (G*G,) column of patch n
    # MAE's convention: the first half embeds the column (w), the second the row (h).
    table = torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim), table], dim=0)
    return table
