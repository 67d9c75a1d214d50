"""Average pairwise cosine similarity of tokens: the collapse monitor and its regulariser."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def avg_similarity(x: Tensor) -> Tensor:
    """S(X): mean over all token pairs (diagonal included) of cos(x_i, x_j), mean over batch.

    Uses mean_ij <u_i, u_j> = ||mean_i u_i||^2 for unit vectors u, so it costs O(T*D), not T^2.

    Args:
        x: (B, T, D).

    Returns:
        scalar in [0, 1] (1 = all tokens of an image point the same way: collapse).
    """
    u = F.normalize(x.float(), dim=-1)
    return u.mean(dim=1).pow(2).sum(dim=-1).mean()


def similarity_regularizer(s: Tensor, goal: float) -> Tensor:
    """(S - goal)^2 for one token set; the caller weights and sums the sets."""
    return (s - goal) ** 2
