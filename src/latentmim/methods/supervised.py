"""The supervised ceiling: the same ViT trained with labels, through the same engine and data.

A row of an ablation table (and the demo's reference) needs the accuracy a network of this size
reaches *with* labels in the same time: if that is not far above raw pixels, the task cannot be
learned at this budget and no self-supervised row can look good. The model sees every patch of
the same gapped cut as the self-supervised methods (same crops, offsets and flips), average-pools
the normed patch tokens and classifies them with one Linear layer (cross-entropy).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import Views
from latentmim.methods.base import PretrainMethod
from latentmim.models.vit import ViTEncoder


class Supervised(PretrainMethod):
    """Encoder on all patches + a linear classifier on the average of its normed patch tokens.

    Args:
        encoder: the ViT encoder (the network that is kept and evaluated like the others).
        num_classes: classes of the training labels.
        patch_gap: gap g between patches in the training crop (as in the compared rows).
        seed: seed of the patch offsets drawn inside :meth:`forward` when no views are given.
    """

    uses_labels = True  # the engine passes the batch's labels to forward

    def __init__(self, encoder: ViTEncoder, num_classes: int, patch_gap: int = 0, seed: int = 0) -> None:
        # Every patch is visible: views only carry the patch offsets of the gapped cut.
        super().__init__(encoder, encoder.grid_size**2, patch_gap, seed)
        self.head = nn.Linear(encoder.embed_dim, num_classes)
        nn.init.zeros_(self.head.bias)
        nn.init.trunc_normal_(self.head.weight, std=0.02)

    def forward(self, imgs: Tensor, views: Views | None = None,
                labels: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: only the patch offsets (and the id order) are used: every patch is visible.
            labels: (B,) class indices.

        Returns:
            (loss, metrics): cross-entropy, ``train_acc`` (% of the batch) and ``avg_sim_vis``.
        """
        if labels is None:
            raise ValueError("method=supervised needs the batch's labels")
        views = self.views_for(imgs, views)
        enc = self.encoder
        patches = gather_patches(imgs, views.perm, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = enc.forward_patches(patches, views.perm)  # (B, 1+N, D), normed
        logits = self.head(tokens[:, 1:].mean(dim=1))  # (B, classes)
        loss = F.cross_entropy(logits.float(), labels)
        acc = (logits.argmax(dim=1) == labels).float().mean() * 100
        return loss, {"loss_pred": loss.detach(), "train_acc": acc.detach(),
                      "avg_sim_vis": avg_similarity(tokens[:, 1:].detach())}
