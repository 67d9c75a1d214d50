"""Random views: which patches the online encoder sees, and where each patch is cut.

Masks are index tensors drawn from an explicit ``torch.Generator`` so a training step's views are
a pure function of (seed, step); the model only ever receives these indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch
from torch import Tensor

V = TypeVar("V", bound="ViewBatch")


class ViewBatch(Protocol):
    """What the engine needs of any method's views: index tensors with the batch first."""

    def to(self: V, device: torch.device | str) -> V:
        """The same views on ``device``."""
        ...

    def rows(self: V, index: slice) -> V:
        """The views of the images ``index`` selects (a multi-process run keeps its rows)."""
        ...


@dataclass(frozen=True)
class Views:
    """One batch of views.

    Attributes:
        perm: (B, N) a random permutation of the N = G*G patch ids per image; the first
            ``num_vis`` are visible, the rest are targets.
        num_vis: number of visible patches per image.
        offsets: (B, N, 2) int64 (dy, dx) in [0, gap) of the patch cut inside each grid cell,
            indexed by patch id; None when the gap is 0.
    """

    perm: Tensor
    num_vis: int
    offsets: Tensor | None

    @property
    def vis_ids(self) -> Tensor:
        """(B, V) ids of the visible patches."""
        return self.perm[:, : self.num_vis]

    @property
    def trg_ids(self) -> Tensor:
        """(B, T) ids of the target (masked) patches, T = N - V."""
        return self.perm[:, self.num_vis :]

    def to(self, device: torch.device | str) -> Views:
        offsets = None if self.offsets is None else self.offsets.to(device, non_blocking=True)
        return Views(self.perm.to(device, non_blocking=True), self.num_vis, offsets)

    def rows(self, index: slice) -> Views:
        offsets = None if self.offsets is None else self.offsets[index]
        return Views(self.perm[index], self.num_vis, offsets)


def num_visible(num_patches: int, num_vis: int | None, mask_ratio: float | None) -> int:
    """Visible patches per image from either an explicit count or a mask ratio."""
    if mask_ratio is not None:
        return max(1, int(round(num_patches * (1.0 - mask_ratio))))
    assert num_vis is not None
    return num_vis


def sample_views(
    batch_size: int,
    grid_size: int,
    num_vis: int,
    patch_gap: int,
    generator: torch.Generator,
) -> Views:
    """Draw a uniformly random visible/target split and patch offsets per image (on CPU).

    Args:
        batch_size: B.
        grid_size: G (N = G*G patches).
        num_vis: V visible patches per image, 1 <= V < N.
        patch_gap: gap g in pixels; offsets are uniform in [0, g) per patch, axis and image.
        generator: the source of randomness.
    """
    n = grid_size * grid_size
    # argsort of i.i.d. uniform noise is a uniformly random permutation (as in MAE).
    perm = torch.rand(batch_size, n, generator=generator).argsort(dim=1)  # (B, N)
    offsets = None
    if patch_gap > 0:
        offsets = torch.randint(0, patch_gap, (batch_size, n, 2), generator=generator)
    return Views(perm, num_vis, offsets)
