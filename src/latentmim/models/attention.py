"""Attention layers, and the precision their kernel runs in.

Every attention in the library goes through :func:`attend`, one call of
``F.scaled_dot_product_attention``. Why not just that call: PyTorch's CPU flash-attention
kernel is slow in bf16 (slower than in fp32, and its backward 2-5x slower). Measured on the
2-core AMD EPYC (avx512_bf16) dev machine, batch 16, ms (bf16 flash -> fp32 flash on upcast
q, k, v):

    target encoder, 196 tokens, 6 heads of 64, forward:         11 -> 8
    decoder self-attention, 176 tokens, 16 heads of 32, f+b:   109 -> 49
    decoder cross-attention, 176 queries x 20 keys, f+b:        54 -> 11
    encoder on 20 visible tokens, f+b:                          4.3 -> 0.8

The math kernel is about as fast as the fp32 flash kernel but keeps the attention matrix for
the backward pass (+250 MB peak at the reference config). So on CPU under bf16 the attention
itself runs in fp32 (the matmuls around it stay bf16); CUDA and fp32 use PyTorch's default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _bf16_on_cpu(x: Tensor) -> bool:
    if x.device.type != "cpu":
        return False
    if x.dtype == torch.bfloat16:
        return True
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def attend(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
    """Scaled dot-product attention, q (B, h, Lq, d), k and v (B, h, Lk, d) -> (B, h, Lq, d).

    ``attn_mask`` (broadcastable to (B, h, Lq, Lk)) and ``is_causal`` as in ``F.scaled_dot_product_attention``.
    """
    if _bf16_on_cpu(q):
        with torch.autocast("cpu", enabled=False):  # autocast would cast the upcast inputs back
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask, is_causal=is_causal)
        return out.to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=is_causal)


class SelfAttention(nn.Module):
    """Multi-head self-attention over (B, L, D) with timm's parameter names (``qkv``, ``proj``),
    so it can stand in for timm's ``Attention`` without changing a state dict."""

    def __init__(self, dim: int, num_heads: int, qkv: nn.Linear | None = None, proj: nn.Linear | None = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = qkv if qkv is not None else nn.Linear(dim, 3 * dim)
        self.proj = proj if proj is not None else nn.Linear(dim, dim)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """x (B, L, D) -> (B, L, D); ``attn_mask``, ``is_causal`` as in :func:`attend` (timm's blocks pass them)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        return self.proj(attend(q, k, v, attn_mask, is_causal).transpose(1, 2).reshape(b, n, d))  # q, k, v: (B, h, L, d/h)


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
        return self.proj(attend(q, kv[0], kv[1]).transpose(1, 2).reshape(b, lq, d))


def use_library_attention(blocks: nn.Module) -> None:
    """Swap timm's ``Attention`` in each block of ``blocks`` for :class:`SelfAttention`, reusing
    its linears (same parameters, same state-dict keys, no random numbers drawn)."""
    for blk in blocks:
        a = blk.attn
        # attributes differ across timm 1.x releases (``norm`` and ``gate`` are recent)
        extras = [getattr(a, name, None) for name in ("q_norm", "k_norm", "norm")]
        if any(m is not None and not isinstance(m, nn.Identity) for m in extras) or getattr(a, "gate", None) is not None \
                or a.attn_drop.p:
            raise ValueError("use_library_attention: only plain timm attention (no qk-norm, gate or dropout) is supported")
        blk.attn = SelfAttention(a.qkv.in_features, a.num_heads, a.qkv, a.proj)
