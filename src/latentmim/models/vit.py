"""Vision Transformer encoder that runs on any subset of patches.

The class *is* a ``timm`` ``VisionTransformer`` (same parameter names and layout), so a
state dict of our encoder loads into ``timm.create_model("vit_small_patch16_224",
num_classes=0)`` with ``strict=True``. What we add is :meth:`ViTEncoder.forward_patches`:
encoding an arbitrary set of already-extracted patches, identified by their grid ids, which is
what masked image modeling needs (the online encoder sees ~10% of the grid, the target encoder
the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.attention import use_library_attention
from latentmim.models.pos_embed import sincos_2d


@dataclass(frozen=True)
class ViTSize:
    """Width, depth and heads of a ViT preset."""

    embed_dim: int
    depth: int
    num_heads: int


# The standard ViT family (Dosovitskiy et al.; DeiT for tiny/small).
VIT_PRESETS: dict[str, ViTSize] = {
    "vit_tiny": ViTSize(192, 12, 3),
    "vit_small": ViTSize(384, 12, 6),
    "vit_base": ViTSize(768, 12, 12),
    "vit_large": ViTSize(1024, 24, 16),
    "vit_huge": ViTSize(1280, 32, 16),
}


class ViTEncoder(VisionTransformer):
    """Pre-norm ViT (qkv bias, LayerNorm eps 1e-6, MLP ratio 4) with a cls token.

    Position embeddings are a fixed 2-D sin-cos table (``freeze_pe=True``) stored in timm's
    ``pos_embed`` slot, with a zero row for the cls token, and looked up by patch id.

    Args:
        grid_size: patches per side G at the evaluation resolution.
        patch_size: patch side P in pixels.
        in_chans: image channels (1 for grayscale).
        embed_dim, depth, num_heads: transformer size.
        drop_path: stochastic depth rate (linearly increasing over blocks).
        freeze_pe: keep the sin-cos position table fixed (True) or learn it from there.
        pos_spacing: coordinate of grid cell 1 in the table (``G/(G-1)`` for the Latent MIM
            authors' table, 1 for MAE's; :func:`~latentmim.models.pos_embed.spacing_factor`).
        final_norm: keep the final LayerNorm (training always does; an export whose output is
            the NN feature leaves it out).

    Calling the encoder on images, ``encoder(imgs)``, returns the NN feature (:meth:`forward`);
    ``forward_features`` is timm's (all tokens, after the final norm).
    """

    def __init__(
        self,
        grid_size: int = 14,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        drop_path: float = 0.0,
        freeze_pe: bool = True,
        pos_spacing: float = 1.0,
        final_norm: bool = True,
    ) -> None:
        super().__init__(
            img_size=grid_size * patch_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=0,
            global_pool="token",
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            drop_path_rate=drop_path,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            final_norm=final_norm,
        )
        self.grid_size = grid_size
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.pos_spacing = pos_spacing
        use_library_attention(self.blocks)  # same weights and names; see models/attention.py
        self._init_weights_mae(freeze_pe)

    def _init_weights_mae(self, freeze_pe: bool) -> None:
        # MAE's initialisation: fixed sin-cos positions, xavier-uniform linears and patch
        # projection (viewed as a linear map), small normal cls token.
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d(self.embed_dim, self.grid_size, spacing=self.pos_spacing)[None])
        self.pos_embed.requires_grad_(not freeze_pe)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, imgs: Tensor) -> Tensor:
        """The feature every NN and k-NN number is scored on (docs/method.md#nn).

        Args:
            imgs: (B, C, G*P, G*P) images, normalised like the training data.

        Returns:
            (B, D): the mean of the patch tokens before the final norm (cls excluded).
        """
        x = self.forward_patches(patchify(imgs, self.patch_size), all_ids(imgs.shape[0], self.grid_size, imgs.device),
                                 return_prenorm=True)[1]
        return x[:, 1:].mean(dim=1)

    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch, P*P*C."""
        return self.patch_size * self.patch_size * self.in_chans

    def embed_patches(self, patches: Tensor, ids: Tensor, cls: bool = True) -> Tensor:
        """Linear patch embedding + position embedding looked up by id (+ cls token).

        Args:
            patches: (B, K, P*P*C) patches flattened in (row, col, channel) order.
            ids: (B, K) int64 grid ids in [0, G*G).
            cls: prepend the cls token.

        Returns:
            (B, 1+K, D) if ``cls`` else (B, K, D).
        """
        w = self.patch_embed.proj.weight  # (D, C, P, P): timm's conv layout
        # The stride-P conv is a linear map on (row, col, channel)-flattened patches.
        w = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)  # (D, P*P*C)
        x = nn.functional.linear(patches, w, self.patch_embed.proj.bias)  # (B, K, D)
        x = x + self.pos_embed[0, 1:][ids]  # (B, K, D); row 0 of pos_embed is the cls slot
        if cls:
            cls_tok = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls_tok, x], dim=1)
        return x

    def forward_patches(
        self,
        patches: Tensor,
        ids: Tensor,
        cls: bool = True,
        return_prenorm: bool = False,
        depth: int | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Encode a subset of patches.

        Args:
            patches: (B, K, P*P*C) flattened patches.
            ids: (B, K) their grid ids.
            cls: include the cls token.
            return_prenorm: also return the tokens before the final norm.
            depth: run only the first ``depth`` blocks (a shallower target), then the norm.

        Returns:
            (B, 1+K, D) tokens after the final norm (cls first if ``cls``), and with
            ``return_prenorm`` a tuple (normed, prenorm).
        """
        x = self.embed_patches(patches, ids, cls)
        blocks = self.blocks if depth is None else self.blocks[:depth]
        x = blocks(x)
        if return_prenorm:
            return self.norm(x), x
        return self.norm(x)


    def forward_masked(self, patches: Tensor, mask: Tensor, mask_token: Tensor) -> Tensor:
        """Encode every patch of an image, the hidden ones as a learned mask token (SimMIM, ConMIM).

        A hidden patch's embedding is replaced by ``mask_token`` before its position embedding
        is added, as ``x * (1 - w) + mask_token * w; x + pos`` in SimMIM's and ConMIM's code;
        :meth:`embed_patches` adds the positions itself, so the hidden rows are set to
        ``mask_token + pos``, the same sum.

        Args:
            patches: (B, N, P*P*C) every patch, in id order.
            mask: (B, N) bool, True for the hidden patches.
            mask_token: (1, 1, D).

        Returns:
            (B, 1+N, D) tokens after the final norm, cls first.
        """
        ids = all_ids(patches.shape[0], self.grid_size, patches.device)  # (B, N)
        x = self.embed_patches(patches, ids, cls=True)  # (B, 1+N, D), positions added
        hidden = mask_token + self.pos_embed[0, 1:][ids]  # (B, N, D)
        tokens = torch.where(mask[..., None], hidden.to(x.dtype), x[:, 1:])
        return self.norm(self.blocks(torch.cat([x[:, :1], tokens], dim=1)))

def build_encoder(
    encoder: str,
    grid_size: int,
    patch_size: int,
    in_chans: int = 3,
    embed_dim: int | None = None,
    depth: int | None = None,
    num_heads: int | None = None,
    drop_path: float = 0.0,
    freeze_pe: bool = True,
    pos_spacing: float = 1.0,
) -> ViTEncoder:
    """Build a preset (``vit_tiny`` ... ``vit_huge``) with optional size overrides."""
    size = VIT_PRESETS[encoder]
    return ViTEncoder(
        grid_size=grid_size,
        patch_size=patch_size,
        in_chans=in_chans,
        embed_dim=embed_dim or size.embed_dim,
        depth=depth or size.depth,
        num_heads=num_heads or size.num_heads,
        drop_path=drop_path,
        freeze_pe=freeze_pe,
        pos_spacing=pos_spacing,
    )
