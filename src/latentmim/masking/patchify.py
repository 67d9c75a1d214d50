"""Cutting images into (possibly non-contiguous) patches.

With a patch gap g, a training crop of side G*(P+g) is divided into G x G cells of P+g pixels,
and from each cell one P x P patch is cut at a random offset in [0, g) per axis. With g = 0 this
is the usual contiguous patchify. Patches are flattened in (row, col, channel) order, the layout
that :meth:`ViTEncoder.embed_patches` expects.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patch_pixel_index(
    ids: Tensor, offsets: Tensor | None, grid_size: int, patch_size: int, patch_gap: int
) -> Tensor:
    """Linear pixel index (into an H*W image) of every pixel of the requested patches.

    Args:
        ids: (B, K) grid ids.
        offsets: (B, N, 2) per-patch (dy, dx) offsets indexed by patch id, or None for gap 0.
        grid_size, patch_size, patch_gap: G, P, g.

    Returns:
        (B, K, P, P) int64 indices into the flattened H*W plane, H = W = G*(P+g).
    """
    cell = patch_size + patch_gap
    width = grid_size * cell
    top = (ids // grid_size) * cell  # (B, K)
    left = (ids % grid_size) * cell
    if offsets is not None:
        off = torch.gather(offsets, 1, ids[..., None].expand(-1, -1, 2))  # (B, K, 2)
        top = top + off[..., 0]
        left = left + off[..., 1]
    ar = torch.arange(patch_size, device=ids.device)
    rows = top[..., None, None] + ar[:, None]  # (B, K, P, 1)
    cols = left[..., None, None] + ar[None, :]  # (B, K, 1, P)
    return rows * width + cols  # (B, K, P, P)


def gather_patches(
    imgs: Tensor, ids: Tensor, offsets: Tensor | None, grid_size: int, patch_size: int, patch_gap: int
) -> Tensor:
    """Cut the patches ``ids`` out of ``imgs`` in one gather.

    Args:
        imgs: (B, C, H, W) with H = W = G*(P+g).
        ids: (B, K) grid ids (any order; output follows it).
        offsets: (B, N, 2) or None.

    Returns:
        (B, K, P*P*C) patches flattened in (row, col, channel) order.
    """
    b, c, h, w = imgs.shape
    side = grid_size * (patch_size + patch_gap)
    if h != side or w != side:
        raise ValueError(f"image side {h}x{w} does not match grid x (patch + gap) = {side}")
    k = ids.shape[1]
    pix = patch_pixel_index(ids, offsets, grid_size, patch_size, patch_gap).reshape(b, -1, 1)
    flat = imgs.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, H*W, C), channels last
    out = torch.gather(flat, 1, pix.expand(-1, -1, c))  # (B, K*P*P, C)
    return out.reshape(b, k, patch_size * patch_size * c)


def centre_cut_patches(imgs: Tensor, grid_size: int, patch_size: int, patch_gap: int) -> Tensor:
    """All G*G patches of a gapped image, each cut at its cell's centre (offset g // 2 per axis).

    The deterministic counterpart of the training's random offsets in [0, g): how an evaluation
    can read a G*(P+g) image the way pre-training with a gap does.

    Args:
        imgs: (B, C, G*(P+g), G*(P+g)).

    Returns:
        (B, G*G, P*P*C) in id order, flattened as :func:`gather_patches` does.
    """
    ids = all_ids(imgs.shape[0], grid_size, imgs.device)
    offsets = torch.full((imgs.shape[0], ids.shape[1], 2), patch_gap // 2, dtype=torch.long, device=imgs.device)
    return gather_patches(imgs, ids, offsets, grid_size, patch_size, patch_gap)


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """Plain contiguous patchify of all patches in id order.

    Args:
        imgs: (B, C, G*P, G*P).

    Returns:
        (B, G*G, P*P*C).
    """
    b, c, h, w = imgs.shape
    g = h // patch_size
    x = imgs.reshape(b, c, g, patch_size, g, patch_size)
    x = torch.einsum("bchpwq->bhwpqc", x)
    return x.reshape(b, g * g, patch_size * patch_size * c)


def all_ids(batch_size: int, grid_size: int, device: torch.device | str = "cpu") -> Tensor:
    """(B, G*G) ids 0..N-1 in raster order, for encoding whole images."""
    return torch.arange(grid_size * grid_size, device=device).expand(batch_size, -1)
