"""I-JEPA's predictor: a narrow ViT from context tokens to the latents of one target block.

The predictor embeds the context encoder's tokens into a narrower width, adds their fixed sin-cos
positions, appends one mask token per target patch (plus that patch's position), runs
self-attention blocks over [context, mask tokens], and maps the mask tokens' outputs back to the
encoder width (docs/method.md#i-jepa). It runs once per target block, the context repeated for
each, as the authors' ``VisionTransformerPredictor`` does; parameter names follow theirs.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from latentmim.models.attention import use_library_attention
from latentmim.models.pos_embed import sincos_2d


class JEPAPredictor(nn.Module):
    """Narrow pre-norm ViT predictor (qkv bias, LayerNorm eps 1e-6, MLP ratio 4, no cls token).

    Args:
        embed_dim: encoder width D (input and output).
        grid_size: G; positions are looked up by patch id in a fixed G*G sin-cos table.
        pred_dim: predictor width E (paper: 384).
        depth: predictor blocks (paper: 12 for ViT-H/14).
        num_heads: attention heads (the authors use the encoder's head count).
        pos_spacing: coordinate of grid cell 1 in the table (1 in the authors' code;
            :func:`~latentmim.models.pos_embed.spacing_factor`).
        init_std: std of the truncated-normal init of linears and the mask token (authors: 0.02).
    """

    def __init__(
        self,
        embed_dim: int,
        grid_size: int,
        pred_dim: int = 384,
        depth: int = 6,
        num_heads: int = 12,
        pos_spacing: float = 1.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.predictor_embed = nn.Linear(embed_dim, pred_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, pred_dim))
        # Fixed table without a cls row; a buffer, not a parameter (not in the state dict).
        self.register_buffer("pos_embed", sincos_2d(pred_dim, grid_size, cls_token=False, spacing=pos_spacing),
                             persistent=False)
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.predictor_blocks = nn.Sequential(
            *(Block(pred_dim, num_heads, 4.0, qkv_bias=True, norm_layer=norm) for _ in range(depth))
        )
        use_library_attention(self.predictor_blocks)
        self.predictor_norm = norm(pred_dim)
        self.predictor_proj = nn.Linear(pred_dim, embed_dim)
        self._init_weights(init_std)

    def _init_weights(self, std: float) -> None:
        # The authors' init: truncated normal (+-2, absolute) linears and mask token, zero biases,
        # and each block's output projections scaled by 1/sqrt(2 * (block index + 1)).
        nn.init.trunc_normal_(self.mask_token, std=std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            for i, blk in enumerate(self.predictor_blocks):
                blk.attn.proj.weight.div_(math.sqrt(2.0 * (i + 1)))
                blk.mlp.fc2.weight.div_(math.sqrt(2.0 * (i + 1)))

    def forward(self, ctx: Tensor, ctx_ids: Tensor, trg_ids: Tensor) -> Tensor:
        """Predict the latents of every target block from the context tokens.

        Args:
            ctx: (B, Kc, D) context encoder outputs.
            ctx_ids: (B, Kc) their patch ids.
            trg_ids: (B, M, Kt) patch ids of M target blocks per image.

        Returns:
            (B, M, Kt, D) predictions; block m attends to the context and its own mask tokens only.
        """
        b, m, kt = trg_ids.shape
        kc = ctx.shape[1]
        x = self.predictor_embed(ctx) + self.pos_embed[ctx_ids]  # (B, Kc, E)
        q = self.mask_token + self.pos_embed[trg_ids]  # (B, M, Kt, E)
        x = x[:, None].expand(-1, m, -1, -1)  # the context repeated per target block
        seq = torch.cat([x, q], dim=2).flatten(0, 1)  # (B*M, Kc+Kt, E)
        seq = self.predictor_norm(self.predictor_blocks(seq))
        return self.predictor_proj(seq[:, kc:]).view(b, m, kt, -1)
