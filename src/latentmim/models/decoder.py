"""Latent decoders: predict target-patch latents from the visible tokens.

Two designs (the decoder ablation of the paper):

* :class:`CrossAttentionDecoder` (the paper's best): one query per target patch attends to the
  visible tokens through cross-attention; queries may start from *visual cues*.
* :class:`SelfAttentionDecoder` (MAE-style): visible tokens and mask tokens are concatenated
  and processed by self-attention blocks together.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from latentmim.models.attention import use_library_attention
from latentmim.models.cross_block import CrossBlock
from latentmim.models.pos_embed import sincos_2d


class _LatentDecoderBase(nn.Module):
    """Shared pieces: input embedding, position table, mask token, visual cues, head."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid_size: int,
        embed_dim: int,
        visual_cues: bool,
        pos_spacing: float = 1.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, embed_dim)
        # Fixed table, row 0 (cls) is zero; stored as a buffer, it is not a parameter.
        self.register_buffer("pos_embed", sincos_2d(embed_dim, grid_size, spacing=pos_spacing),
                             persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.visual_cues = visual_cues
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, out_dim)

    def _init_linears(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def pos(self, ids: Tensor) -> Tensor:
        """(B, K) patch ids -> (B, K, E) position embeddings."""
        return self.pos_embed[1:][ids]

    def queries(self, vis_emb: Tensor, vis_ids: Tensor, trg_ids: Tensor) -> Tensor:
        """Initial target queries (mask token [+ visual cues] + own position).

        Args:
            vis_emb: (B, V, E) embedded visible tokens, cls excluded, without positions.
            vis_ids, trg_ids: (B, V), (B, T).

        Returns:
            (B, T, E).
        """
        q = self.mask_token.expand(trg_ids.shape[0], trg_ids.shape[1], -1)
        if self.visual_cues:
            q = q + cue_weights(self.pos(trg_ids), self.pos(vis_ids)) @ vis_emb
        return q + self.pos(trg_ids)


def cue_weights(pos_q: Tensor, pos_v: Tensor) -> Tensor:
    """Visual-cue weights: softmax over visible patches of position similarity.

    Args:
        pos_q: (B, T, E) position embeddings of the queries.
        pos_v: (B, V, E) position embeddings of the visible patches.

    Returns:
        (B, T, V), each row sums to 1; no learned parameters. Computed in fp32.
    """
    # Autocast would run the matmul in bf16/fp16 whatever the inputs' dtype: the weights stay fp32.
    with torch.autocast(pos_q.device.type, enabled=False):
        logits = pos_q.float() @ pos_v.float().transpose(1, 2) / math.sqrt(pos_q.shape[-1])
        return logits.softmax(dim=-1).to(pos_q.dtype)


class CrossAttentionDecoder(_LatentDecoderBase):
    """Cross-attention decoder with optional visual cues (docs/method.md#decoder, docs/method.md#visual-cues).

    Args:
        in_dim: encoder width D (input tokens, after the projector).
        out_dim: width of the predicted latents (the target encoder's D).
        grid_size: G.
        embed_dim, depth, num_heads: decoder size (512, 3, 16 in the paper).
        visual_cues: ``avg_vis_mask_token``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid_size: int,
        embed_dim: int = 512,
        depth: int = 3,
        num_heads: int = 16,
        visual_cues: bool = True,
        pos_spacing: float = 1.0,
    ) -> None:
        super().__init__(in_dim, out_dim, grid_size, embed_dim, visual_cues, pos_spacing)
        self.cls_query = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList(CrossBlock(embed_dim, num_heads) for _ in range(depth))
        self._init_linears()
        nn.init.normal_(self.cls_query, std=0.02)

    def forward(self, tokens: Tensor, vis_ids: Tensor, trg_ids: Tensor) -> Tensor:
        """Predict the latents of the target patches.

        Args:
            tokens: (B, 1+V, D) online tokens, cls first.
            vis_ids: (B, V); trg_ids: (B, T).

        Returns:
            (B, T, out_dim).
        """
        x = self.embed(tokens)  # (B, 1+V, E)
        # The cls token gets no position (row 0 of the table is zero).
        context = torch.cat([x[:, :1], x[:, 1:] + self.pos(vis_ids)], dim=1)
        q = self.queries(x[:, 1:], vis_ids, trg_ids)  # (B, T, E)
        q = torch.cat([self.cls_query.expand(q.shape[0], -1, -1), q], dim=1)  # (B, 1+T, E)
        for blk in self.blocks:
            q = blk(q, context)
        return self.head(self.norm(q[:, 1:]))  # cls query output dropped


class SelfAttentionDecoder(_LatentDecoderBase):
    """MAE-style decoder: self-attention over [cls, visible tokens, target queries].

    Args: as :class:`CrossAttentionDecoder`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid_size: int,
        embed_dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        visual_cues: bool = False,
        pos_spacing: float = 1.0,
    ) -> None:
        super().__init__(in_dim, out_dim, grid_size, embed_dim, visual_cues, pos_spacing)
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(
            *(Block(embed_dim, num_heads, 4.0, qkv_bias=True, norm_layer=norm) for _ in range(depth))
        )
        use_library_attention(self.blocks)
        self._init_linears()
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: Tensor, vis_ids: Tensor, trg_ids: Tensor) -> Tensor:
        """tokens (B, 1+V, D), vis_ids (B, V), trg_ids (B, T) -> (B, T, out_dim)."""
        x = self.embed(tokens)
        vis = x[:, 1:] + self.pos(vis_ids)
        q = self.queries(x[:, 1:], vis_ids, trg_ids)
        seq = torch.cat([x[:, :1], vis, q], dim=1)  # (B, 1+V+T, E)
        seq = self.blocks(seq)
        return self.head(self.norm(seq[:, 1 + vis_ids.shape[1] :]))
