"""Regression losses on latents: the MSE / L1 / Huber / normalised-L2 rows of the loss ablation."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def normalize_per_token(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Standardise every token over its channels (layer norm without affine). x: (..., D)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def regression_loss(
    pred: Tensor, target: Tensor, kind: str, huber_delta: float = 1.0, normalize: bool = False
) -> Tensor:
    """Mean over targets of a per-token distance, in fp32.

    Args:
        pred, target: (B, T, D).
        kind: ``mse`` (squared L2 per token averaged over channels), ``l1``, ``huber`` or
            ``norm_l2`` (MSE to targets standardised per token, as MAE's norm_pix_loss).
        huber_delta: delta of the Huber loss.
        normalize: standardise the targets per token before mse/l1/huber.
    """
    pred, target = pred.float(), target.float()
    if kind == "norm_l2" or normalize:
        target = normalize_per_token(target)
    if kind in ("mse", "norm_l2"):
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "huber":
        return F.huber_loss(pred, target, delta=huber_delta)
    raise ValueError(f"unknown regression loss {kind!r}")
