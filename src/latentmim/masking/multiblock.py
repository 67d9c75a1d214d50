"""I-JEPA's multi-block masks: one large context block, several smaller target blocks.

Per batch (docs/method.md#i-jepa), following the authors' ``MaskCollator``
(``src/masks/multiblock.py`` of facebookresearch/ijepa):

1. one target block size and one context block size are drawn for the whole batch;
2. per image, ``num_targets`` target blocks are placed at random positions (they may overlap
   each other), then one context block is placed and, unless ``allow_overlap``, every target
   block is cut out of it; a placement that leaves ``min_keep`` patches or fewer is redrawn, and
   after every 20 failures one more target block (the last first) stops being cut out;
3. the context ids of every image are cut to the smallest context of the batch (in raster order)
   so that they stack; target blocks all have the same size and need no cut.

Everything is drawn on the CPU from an explicit ``torch.Generator`` (the authors draw positions
from the global RNG), so the views of a step are a pure function of (seed, step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# Failed context placements before one more target block may overlap the context (authors: 20).
_PLACEMENT_TRIES = 20


@dataclass(frozen=True)
class BlockViews:
    """One batch of multi-block views.

    Attributes:
        ctx_ids: (B, Kc) int64 ids of the context patches per image, ascending (raster order).
        trg_ids: (B, M, Kt) int64 ids of the M target blocks per image, each in raster order.
        offsets: (B, N, 2) int64 (dy, dx) in [0, gap) of the patch cut inside each grid cell,
            indexed by patch id; None when the gap is 0.
    """

    ctx_ids: Tensor
    trg_ids: Tensor
    offsets: Tensor | None

    @property
    def num_targets(self) -> int:
        """M, target blocks per image."""
        return self.trg_ids.shape[1]

    def to(self, device: torch.device | str) -> BlockViews:
        offsets = None if self.offsets is None else self.offsets.to(device, non_blocking=True)
        return BlockViews(self.ctx_ids.to(device, non_blocking=True), self.trg_ids.to(device, non_blocking=True),
                          offsets)

    def rows(self, index: slice) -> BlockViews:
        offsets = None if self.offsets is None else self.offsets[index]
        return BlockViews(self.ctx_ids[index], self.trg_ids[index], offsets)


@dataclass(frozen=True)
class MultiBlockMasker:
    """The multi-block mask generator of I-JEPA on a ``grid_size x grid_size`` grid.

    Attributes:
        grid_size: G (N = G*G patches).
        ctx_scale: range of the context block's area as a fraction of N (paper: 0.85-1.0).
        trg_scale: range of each target block's area as a fraction of N (paper: 0.15-0.2).
        aspect: range of the target blocks' height/width ratio (paper: 0.75-1.5); the context
            block is square.
        num_targets: M target blocks per image (paper: 4).
        min_keep: a context must keep more than this many patches (authors: 10 at 14x14 and
            16x16 grids); checked on the context only (see :meth:`block_size`).
        allow_overlap: keep target patches in the context (paper: False).
        reach_edges: let blocks reach the last row and column. False reproduces the authors'
            released sampler, whose sides are at most G-1 and whose top-left corner is drawn
            from [0, G-side) (exclusive), so the last patch row and column are never in any
            block and a context block of side G-1 always sits in the top-left corner. True
            draws sides up to G and corners from [0, G-side], the evident intent.
    """

    grid_size: int
    ctx_scale: tuple[float, float] = (0.85, 1.0)
    trg_scale: tuple[float, float] = (0.15, 0.2)
    aspect: tuple[float, float] = (0.75, 1.5)
    num_targets: int = 4
    min_keep: int = 10
    allow_overlap: bool = False
    reach_edges: bool = False

    def __post_init__(self) -> None:
        n = self.grid_size**2
        for name, (lo, hi) in (("ctx_scale", self.ctx_scale), ("trg_scale", self.trg_scale)):
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 < low <= high <= 1, got {(lo, hi)}")
        if not 0.0 < self.aspect[0] <= self.aspect[1]:
            raise ValueError(f"aspect must satisfy 0 < low <= high, got {self.aspect}")
        if self.num_targets < 1:
            raise ValueError(f"num_targets must be >= 1, got {self.num_targets}")
        if not 0 <= self.min_keep < n:
            raise ValueError(f"min_keep must be in [0, {n}) for a {self.grid_size}x{self.grid_size} grid, "
                             f"got {self.min_keep}")
        h, w = self.size_at(0.0, self.ctx_scale, (1.0, 1.0))  # the smallest context block
        if h * w <= self.min_keep:
            raise ValueError(f"a {h}x{w} context block can never keep more than min_keep={self.min_keep} "
                             f"patches on a {self.grid_size}x{self.grid_size} grid: lower min_keep or raise ctx_scale")

    def block_size(self, generator: torch.Generator, scale: tuple[float, float],
                   aspect: tuple[float, float]) -> tuple[int, int]:
        """Draw one block (height, width) in patches, as the authors' ``_sample_block_size``.

        One uniform number r sets both the area fraction ``lo + r*(hi-lo)`` and the aspect
        ``lo + r*(hi-lo)`` (the authors' code shares it: larger blocks are also taller). The
        area is floored to whole patches, the sides rounded, then clipped to the grid (G-1
        without ``reach_edges``) and raised to at least 1.

        The authors also require target blocks to exceed ``min_keep`` patches; a target block is
        an unconstrained rectangle, so that check either always passes or (a block of
        ``min_keep`` patches or fewer, e.g. at an 8x8 grid) redraws forever: it is left out.
        """
        return self.size_at(torch.rand(1, generator=generator).item(), scale, aspect)

    def size_at(self, r: float, scale: tuple[float, float], aspect: tuple[float, float]) -> tuple[int, int]:
        """The (height, width) of :meth:`block_size` for the uniform number ``r`` in [0, 1)."""
        max_keep = int(self.grid_size**2 * (scale[0] + r * (scale[1] - scale[0])))
        ratio = aspect[0] + r * (aspect[1] - aspect[0])
        limit = self.grid_size if self.reach_edges else self.grid_size - 1
        h = min(max(int(round(math.sqrt(max_keep * ratio))), 1), limit)
        w = min(max(int(round(math.sqrt(max_keep / ratio))), 1), limit)
        return h, w

    def _corners(self, count: int, size: tuple[int, int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(count,) top rows and (count,) left columns of blocks of ``size``."""
        extra = 1 if self.reach_edges else 0
        top = torch.randint(0, self.grid_size - size[0] + extra, (count,), generator=generator)
        left = torch.randint(0, self.grid_size - size[1] + extra, (count,), generator=generator)
        return top, left

    def _block_masks(self, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
        """(...,) corners -> (..., G, G) boolean masks of the blocks."""
        ar = torch.arange(self.grid_size)
        rows = (ar >= top[..., None]) & (ar < top[..., None] + size[0])  # (..., G)
        cols = (ar >= left[..., None]) & (ar < left[..., None] + size[1])
        return rows[..., :, None] & cols[..., None, :]

    def sample(self, batch_size: int, generator: torch.Generator, patch_gap: int = 0) -> BlockViews:
        """Draw the views of ``batch_size`` images (on the CPU).

        Draw order: target size, context size, target corners (all images and blocks), context
        corners (redrawn for the images whose context is too small), patch offsets.

        Args:
            batch_size: B.
            generator: the source of randomness.
            patch_gap: gap g in pixels; with g > 0 one offset in [0, g) per patch, axis and image
                (as :func:`~latentmim.masking.views.sample_views`).

        Returns:
            :class:`BlockViews` with (B, Kc) context ids and (B, M, Kt) target ids.
        """
        g, m, b = self.grid_size, self.num_targets, batch_size
        t_size = self.block_size(generator, self.trg_scale, self.aspect)
        c_size = self.block_size(generator, self.ctx_scale, (1.0, 1.0))  # > min_keep (__post_init__)

        t_top, t_left = self._corners(b * m, t_size, generator)
        trg = self._block_masks(t_top.view(b, m), t_left.view(b, m), t_size)  # (B, M, G, G)

        ctx = torch.zeros(b, g, g, dtype=torch.bool)
        pending = torch.arange(b)
        dropped = torch.zeros(b, dtype=torch.long)  # target blocks no longer cut out (last first)
        budget = torch.full((b,), _PLACEMENT_TRIES)
        while pending.numel() > 0:
            c_top, c_left = self._corners(pending.numel(), c_size, generator)
            block = self._block_masks(c_top, c_left, c_size)  # (P, G, G)
            if not self.allow_overlap:
                # cut out targets 0 .. M-1-dropped of each pending image
                cut = torch.arange(m) < (m - dropped[pending])[:, None]  # (P, M)
                block = block & ~(trg[pending] & cut[..., None, None]).any(dim=1)
            ok = block.flatten(1).sum(dim=1) > self.min_keep
            ctx[pending[ok]] = block[ok]
            failed = pending[~ok]
            budget[failed] -= 1
            exhausted = failed[budget[failed] == 0]
            dropped[exhausted] += 1
            budget[exhausted] = _PLACEMENT_TRIES
            pending = failed

        ctx = ctx.flatten(1)  # (B, N)
        keep = int(ctx.sum(dim=1).min())
        # Stable sort puts the context ids first in ascending order; the cut keeps the first `keep`.
        ctx_ids = torch.sort((~ctx).to(torch.uint8), dim=1, stable=True).indices[:, :keep]
        trg_ids = self._rect_ids(t_top.view(b, m), t_left.view(b, m), t_size)
        offsets = None
        if patch_gap > 0:
            offsets = torch.randint(0, patch_gap, (b, g * g, 2), generator=generator)
        return BlockViews(ctx_ids, trg_ids, offsets)

    def _rect_ids(self, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
        """(B, M) corners -> (B, M, h*w) ids of the blocks' patches in raster order."""
        dy = torch.arange(size[0]).repeat_interleave(size[1])  # (h*w,)
        dx = torch.arange(size[1]).repeat(size[0])
        return (top[..., None] + dy) * self.grid_size + left[..., None] + dx
