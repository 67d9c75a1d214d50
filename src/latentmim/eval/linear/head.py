"""MAE's linear-probe head: BatchNorm without affine parameters, then a linear classifier."""

from __future__ import annotations

from torch import Tensor, nn


class LinearProbeHead(nn.Module):
    """``BatchNorm1d(affine=False, eps=1e-6)`` then ``Linear`` (weights N(0, 0.01^2), bias 0).

    The parameter-free BatchNorm only whitens each feature dimension (MAE: frozen features
    have very different scales per dimension, which a linear layer trained with LARS handles
    badly); at test time it uses the running statistics, so it is still a linear classifier.

    Args:
        dim: feature width D.
        num_classes: C.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.linear.weight, std=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) features -> (B, C) logits."""
        return self.linear(self.norm(x))
