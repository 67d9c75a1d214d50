"""SimMIM: the encoder sees every patch, hidden ones as a mask token; a linear head predicts pixels.

SimMIM (Xie et al., CVPR 2022; docs/method.md#simmim) masks random aligned blocks of tokens
(:mod:`latentmim.masking.simmim_masks`), replaces the hidden tokens' patch embeddings by one
learned mask token *before* the position embedding is added, encodes all tokens, predicts the raw
pixels of every token with one linear layer, and takes an L1 loss on the hidden pixels only.

forward = cut all patches -> embed, swap hidden embeddings for the mask token, add positions ->
encode -> linear head -> L1 on the pixels of the hidden tokens. With ``patch_gap > 0`` every token
is the P x P patch cut at its random offset inside its cell (as in :mod:`latentmim.methods.mae`),
and the targets are the hidden tokens' pixels of that same cut.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import all_ids, gather_patches
from latentmim.masking.simmim_masks import SimMIMMaskGenerator, SimMIMViews
from latentmim.methods.base import PretrainMethod
from latentmim.models.vit import ViTEncoder

# Added to the count of hidden pixels, as in the authors' loss (it only guards an empty mask).
LOSS_EPS = 1e-5


def _at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in fp32 when it is in a lower precision (fp64 stays fp64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def simmim_loss(pred: Tensor, target: Tensor, mask: Tensor, in_chans: int) -> Tensor:
    """SimMIM's L1 loss on the hidden pixels, normalised as the authors' code.

    Their loss is ``(|x - x_rec| * mask).sum() / (mask.sum() + 1e-5) / in_chans`` with the mask
    at pixel resolution and one channel, i.e. the mean absolute error over the hidden pixels and
    channels (up to the 1e-5).

    Args:
        pred: (B, N, P*P*C) predicted pixels of every token.
        target: (B, N, P*P*C) true pixels of every token.
        mask: (B, N) bool, True for the hidden tokens (the only ones that count).
        in_chans: C.

    Returns:
        scalar loss, computed in at least fp32.
    """
    err = (_at_least_fp32(pred) - _at_least_fp32(target)).abs()  # (B, N, P*P*C)
    w = mask.to(err.dtype)[..., None]  # (B, N, 1)
    pixels_per_token = pred.shape[-1] // in_chans  # P*P: their mask counts pixels, not channels
    return (err * w).sum() / (w.sum() * pixels_per_token + LOSS_EPS) / in_chans


class SimMIM(PretrainMethod):
    """The encoder on all tokens (hidden ones as a mask token) + a linear pixel head.

    Args:
        encoder: online ViT encoder (the network that is kept).
        mask_patch: side of a mask cell in tokens (paper: 32-px mask patches / 16-px tokens = 2).
        mask_ratio: fraction of the mask cells hidden, rounded up (paper: 0.6).
        patch_gap: gap g between patches in the training crop (0 in the paper).
        seed: seed of the views drawn inside :meth:`forward` when none are given.

    Attributes:
        mask_token: (1, 1, D) the learned embedding of a hidden patch.
        head: Linear D -> P*P*C, the raw pixels of a token in (row, col, channel) order (the
            authors' 1x1 conv + PixelShuffle, per token).
    """

    def __init__(self, encoder: ViTEncoder, mask_patch: int = 2, mask_ratio: float = 0.6,
                 patch_gap: int = 0, seed: int = 0) -> None:
        masks = SimMIMMaskGenerator(encoder.grid_size, mask_patch, mask_ratio)
        super().__init__(encoder, encoder.grid_size**2 - masks.num_masked, patch_gap, seed)
        self.masks = masks
        self.mask_token = nn.Parameter(torch.zeros(1, 1, encoder.embed_dim))
        # The authors' ViT: a normal of std 0.02 truncated at +-1 std.
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)
        # nn.Linear's default init is that of the authors' 1x1 Conv2d (same fan-in D).
        self.head = nn.Linear(encoder.embed_dim, encoder.patch_dim)

    def sample_views(self, batch_size: int, generator: torch.Generator) -> SimMIMViews:
        """SimMIM's block masks and, with a gap, one random patch offset per cell (on the CPU)."""
        return self.masks(batch_size, self.patch_gap, generator)


    def forward(self, imgs: Tensor, views: SimMIMViews | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: hidden tokens and patch offsets; drawn here when None.

        Returns:
            (loss, metrics): ``loss_pred`` and ``avg_sim_vis`` (S of the encoder tokens at the
            visible positions), detached scalars.
        """
        views = self.views_for(imgs, views)
        enc = self.encoder
        ids = all_ids(imgs.shape[0], enc.grid_size, imgs.device)
        patches = gather_patches(imgs, ids, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = self.encoder.forward_masked(patches, views.mask, self.mask_token)  # (B, 1+N, D)
        pred = self.head(tokens[:, 1:])  # (B, N, P*P*C)
        loss = simmim_loss(pred, patches, views.mask, enc.in_chans)
        with torch.no_grad():
            vis = torch.gather(tokens[:, 1:], 1, views.vis_ids[..., None].expand(-1, -1, tokens.shape[-1]))
        return loss, {"loss_pred": loss.detach(), "avg_sim_vis": avg_similarity(vis)}
