"""Patch discrimination loss (InfoNCE among the target patches of one image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def standardize_tokens(x: Tensor, eps: float = 1e-4) -> Tensor:
    """Standardise each feature across the tokens of its image.

    Args:
        x: (B, T, D).

    Returns:
        (x - mean_T) / (std_T + eps), statistics over the token axis per image and channel.
    """
    return (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + eps)


def patch_disc_loss(pred: Tensor, target: Tensor, tau: float = 0.2) -> Tensor:
    """InfoNCE where negatives are the other target patches of the same image.

    Predictions are standardised across the image's targets, then predictions and targets are
    L2-normalised; logits are cosine similarities / tau; the matching target is the label. The
    mean cross-entropy is multiplied by 2*tau (the authors' scaling). Computed in fp32.

    Args:
        pred: (B, T, D) predicted latents.
        target: (B, T, D) target latents (no gradient needed, but allowed).
        tau: temperature.

    Returns:
        scalar loss.
    """
    # Autocast would run the matmul in bf16/fp16 whatever the inputs' dtype: the logits stay fp32.
    with torch.autocast(pred.device.type, enabled=False):
        pred = F.normalize(standardize_tokens(pred.float()), dim=-1)
        target = F.normalize(target.float(), dim=-1)
        logits = pred @ target.transpose(1, 2) / tau  # (B, T, T)
        b, t, _ = logits.shape
        labels = torch.arange(t, device=logits.device).expand(b, t)
        return F.cross_entropy(logits.reshape(b * t, t), labels.reshape(-1)) * (2 * tau)
