"""Exponential moving average of parameters (the momentum target encoder)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def paired_parameters(target: nn.Module, online: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """Match every target parameter to the online parameter of the same name.

    The target may be shallower (``target_depth``): it has a subset of the online names.
    """
    online_params = dict(online.named_parameters())
    names = [n for n, _ in target.named_parameters()]
    missing = [n for n in names if n not in online_params]
    if missing:
        raise ValueError(f"target parameters without an online counterpart: {missing[:3]}")
    return [p for _, p in target.named_parameters()], [online_params[n] for n in names]


@torch.no_grad()
def ema_update(target: list[Tensor], online: list[Tensor], momentum: float) -> None:
    """t <- m*t + (1-m)*o for every pair, in two fused foreach calls (fp32 parameters)."""
    torch._foreach_mul_(target, momentum)
    torch._foreach_add_(target, online, alpha=1.0 - momentum)


def ema_momentum(base: float, progress: float) -> float:
    """Cosine ramp m = 1 - (1 - base) * (1 + cos(pi * progress)) / 2, progress in [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * progress)) / 2.0


def momentum_for_time_constant(steps: float) -> float:
    """The EMA momentum whose time constant 1 / (1 - m) is ``steps`` optimizer steps (>= 1)."""
    return 1.0 - 1.0 / max(steps, 1.0)
