"""SimMIM's masks: random masking of aligned blocks of tokens ("mask patches").

SimMIM (Xie et al., CVPR 2022; docs/method.md#simmim) divides the token grid into cells of
``mask_patch x mask_patch`` tokens (the paper: 32-px mask patches on 16-px tokens, so 2 x 2 tokens)
and hides exactly ``ceil(cells * mask_ratio)`` cells, drawn uniformly at random, per image. The
encoder still sees every token; hidden ones are replaced by a learned mask token.

Masks are drawn on the CPU from an explicit ``torch.Generator`` so a step's views are a pure
function of (seed, step), like :func:`latentmim.masking.views.sample_views`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SimMIMViews:
    """One batch of SimMIM views.

    Attributes:
        mask: (B, N) bool, True where the token is hidden (replaced by the mask token and
            reconstructed), indexed by patch id in raster order, N = G*G.
        num_masked: hidden tokens per image; every row of ``mask`` has exactly this many.
        offsets: (B, N, 2) int64 (dy, dx) in [0, gap) of the patch cut inside each grid cell,
            indexed by patch id; None when the gap is 0.
    """

    mask: Tensor
    num_masked: int
    offsets: Tensor | None

    @property
    def num_vis(self) -> int:
        """Visible tokens per image."""
        return self.mask.shape[1] - self.num_masked

    @property
    def order(self) -> Tensor:
        """(B, N) patch ids, the visible ones first, each group in increasing id order."""
        # Sorting the distinct keys hidden * N + id puts the visible ids before the hidden ones.
        n = self.mask.shape[1]
        ids = torch.arange(n, device=self.mask.device)
        return (self.mask.long() * n + ids).argsort(dim=1)

    @property
    def vis_ids(self) -> Tensor:
        """(B, V) ids of the visible tokens."""
        return self.order[:, : self.num_vis]

    @property
    def trg_ids(self) -> Tensor:
        """(B, T) ids of the hidden tokens, T = :attr:`num_masked`."""
        return self.order[:, self.num_vis :]

    def to(self, device: torch.device | str) -> SimMIMViews:
        offsets = None if self.offsets is None else self.offsets.to(device, non_blocking=True)
        return SimMIMViews(self.mask.to(device, non_blocking=True), self.num_masked, offsets)

    def rows(self, index: slice) -> SimMIMViews:
        offsets = None if self.offsets is None else self.offsets[index]
        return SimMIMViews(self.mask[index], self.num_masked, offsets)


def num_masked_cells(num_cells: int, mask_ratio: float) -> int:
    """Cells SimMIM hides per image: ``ceil(num_cells * mask_ratio)``, as the authors' code.

    The product is taken in float64 as their ``np.ceil(token_count * mask_ratio)``, so the count
    is the same for every ratio (e.g. 49 cells at 0.6 -> 30 hidden, 61% of the tokens).
    """
    return math.ceil(num_cells * mask_ratio)


class SimMIMMaskGenerator:
    """Draws SimMIM's block masks (and, with a gap, the patch offsets) for a batch.

    Args:
        grid_size: G tokens per side (N = G*G).
        mask_patch: side k of a mask cell in tokens; must divide G (paper: 32 px / 16 px = 2).
        mask_ratio: fraction of the (G/k)^2 cells hidden, rounded up (paper: 0.6).

    Raises:
        ValueError: when k does not divide G, or the ratio hides no cell or every cell.
    """

    def __init__(self, grid_size: int, mask_patch: int = 2, mask_ratio: float = 0.6) -> None:
        if mask_patch < 1 or grid_size % mask_patch:
            raise ValueError(f"mask_patch {mask_patch} must divide the grid size {grid_size}")
        self.grid_size = grid_size
        self.mask_patch = mask_patch
        self.mask_ratio = mask_ratio
        self.cells_per_side = grid_size // mask_patch
        self.num_cells = self.cells_per_side**2
        self.masked_cells = num_masked_cells(self.num_cells, mask_ratio)
        if not 1 <= self.masked_cells < self.num_cells:
            raise ValueError(
                f"mask_ratio {mask_ratio} hides {self.masked_cells} of {self.num_cells} mask cells: "
                "at least one must be hidden and one visible"
            )
        self.num_masked = self.masked_cells * mask_patch * mask_patch

    def cell_mask(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """(B, G/k, G/k) bool: exactly :attr:`masked_cells` cells hidden per image, uniformly."""
        # The first masked_cells entries of a uniformly random permutation (argsort of i.i.d.
        # uniform noise) are a uniform subset, as the authors' np.random.permutation(...)[:count].
        chosen = torch.rand(batch_size, self.num_cells, generator=generator).argsort(dim=1)[:, : self.masked_cells]
        cells = torch.zeros(batch_size, self.num_cells, dtype=torch.bool)
        cells.scatter_(1, chosen, True)
        return cells.reshape(batch_size, self.cells_per_side, self.cells_per_side)

    def __call__(self, batch_size: int, patch_gap: int, generator: torch.Generator) -> SimMIMViews:
        """Draw the views of ``batch_size`` images on the CPU.

        Args:
            batch_size: B.
            patch_gap: gap g in pixels; offsets are uniform in [0, g) per patch, axis and image
                (drawn after the mask, as :func:`~latentmim.masking.views.sample_views` does).
            generator: the source of randomness.

        Returns:
            The views, with ``mask`` (B, N): each cell's value repeated over its k x k tokens.
        """
        k = self.mask_patch
        cells = self.cell_mask(batch_size, generator)  # (B, G/k, G/k)
        mask = cells.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)  # (B, G, G)
        offsets = None
        if patch_gap > 0:
            n = self.grid_size * self.grid_size
            offsets = torch.randint(0, patch_gap, (batch_size, n, 2), generator=generator)
        return SimMIMViews(mask.reshape(batch_size, -1), self.num_masked, offsets)
