"""Finiteness checks of gradients and weights.

bf16 and fp32 runs have no loss scaler, so a finite loss with an inf/NaN gradient (an overflow in
the backward pass) is applied like any other step. Training does not wait on the device to check
each step; instead the weights are checked before every save, so non-finite weights never reach a
checkpoint (:func:`nonfinite_tensors`), and the evaluation heads check their gradients
(:func:`gradient_norm`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def gradient_norm(params: Iterable[nn.Parameter]) -> float:
    """L2 norm of all gradients together (inf or NaN if any entry is); 0 without gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6
        return float(torch.nn.utils.get_total_norm(grads))
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def nonfinite_tensors(tensors: Iterable[Tensor]) -> Tensor:
    """How many of ``tensors`` hold a NaN or inf, as a 0-d tensor (no wait on the device).

    Sharded (FSDP) parameters are checked on this process's shard; sum over processes for the
    whole model.
    """
    local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
    flags = [~torch.isfinite(t.detach()).all() for t in local if t.is_floating_point()]
    if not flags:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack(flags).sum().to(torch.float64)
