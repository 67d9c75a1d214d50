"""PCAE's progressive token reduction inside a timm ViT while fine-tuning (docs/method.md#pcae).

After each of three blocks (ViT-B: the 3rd, 6th and 9th of 12,
:func:`latentmim.methods.token_drop.finetune_drop_blocks`), every image drops ``ratio`` of its
current patch tokens, keeping its most distinctive ones by the rule of PCAE's pre-training
(:func:`latentmim.methods.token_drop.rank_keep`: lowest cosine similarity to the image's mean
token). ViT-B/16 at ratio 0.4 runs on 196 -> 118 -> 71 -> 43 patch tokens: 9.6 GMACs instead
of 17.6 (the paper's Table 5: 9.53), faster at a small accuracy cost. The cls token is always
kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from latentmim.methods.token_drop import finetune_drop_blocks, finetune_kept, rank_keep


def tokens_kept(num_tokens: int, ratio: float) -> int:
    """Patch tokens left after dropping ``ratio`` of ``num_tokens`` (at least one)."""
    return finetune_kept(num_tokens, ratio)


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
    """Run a timm ViT classifier, dropping tokens after each block of ``after``.

    Holds the timm model as ``vit`` (its state dict is the timm checkpoint). ``ratio`` applies
    in training; at evaluation only when ``drop_at_eval``.

    Args:
        vit: a timm VisionTransformer with a cls token.
        ratio: fraction of the current patch tokens each stage drops (0 = the plain model).
        after: 0-based blocks after which tokens are dropped; None = PCAE's three stages
            (:func:`~latentmim.methods.token_drop.finetune_drop_blocks`). One int is one stage.
        drop_at_eval: also drop in eval mode.
    """

    def __init__(self, vit: VisionTransformer, ratio: float, after: int | Sequence[int] | None = None,
                 drop_at_eval: bool = False) -> None:
        super().__init__()
        depth = len(vit.blocks)
        if after is None:
            blocks = finetune_drop_blocks(depth)
        else:
            blocks = [after] if isinstance(after, int) else list(after)
        if not blocks or any(not 0 <= b < depth for b in blocks) or len(set(blocks)) != len(blocks):
            raise ValueError(f"token drop blocks must be distinct blocks in [0, {depth - 1}], got {blocks}")
        self.vit = vit
        self.ratio = ratio
        self.after = tuple(sorted(blocks))
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
            if i in self.after:
                x = drop_redundant_tokens(x, ratio, v.num_prefix_tokens)  # (B, P + K_i, D)
        return v.forward_head(v.norm(x))
