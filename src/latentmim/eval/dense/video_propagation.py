"""Semi-supervised label propagation through a video with patch features (as in DINO / STC).

Each frame's patch features are L2-normalised. The first frame's mask, as soft one-hot labels
on the patch grid, is carried forward: for a target frame, every target patch compares its
feature with the patches of the context frames -- the first frame plus the previous
``n_last_frames`` frames -- restricted to a square spatial neighbourhood of ``radius`` patches
(|dy| <= r and |dx| <= r) around its own position. Of those candidates it keeps the ``topk``
most similar (over all context frames together), weights them by a softmax of
similarity / ``temperature`` and averages their soft labels. The soft labels of the target
frame join the context queue, so errors can be corrected by later evidence from the first
frame. Finally the soft label map is upsampled bilinearly to the frame and the argmax taken.

Reference values: n_last_frames 7, topk 5, temperature 0.1, radius 12 (METHOD.md §4).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# Cap on the elements of one (targets x sources) similarity block, so memory stays bounded
# at any resolution (2^24 floats = 64 MiB).
_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Propagation:
    """Label-propagation parameters (defaults: the DAVIS protocol of DINO / METHOD.md)."""

    n_last_frames: int = 7  # previous frames kept as context besides the first
    topk: int = 5  # sources kept per target patch, over all context frames together
    temperature: float = 0.1  # softmax temperature on cosine similarities
    radius: int | None = 12  # neighbourhood half-width in patches; None = whole frame


def neighbourhood(grid_h: int, grid_w: int, radius: int | None, device: torch.device | str = "cpu") -> Tensor:
    """(N, N) bool, entry [source, target] True when the source patch lies within ``radius``
    patches of the target along both axes (Chebyshev distance); all True for ``radius=None``."""
    n = grid_h * grid_w
    if radius is None:
        return torch.ones(n, n, dtype=torch.bool, device=device)
    ys = torch.arange(grid_h, device=device).repeat_interleave(grid_w)  # (N,)
    xs = torch.arange(grid_w, device=device).repeat(grid_h)
    return ((ys[:, None] - ys[None, :]).abs() <= radius) & ((xs[:, None] - xs[None, :]).abs() <= radius)


def labels_to_soft(labels: Tensor, num_labels: int, grid_h: int, grid_w: int) -> Tensor:
    """Soft one-hot labels on the patch grid: the fraction of each patch's pixels per label.

    Args:
        labels: (H, W) int64 label indices in [0, num_labels).
        num_labels: C (background included).
        grid_h, grid_w: patch grid.

    Returns:
        (grid_h * grid_w, C) float32, rows sum to 1.
    """
    one_hot = F.one_hot(labels, num_labels).permute(2, 0, 1)[None].float()  # (1, C, H, W)
    pooled = F.adaptive_avg_pool2d(one_hot, (grid_h, grid_w))  # (1, C, h, w): area fractions
    return pooled[0].flatten(1).T.contiguous()


def propagate_step(
    target: Tensor,
    context_feats: list[Tensor],
    context_labels: list[Tensor],
    allowed: Tensor,
    topk: int = 5,
    temperature: float = 0.1,
) -> Tensor:
    """Soft labels of one target frame from its context frames.

    Args:
        target: (N, D) L2-normalised features of the target frame.
        context_feats: list of (N, D) L2-normalised features, one per context frame.
        context_labels: list of (N, C) soft labels, aligned with ``context_feats``.
        allowed: (N, N) bool neighbourhood [source, target].
        topk: sources kept per target patch (over all context frames).
        temperature: softmax temperature on cosine similarities.

    Returns:
        (N, C) soft labels (rows sum to 1).
    """
    src_f = torch.cat(context_feats, dim=0)  # (M, D), M = frames * N
    src_l = torch.cat(context_labels, dim=0)  # (M, C)
    n, m = target.shape[0], src_f.shape[0]
    k = min(topk, m)
    out = torch.empty(n, src_l.shape[1], dtype=src_l.dtype, device=src_l.device)
    step = max(1, _BLOCK_ELEMENTS // m)
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        sim = target[j0:j1] @ src_f.T  # (n_j, M) cosine similarities
        ok = allowed[:, j0:j1].T.repeat(1, len(context_feats))  # (n_j, M)
        sim = sim.masked_fill(~ok, float("-inf"))
        vals, idx = sim.topk(k, dim=1)  # (n_j, k)
        # A target always has itself in the neighbourhood, so at least one value is finite.
        w = torch.softmax(vals / temperature, dim=1)  # (n_j, k); -inf candidates weigh 0
        out[j0:j1] = torch.einsum("nk,nkc->nc", w, src_l[idx])
    return out


def propagate(
    features: Iterable[Tensor],
    first_labels: Tensor,
    grid: tuple[int, int],
    params: Propagation = Propagation(),
) -> Iterator[Tensor]:
    """Propagate the first frame's labels through a video.

    Args:
        features: per frame (first frame first), (N, D) features; L2-normalised here.
        first_labels: (N, C) soft labels of the first frame.
        grid: (h, w) patch grid, N = h * w.
        params: context length, top-k, temperature and neighbourhood radius.

    Yields:
        (N, C) soft labels per frame, the first frame's own labels first.
    """
    frames = iter(features)
    first = F.normalize(next(frames).float(), dim=1)
    allowed = neighbourhood(*grid, params.radius, device=first.device)
    recent: deque[tuple[Tensor, Tensor]] = deque(maxlen=params.n_last_frames)
    first_labels = first_labels.to(first.device)
    yield first_labels
    for feats in frames:
        target = F.normalize(feats.float(), dim=1)
        ctx = [(first, first_labels), *recent]
        soft = propagate_step(target, [c[0] for c in ctx], [c[1] for c in ctx], allowed, params.topk,
                              params.temperature)  # fmt: skip
        recent.append((target, soft))
        yield soft


def soft_to_labels(soft: Tensor, grid: tuple[int, int], height: int, width: int) -> Tensor:
    """(N, C) soft labels on the patch grid -> (height, width) int64 label indices
    (bilinear upsampling of each channel, then argmax)."""
    maps = soft.T.reshape(1, -1, *grid)  # (1, C, h, w)
    up = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)
    return up[0].argmax(dim=0)
