"""BEiT's blockwise masks, as ConMIM uses them, drawn from an explicit generator.

BEiT (Bao et al., ICLR 2022, Algorithm 1) hides rectangular blocks of patches until a budget of
hidden patches is reached; ConMIM (docs/method.md#conmim) uses the same generator with the same
settings on ViT-B/16 (the code's defaults: 75 of 196 patches, blocks of at least 16 patches,
aspect ratios in [0.3, 1/0.3]). Per image, until ``num_masked`` patches are hidden:

1. ``budget`` = patches still to hide, at most ``max_block``;
2. up to 10 attempts: area ``A ~ U(min_block, budget)``, aspect ``r = exp(U(log r_min, log r_max))``,
   ``h = round(sqrt(A r))``, ``w = round(sqrt(A / r))``; a block with ``h < G`` and ``w < G`` gets a
   uniform position and is accepted when it hides between 1 and ``budget`` new patches;
3. stop early when 10 attempts hide nothing, so an image may end a little short of the budget.

The only change from the authors' ``MaskingGenerator`` is the source of randomness: each image
reads a stream of uniforms in [0, 1) drawn from a ``torch.Generator`` on the CPU
(``random.uniform(a, b)`` becomes ``a + (b - a) u``, ``random.randint(a, b)`` becomes
``a + floor(u (b - a + 1))``), so the views of a step are a pure function of (seed, step). Given
the same uniforms their generator and ours hide the same patches (``tools/reference_conmim.py``).

Sizes are set relative to N = G*G (:meth:`BlockMaskGenerator.from_fractions`) so the recipe carries
over to any grid: on ViT-B/16's 14x14 grid the fractions give BEiT's 75 patches and blocks of 16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# Attempts per block before giving up on the image (BEiT's MaskingGenerator._mask).
BLOCK_ATTEMPTS = 10
# Uniforms drawn per image up front; an image that needs more draws another chunk. A 14x14 image
# with the paper's settings reads ~20-40.
_CHUNK = 64

# The paper's settings on ViT-B/16 (14x14 = 196 patches), as fractions of N.
PAPER_MASK_FRAC = 75 / 196  # BEiT's and ConMIM's --num_mask_patches 75 (~40%)
PAPER_MIN_BLOCK_FRAC = 16 / 196  # --min_mask_patches_per_block 16
PAPER_MIN_ASPECT = 0.3  # aspect ratios in [0.3, 1/0.3]


@dataclass(frozen=True)
class BlockMaskViews:
    """One batch of blockwise-masked views.

    Attributes:
        mask: (B, N) bool, True where the patch is hidden (replaced by the mask token), indexed by
            patch id in raster order; images may hide slightly different numbers of patches.
        offsets: (B, N, 2) int64 (dy, dx) in [0, gap) of the patch cut inside each grid cell,
            indexed by patch id; None when the gap is 0.
    """

    mask: Tensor
    offsets: Tensor | None

    def to(self, device: torch.device | str) -> BlockMaskViews:
        offsets = None if self.offsets is None else self.offsets.to(device, non_blocking=True)
        return BlockMaskViews(self.mask.to(device, non_blocking=True), offsets)

    def rows(self, index: slice) -> BlockMaskViews:
        offsets = None if self.offsets is None else self.offsets[index]
        return BlockMaskViews(self.mask[index], offsets)


@dataclass(frozen=True)
class Block:
    """One accepted block: its drawn area and aspect ratio and where it landed (in patches)."""

    top: int
    left: int
    height: int
    width: int
    area: float
    aspect: float


class _Uniforms:
    """A stream of uniforms in [0, 1): a pre-drawn row, then further chunks from the generator."""

    def __init__(self, first: list[float], generator: torch.Generator) -> None:
        self.values = first
        self.pos = 0
        self.generator = generator
        self.taken: list[float] = []

    def __call__(self) -> float:
        if self.pos == len(self.values):
            self.values = torch.rand(_CHUNK, generator=self.generator, dtype=torch.float64).tolist()
            self.pos = 0
        u = self.values[self.pos]
        self.pos += 1
        self.taken.append(u)
        return u


class BlockMaskGenerator:
    """BEiT's blockwise mask generator on a G x G grid.

    Args:
        grid_size: G patches per side.
        num_masked: patches to hide per image (an upper bound: an image may end short).
        min_block: smallest block area in patches.
        max_block: largest block area (None = ``num_masked``, BEiT's default).
        min_aspect: aspect ratios h/w are drawn log-uniformly in [min_aspect, 1/min_aspect].

    Raises:
        ValueError: when the sizes cannot describe a mask on this grid.
    """

    def __init__(self, grid_size: int, num_masked: int, min_block: int = 16, max_block: int | None = None,
                 min_aspect: float = PAPER_MIN_ASPECT) -> None:
        n = grid_size * grid_size
        if grid_size < 2:
            raise ValueError(f"blockwise masks need a grid of at least 2x2, got {grid_size}x{grid_size}")
        if not 1 <= num_masked < n:
            raise ValueError(f"num_masked must be in [1, {n - 1}] for a {grid_size}x{grid_size} grid, got {num_masked}")
        if min_block < 1:
            raise ValueError(f"min_block must be >= 1, got {min_block}")
        if not 0.0 < min_aspect <= 1.0:
            raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect}")
        self.grid_size = grid_size
        self.num_masked = num_masked
        self.min_block = min_block
        self.max_block = num_masked if max_block is None else max_block
        self.min_aspect = min_aspect
        self.log_aspect = (math.log(min_aspect), math.log(1.0 / min_aspect))

    @classmethod
    def from_fractions(cls, grid_size: int, mask_frac: float = PAPER_MASK_FRAC,
                       min_block_frac: float = PAPER_MIN_BLOCK_FRAC,
                       min_aspect: float = PAPER_MIN_ASPECT) -> BlockMaskGenerator:
        """The generator whose sizes are fractions of N = G*G, rounded (at least one patch).

        The defaults give the paper's 75 patches and blocks of 16 on a 14x14 grid, and 6 patches
        and blocks of 1 on a 4x4 grid.
        """
        n = grid_size * grid_size
        return cls(grid_size, max(1, round(mask_frac * n)), max(1, round(min_block_frac * n)), None, min_aspect)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(grid={self.grid_size}, num_masked={self.num_masked}, "
                f"blocks=[{self.min_block}, {self.max_block}], min_aspect={self.min_aspect})")

    def mask_one(self, uniform: Callable[[], float], blocks: list[Block] | None = None) -> Tensor:
        """The mask of one image, reading its randomness from ``uniform``.

        Args:
            uniform: returns the next uniform in [0, 1) of this image's stream.
            blocks: when given, every accepted block is appended to it.

        Returns:
            (N,) bool, True where hidden, in raster order.
        """
        g = self.grid_size
        mask = [[False] * g for _ in range(g)]
        count = 0
        while count < self.num_masked:
            budget = min(self.num_masked - count, self.max_block)
            delta = self._place_block(mask, budget, uniform, blocks)
            if delta == 0:
                break
            count += delta
        return torch.tensor(mask, dtype=torch.bool).reshape(-1)

    def _place_block(self, mask: list[list[bool]], budget: int, uniform: Callable[[], float],
                     blocks: list[Block] | None) -> int:
        """Try up to :data:`BLOCK_ATTEMPTS` blocks; returns the patches newly hidden (0: none)."""
        g = self.grid_size
        lo, hi = self.log_aspect
        delta = 0
        for _ in range(BLOCK_ATTEMPTS):
            area = self.min_block + (budget - self.min_block) * uniform()
            aspect = math.exp(lo + (hi - lo) * uniform())
            h = int(round(math.sqrt(area * aspect)))  # Python's round, as the authors' code
            w = int(round(math.sqrt(area / aspect)))
            if w < g and h < g:
                top = int(uniform() * (g - h + 1))
                left = int(uniform() * (g - w + 1))
                hidden = sum(mask[i][j] for i in range(top, top + h) for j in range(left, left + w))
                if 0 < h * w - hidden <= budget:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if not mask[i][j]:
                                mask[i][j] = True
                                delta += 1
                    if blocks is not None:
                        blocks.append(Block(top, left, h, w, area, aspect))
            if delta > 0:
                break
        return delta

    def __call__(self, batch_size: int, generator: torch.Generator,
                 trace: list[list[float]] | None = None) -> Tensor:
        """Masks of ``batch_size`` images (on the CPU).

        Args:
            batch_size: B.
            generator: the source of randomness (one chunk of uniforms per image up front).
            trace: when given, each image's consumed uniforms are appended to it, in order (the
                reference tool replays them through the authors' generator).

        Returns:
            (B, N) bool, True where hidden.
        """
        first = torch.rand(batch_size, _CHUNK, generator=generator, dtype=torch.float64).tolist()
        masks = []
        for row in first:
            stream = _Uniforms(row, generator)
            masks.append(self.mask_one(stream))
            if trace is not None:
                trace.append(stream.taken)
        return torch.stack(masks)


def sample_block_views(batch_size: int, masks: BlockMaskGenerator, patch_gap: int,
                       generator: torch.Generator) -> BlockMaskViews:
    """Blockwise masks and, with a gap, one random patch offset per cell (on the CPU).

    Args:
        batch_size: B.
        masks: the mask generator of the grid.
        patch_gap: gap g in pixels; offsets are uniform in [0, g) per patch, axis and image
            (drawn after the masks, as :func:`~latentmim.masking.views.sample_views` does).
        generator: the source of randomness.
    """
    mask = masks(batch_size, generator)
    offsets = None
    if patch_gap > 0:
        n = masks.grid_size * masks.grid_size
        offsets = torch.randint(0, patch_gap, (batch_size, n, 2), generator=generator)
    return BlockMaskViews(mask, offsets)
