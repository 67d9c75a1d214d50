"""PCAE-style token dropping inside a timm ViT while fine-tuning (METHOD.md section 2).

After a chosen block, each image keeps only its most distinctive patch tokens, ranked by the
same rule as PCAE's pre-training (:func:`latentmim.methods.token_drop.rank_keep`: lowest cosine
similarity to the image's mean token). Later blocks run on fewer tokens, which raises
throughput at a small accuracy cost. The cls token is always kept.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from latentmim.methods.token_drop import rank_keep


def tokens_kept(num_tokens: int, ratio: float) -> int:
    """Patch tokens left after dropping ``ratio`` of ``num_tokens`` (at least one)."""
    return max(1, num_tokens - int(num_tokens * ratio))


def drop_redundant_tokens(x: Tensor, ratio: float, num_prefix: int = 1) -> Tensor:
    """Drop the ``ratio`` of patch tokens most similar to their image's mean token.

    Args:
        x: (B, P + N, D) tokens, the first ``num_prefix`` of them cls/register tokens.
        ratio: fraction of the N patch tokens to drop, in [0, 1).
        num_prefix: leading tokens that are always kept.

    Returns:
        (B, P + K, D) with K = N - floor(N * ratio); kept patch tokens stay in their order.
    """
    if ratio <= 0:
        return x
    prefix, tokens = x[:, :num_prefix], x[:, num_prefix:]  # (B, P, D), (B, N, D)
    keep = tokens_kept(tokens.shape[1], ratio)
    idx = rank_keep(tokens, keep).sort(dim=1).values  # (B, K), back in grid order
    kept = tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1]))  # (B, K, D)
    return torch.cat([prefix, kept], dim=1)


class TokenDropViT(nn.Module):
    """Run a timm ViT classifier, dropping tokens after block ``after``.

    Holds the timm model as ``vit`` (its state dict is the timm checkpoint). ``ratio`` applies
    in training; at evaluation only when ``drop_at_eval``.

    Args:
        vit: a timm VisionTransformer with a cls token.
        ratio: fraction of patch tokens dropped (0 = the plain model).
        after: 0-based index of the block after which tokens are dropped.
        drop_at_eval: also drop in eval mode.
    """

    def __init__(self, vit: VisionTransformer, ratio: float, after: int, drop_at_eval: bool = False) -> None:
        super().__init__()
        if not 0 <= after < len(vit.blocks):
            raise ValueError(f"token_drop_after must be in [0, {len(vit.blocks) - 1}], got {after}")
        self.vit = vit
        self.ratio = ratio
        self.after = after
        self.drop_at_eval = drop_at_eval

    def forward(self, imgs: Tensor) -> Tensor:
        """(B, C, H, W) images -> (B, num_classes) logits."""
        ratio = self.ratio if (self.training or self.drop_at_eval) else 0.0
        if ratio <= 0:
            return self.vit(imgs)
        v = self.vit
        x = v.norm_pre(v.patch_drop(v._pos_embed(v.patch_embed(imgs))))  # (B, 1+N, D)
        for i, block in enumerate(v.blocks):
            x = block(x)
            if i == self.after:
                x = drop_redundant_tokens(x, ratio, v.num_prefix_tokens)
        return v.forward_head(v.norm(x))
