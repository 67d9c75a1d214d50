"""Decoder block with self-attention among queries, then cross-attention to the context."""

from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from timm.models.vision_transformer import Attention
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Multi-head attention of queries (B, Lq, D) to a context (B, Lk, D)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, lq, d = x.shape
        h = self.num_heads
        q = self.q(x).reshape(b, lq, h, d // h).transpose(1, 2)  # (B, h, Lq, d/h)
        kv = self.kv(context).reshape(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])  # (B, h, Lq, d/h)
        return self.proj(out.transpose(1, 2).reshape(b, lq, d))


class CrossBlock(nn.Module):
    """Pre-norm block: self-attention -> cross-attention to the normed context -> MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.norm1 = norm(dim)
        self.self_attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
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
