"""Patch-token feature maps of an encoder at any input resolution (dense evaluations).

The encoder was trained on a G x G grid. Larger (or non-square) inputs give an h x w grid, so
the position table is rebuilt for it:

- ``pe_mode="interpolate"`` (default): the fixed 2-D sin-cos table is evaluated at fractional
  positions ``(i + 0.5) * G / h - 0.5``, so the new grid spans the same position range as the
  trained one and every patch keeps its position *relative to the image*; a learned table
  (``freeze_pe=False``) is resized bicubically instead, which is the same idea.
- ``pe_mode="extend"``: integer positions 0..h-1 (``sincos_2d`` of the larger grid), i.e. the
  grid is extended beyond the positions seen in training (sin-cos tables only).

At the trained grid both give the encoder's own table exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import DENSE_FEATURES, PE_MODES
from latentmim.data.info import dataset_stats
from latentmim.models.pos_embed import sincos_1d, sincos_2d, spacing_factor
from latentmim.models.vit import ViTEncoder
from latentmim.training.precision import autocast


def training_normalisation(dataset: str, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the data an encoder was pre-trained on (ImageNet's otherwise)."""
    mean, std = dataset_stats(dataset)
    if len(mean) != in_chans:  # e.g. a 1-channel encoder trained on an unlisted dataset
        mean, std = (float(np.mean(mean)),) * in_chans, (float(np.mean(std)),) * in_chans
    return mean, std


def image_to_tensor(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """(H, W, C) or (H, W) uint8 -> (1, C, H, W) float32 normalised."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).div_(255.0)  # a copy: inputs may be read-only
    x = x[..., None] if x.ndim == 2 else x
    x = (x - torch.tensor(mean)) / torch.tensor(std)
    return x.permute(2, 0, 1)[None].contiguous()


def patch_aligned_size(height: int, width: int, short_side: int, patch_size: int) -> tuple[int, int]:
    """Resize target keeping the aspect ratio: the short side becomes ``short_side`` and both
    sides are rounded to a multiple of the patch size (at least one patch)."""
    scale = short_side / min(height, width)
    h = max(patch_size, int(round(height * scale / patch_size)) * patch_size)
    w = max(patch_size, int(round(width * scale / patch_size)) * patch_size)
    return h, w


def _sincos_spacing(encoder: ViTEncoder) -> float | None:
    """The cell spacing of the encoder's fixed sin-cos table (authors' or MAE's), None if learned."""
    table = encoder.pos_embed[0, 1:].detach().float().cpu()
    g = encoder.grid_size
    for spacing in (spacing_factor("authors", g), spacing_factor("integer", g)):
        if torch.allclose(table, sincos_2d(encoder.embed_dim, g, cls_token=False, spacing=spacing), atol=1e-5):
            return spacing
    return None


def position_table(encoder: ViTEncoder, grid_h: int, grid_w: int, pe_mode: str = "interpolate") -> Tensor:
    """Position embeddings of an ``grid_h x grid_w`` grid of patches.

    Args:
        encoder: the encoder (its own table is for ``grid_size x grid_size``).
        grid_h, grid_w: patches per column and per row.
        pe_mode: ``interpolate`` or ``extend`` (see the module docstring).

    Returns:
        (grid_h * grid_w, D) on the encoder's device, row-major like the patch ids.
    """
    if pe_mode not in PE_MODES:
        raise ConfigError(f"pe_mode: {pe_mode!r} is not one of {', '.join(PE_MODES)}")
    g, dim = encoder.grid_size, encoder.embed_dim
    own = encoder.pos_embed[0, 1:]
    if (grid_h, grid_w) == (g, g):
        return own
    spacing = _sincos_spacing(encoder)
    if spacing is None:
        if pe_mode == "extend":
            raise ConfigError("pe_mode: 'extend' needs a fixed sin-cos table; this encoder learned its own")
        grid = own.reshape(1, g, g, dim).permute(0, 3, 1, 2).float()
        out = torch.nn.functional.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return out[0].permute(1, 2, 0).reshape(grid_h * grid_w, dim).to(own.dtype)
    if pe_mode == "extend":
        rows_1d = torch.arange(grid_h, dtype=torch.float64)
        cols_1d = torch.arange(grid_w, dtype=torch.float64)
    else:
        rows_1d = (torch.arange(grid_h, dtype=torch.float64) + 0.5) * g / grid_h - 0.5
        cols_1d = (torch.arange(grid_w, dtype=torch.float64) + 0.5) * g / grid_w - 0.5
    rows_1d, cols_1d = rows_1d * spacing, cols_1d * spacing  # the training table's coordinates
    rows = rows_1d.repeat_interleave(grid_w)  # (h*w,) row of patch n
    cols = cols_1d.repeat(grid_h)  # (h*w,) column of patch n
    # Same layout as sincos_2d: first half embeds the column, second half the row.
    table = torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)
    return table.to(device=own.device, dtype=own.dtype)


@torch.no_grad()
def dense_tokens(
    encoder: ViTEncoder, imgs: Tensor, feature: str = "prenorm", pe_mode: str = "interpolate"
) -> Tensor:
    """Patch tokens of whole images of any size divisible by the patch size.

    Args:
        encoder: the online encoder (eval mode).
        imgs: (B, C, H, W) normalised images, H and W multiples of P.
        feature: ``prenorm`` (tokens before the final norm, as in the NN protocol) or
            ``normed`` (after it).
        pe_mode: position table for a grid other than the trained one.

    Returns:
        (B, H/P, W/P, D) float32 patch features (cls dropped, not L2-normalised).
    """
    if feature not in DENSE_FEATURES:
        raise ConfigError(f"feature: {feature!r} is not one of {', '.join(DENSE_FEATURES)}")
    b, _, height, width = imgs.shape
    p = encoder.patch_size
    if height % p or width % p:
        raise ValueError(f"image {height}x{width} is not a multiple of the patch size {p}")
    h, w = height // p, width // p
    # The stride-P convolution is the patch embedding (timm's layout, no size check).
    x = encoder.patch_embed.proj(imgs).flatten(2).transpose(1, 2)  # (B, h*w, D)
    x = x + position_table(encoder, h, w, pe_mode)[None]
    cls = (encoder.cls_token + encoder.pos_embed[:, :1]).expand(b, -1, -1)  # (B, 1, D)
    x = encoder.blocks(torch.cat([cls, x], dim=1))  # (B, 1+h*w, D)
    if feature == "normed":
        x = encoder.norm(x)
    return x[:, 1:].float().reshape(b, h, w, -1)


# (1, C, H, W) normalised image -> (H/P, W/P, D) patch features
FeatureFn = Callable[[Tensor], Tensor]


def encoder_features(encoder: ViTEncoder, feature: str = "prenorm", pe_mode: str = "interpolate",
                     precision: str = "fp32") -> FeatureFn:  # fmt: skip
    """Feature function of an encoder (autocast per ``precision``; features come back fp32)."""
    def fn(x: Tensor) -> Tensor:
        with autocast(precision, x.device):
            return dense_tokens(encoder, x, feature, pe_mode)[0]

    return fn


def pixel_features(patch_size: int) -> FeatureFn:
    """Raw normalised pixels of each patch, (h, w, P*P*C): the colour-only baseline."""
    def fn(x: Tensor) -> Tensor:
        p = patch_size
        cells = x[0].unfold(1, p, p).unfold(2, p, p)  # (C, h, w, P, P); any aspect ratio
        return cells.permute(1, 2, 3, 4, 0).flatten(2)  # (h, w, P*P*C), (row, col, channel) order

    return fn
