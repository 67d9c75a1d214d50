"""Refuse an optimizer step whose gradients are not finite.

bf16 and fp32 runs have no loss scaler, so a finite loss with an inf/NaN gradient (an overflow in
the backward pass) would be applied, and the blown-up weights saved over the last good
checkpoint. The engine calls :func:`gradient_norm` before every step that no scaler guards.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def gradient_norm(params: Iterable[nn.Parameter]) -> float:
    """L2 norm of all gradients together (inf or NaN if any entry is); 0 without gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6
        return float(torch.nn.utils.get_total_norm(grads))
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


