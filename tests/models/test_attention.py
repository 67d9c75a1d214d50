"""The library's attention: numerics against a naive loop, and the swap for timm's Attention."""

from __future__ import annotations

import math

import pytest
import torch
from timm.models.vision_transformer import Block

from latentmim.models.attention import CrossAttention, SelfAttention, attend, use_library_attention


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, one (batch, head, query) at a time in float64."""
    b, h, lq, d = q.shape
    out = torch.zeros(b, h, lq, d, dtype=torch.float64)
    for i in range(b):
        for j in range(h):
            for t in range(lq):
                w = torch.softmax((k[i, j].double() @ q[i, j, t].double()) / math.sqrt(d), dim=0)
                out[i, j, t] = w @ v[i, j].double()
    return out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_attend_equals_naive_loop_in_fp32_and_under_cpu_bf16_autocast(precision):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (5, 7, 7))
    ref = naive_attention(q, k, v)
    if precision == "fp32":
        out = attend(q, k, v)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=1e-6)
    else:
        # inputs arrive in bf16 (outputs of autocast linears); the kernel runs on fp32 upcasts
        qb, kb, vb = (x.bfloat16() for x in (q, k, v))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = attend(qb, kb, vb)
        assert out.dtype == torch.bfloat16
        ref_b = naive_attention(qb.float(), kb.float(), vb.float())
        torch.testing.assert_close(out.double(), ref_b, atol=1e-2, rtol=1e-2)


def test_attend_gradients_under_bf16_autocast_match_fp32():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=g).bfloat16().requires_grad_() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attend(q, k, v).float().square().sum().backward()
    q32, k32, v32 = (x.detach().float().requires_grad_() for x in (q, k, v))
    torch.nn.functional.scaled_dot_product_attention(q32, k32, v32).square().sum().backward()
    for a, b in ((q, q32), (k, k32), (v, v32)):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=5e-2, rtol=5e-2)


def test_swapping_timm_attention_keeps_state_dict_and_outputs():
    torch.manual_seed(0)
    blk = Block(32, 4, qkv_bias=True).eval()
    x = torch.randn(2, 9, 32)
    before, keys = blk(x), list(blk.state_dict())
    use_library_attention([blk])
    assert isinstance(blk.attn, SelfAttention)
    assert list(blk.state_dict()) == keys
    torch.testing.assert_close(blk(x), before, atol=1e-6, rtol=1e-6)


def test_cross_attention_equals_naive_loop():
    torch.manual_seed(0)
    m = CrossAttention(16, 2)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    q = m.q(x).reshape(2, 5, 2, 8).transpose(1, 2)
    k, v = m.kv(ctx).reshape(2, 3, 2, 2, 8).permute(2, 0, 3, 1, 4)
    ref = m.proj(naive_attention(q, k, v).float().transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(m(x, ctx), ref, atol=1e-5, rtol=1e-5)
