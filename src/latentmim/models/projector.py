"""Projector MLP applied to every token of the online encoder (Latent MIM, item 3)."""

from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    """``depth`` layers of Linear(no bias) -> LN -> GELU, the last one Linear -> LN (no GELU).

    ``depth=0`` is the identity (the "projector: none" ablation row). Biases are omitted because
    every Linear is followed by a LayerNorm, which would cancel them.

    Args:
        dim: token width D (input and output).
        hidden_dim: width of the hidden layers (``proj.mlp_dim``, 4096 in the paper).
        depth: number of Linear layers (``proj.mlp_depth``, 3 in the paper).
    """

    def __init__(self, dim: int, hidden_dim: int = 4096, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            d_in = dim if i == 0 else hidden_dim
            last = i == depth - 1
            d_out = dim if last else hidden_dim
            layers += [nn.Linear(d_in, d_out, bias=False), nn.LayerNorm(d_out)]
            if not last:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, L, D)."""
        return self.mlp(x)
