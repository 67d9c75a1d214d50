"""Decoder block with self-attention among queries, then cross-attention to the context."""

from __future__ import annotations

from functools import partial

from timm.layers import DropPath, Mlp
from torch import Tensor, nn

from latentmim.models.attention import CrossAttention, SelfAttention


class CrossBlock(nn.Module):
    """Pre-norm block: self-attention -> cross-attention to the normed context -> MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.norm1 = norm(dim)
        self.self_attn = SelfAttention(dim, num_heads)
        self.norm_q = norm(dim)
        self.norm_kv = norm(dim)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """x: (B, Lq, D) queries; context: (B, Lk, D). Returns (B, Lq, D)."""
        x = x + self.drop_path(self.self_attn(self.norm1(x)))
        x = x + self.drop_path(self.cross_attn(self.norm_q(x), self.norm_kv(context)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
