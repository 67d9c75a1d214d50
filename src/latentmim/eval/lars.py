"""LARS (You et al., 2017), as used by MAE's linear probe.

For every parameter with more than one dimension (weight matrices) the update is
``d = grad + wd * p`` rescaled by the trust ratio ``eta * ||p|| / ||d||`` (1 when either norm
is zero). One-dimensional parameters (biases, norm scales) get neither weight decay nor the
trust ratio: their update is the plain gradient. Then heavy-ball momentum without dampening:
``mu = momentum * mu + d``, ``p -= lr * mu``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling with momentum.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (the schedule sets it per step).
        weight_decay: L2 coefficient added to the gradient of matrices.
        momentum: heavy-ball momentum.
        trust_coefficient: eta of the trust ratio.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 0.0,
                 weight_decay: float = 0.0, momentum: float = 0.9,
                 trust_coefficient: float = 0.001) -> None:
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        trust_coefficient=trust_coefficient)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=group["weight_decay"])
                    p_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    ratio = group["trust_coefficient"] * p_norm / d_norm
                    # A zero weight (fresh init) or a zero update keeps the raw step.
                    ratio = torch.where((p_norm > 0) & (d_norm > 0), ratio, torch.ones_like(ratio))
                    d = d * ratio
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(group["momentum"]).add_(d)
                p.add_(mu, alpha=-group["lr"])
        return loss
