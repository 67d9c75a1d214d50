"""Schedules as pure functions of the optimizer step, so resuming needs no replay.

``progress`` arguments are fractional epochs: step / steps_per_epoch.
"""

from __future__ import annotations

import math


def lr_at(epoch: float, base_lr: float, min_lr: float, warmup_epochs: float, epochs: float) -> float:
    """Linear warmup from ``min_lr`` to ``base_lr``, then half-cosine down to ``min_lr``.

    Args:
        epoch: fractional epoch (step / steps_per_epoch).
    """
    if epoch < warmup_epochs:
        return min_lr + (base_lr - min_lr) * epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    t = min((epoch - warmup_epochs) / span, 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def cosine_decay(epoch: float, start: float, end: float, epochs: float) -> float:
    """Cosine from ``start`` (epoch 0) to ``end`` (last epoch): the similarity goal g."""
    t = min(max(epoch / max(epochs, 1e-12), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def effective_lr(blr: float, batch_size: int, accum_iter: int, world_size: int, lr: float | None) -> float:
    """lr = blr * (batch per process * accumulation * processes) / 256, unless ``lr`` is given."""
    if lr is not None:
        return lr
    return blr * batch_size * accum_iter * world_size / 256
