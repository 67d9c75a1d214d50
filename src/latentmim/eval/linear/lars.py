"""LARS (You et al., 2017) for MAE's linear probe, from timm (``timm.optim.Lars``).

MAE's rule: matrices get weight decay and the trust ratio ``eta * ||p|| / ||update||`` (1 when a
norm is zero); 1-D parameters (biases, norm scales) get neither; then heavy-ball momentum without
dampening, ``mu = momentum * mu + d``, ``p -= lr * mu``. timm's optimizer does the same given two
parameter groups: matrices with ``always_adapt=True`` (the trust ratio also when the decay is 0,
MAE's probe default) and vectors with neither. One difference, with decay > 0 only: timm divides by
``||grad|| + wd * ||p||`` (an upper bound of MAE's ``||grad + wd * p||``); with MAE's probe setting
(``weight_decay=0``) the two rules are the same (tests/eval/test_eval_linear.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from timm.optim import Lars
from torch import nn


def build_lars(params: Iterable[nn.Parameter], lr: float = 0.0, weight_decay: float = 0.0, momentum: float = 0.9,
               trust_coefficient: float = 0.001) -> Lars:
    """timm's LARS with MAE's parameter groups (see the module docstring)."""
    params = [p for p in params if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay, "always_adapt": True},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "always_adapt": False}]
    return Lars([g for g in groups if g["params"]], lr=lr, momentum=momentum, trust_coeff=trust_coefficient)
