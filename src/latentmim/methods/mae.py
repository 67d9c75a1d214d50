"""MAE, the pixel baseline: reconstruct the hidden patches' (normalised) pixels (docs/method.md#mae).

forward = cut patches -> encode visible -> self-attention decoder with mask tokens -> MSE on the
pixels of the hidden patches. With ``patch_gap > 0`` the pixel targets are the hidden patches of
the same gapped cut (each P x P patch at its random offset inside its cell), so MAE and Latent MIM
rows of an ablation table see exactly the same patches; the paper's MAE rows use gap 0.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import Views
from latentmim.methods.base import PretrainMethod
from latentmim.models.vit import ViTEncoder


def normalize_patches(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """MAE's ``norm_pix_loss`` target: every patch standardised over its own pixels.

    Args:
        patches: (B, T, P*P*C) pixel patches.
        eps: added to the (unbiased, as in MAE) variance.

    Returns:
        (B, T, P*P*C) patches with zero mean and unit variance each.
    """
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def mae_loss(pred: Tensor, target: Tensor, norm_pix: bool = True) -> Tensor:
    """Mean squared error per pixel over the hidden patches, in fp32.

    Args:
        pred: (B, T, P*P*C) predicted pixels of the hidden patches.
        target: (B, T, P*P*C) their true pixels.
        norm_pix: compare with per-patch standardised pixels.

    Returns:
        scalar: mean over patches of the per-patch mean squared error (every image has the same
        number of hidden patches, so this is also MAE's masked mean).
    """
    target = target.float()
    if norm_pix:
        target = normalize_patches(target)
    return F.mse_loss(pred.float(), target)


class MAE(PretrainMethod):
    """Encoder on the visible patches + MAE decoder predicting the pixels of the hidden ones.

    Args:
        encoder: online ViT encoder (the network that is kept).
        decoder: ``(tokens (B, 1+V, D), vis_ids, trg_ids) -> (B, T, P*P*C)``; the paper's is the
            8 x 512 :class:`~latentmim.models.decoder.SelfAttentionDecoder` without visual cues.
        num_vis: visible patches per image (MAE: 25%, 49 of 196).
        patch_gap: gap g between patches in the training crop (0 in the paper's MAE rows).
        norm_pix_loss: standardise each target patch (MAE's better setting).
        seed: seed of the views drawn inside :meth:`forward` when none are given.
    """

    def __init__(self, encoder: ViTEncoder, decoder: nn.Module, num_vis: int = 49, patch_gap: int = 0,
                 norm_pix_loss: bool = True, seed: int = 0) -> None:
        super().__init__(encoder, num_vis, patch_gap, seed)
        self.decoder = decoder
        self.norm_pix_loss = norm_pix_loss

    def forward(self, imgs: Tensor, views: Views | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: visible/hidden split and patch offsets; drawn here when None.

        Returns:
            (loss, metrics): ``loss_pred`` and ``avg_sim_vis`` (S of the visible encoder tokens,
            the only latents MAE has), detached scalars.
        """
        views = self.views_for(imgs, views)
        enc, v = self.encoder, views.num_vis
        patches = gather_patches(imgs, views.perm, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = enc.forward_patches(patches[:, :v], views.vis_ids)  # (B, 1+V, D)
        pred = self.decoder(tokens, views.vis_ids, views.trg_ids)  # (B, T, P*P*C)
        loss = mae_loss(pred, patches[:, v:], self.norm_pix_loss)
        return loss, {"loss_pred": loss.detach(), "avg_sim_vis": avg_similarity(tokens[:, 1:].detach())}
