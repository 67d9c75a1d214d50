"""data2vec-style baseline: regress a momentum teacher's averaged, normalised layer outputs.

forward = cut patches -> student encodes the visible ones -> light conv decoder fills the hidden
cells -> L2 to the teacher's targets there. The teacher (EMA of the student) sees the whole image;
its target is the average of its top-K block outputs, each instance-normalised over the tokens of
the image (docs/method.md#data2vec-style, following data2vec 2.0 with one mask per image).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import Views
from latentmim.methods.base import PretrainMethod
from latentmim.methods.ema import ema_update, paired_parameters
from latentmim.models.vit import ViTEncoder


def instance_norm_tokens(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise every channel over the tokens of its image (no affine), in fp32.

    Args:
        x: (B, N, D).

    Returns:
        (B, N, D) with zero mean and unit (biased) variance over N per image and channel.
    """
    return F.instance_norm(x.float().transpose(1, 2), eps=eps).transpose(1, 2)


def average_top_k(layer_outputs: list[Tensor], k: int) -> Tensor:
    """Mean of the instance-normalised last ``k`` layer outputs, each (B, N, D) -> (B, N, D)."""
    top = layer_outputs[-k:]
    return torch.stack([instance_norm_tokens(x) for x in top]).mean(dim=0)


class Data2Vec(PretrainMethod):
    """Student encoder + conv decoder; EMA teacher on the whole image.

    Args:
        encoder: the student (online) encoder.
        decoder: ``(vis_tokens (B, V, D), vis_ids, trg_ids) -> (B, T, D)``
            (:class:`~latentmim.methods.data2vec_decoder.ConvDecoder`).
        top_k: teacher blocks averaged into the target (clipped to the depth).
        num_vis: visible patches per image.
        patch_gap: gap g between patches in the training crop.
        seed: seed of the views drawn inside :meth:`forward` when none are given.
    """

    def __init__(self, encoder: ViTEncoder, decoder: nn.Module, top_k: int = 8, num_vis: int = 20,
                 patch_gap: int = 0, seed: int = 0) -> None:
        super().__init__(encoder, num_vis, patch_gap, seed)
        self.decoder = decoder
        self.top_k = min(top_k, len(encoder.blocks))
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self._ema_pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def train(self, mode: bool = True) -> Data2Vec:
        """The teacher always runs in eval mode (no drop path on targets)."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def forward(self, imgs: Tensor, views: Views | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: visible/hidden split and patch offsets; drawn here when None.

        Returns:
            (loss, metrics) with ``loss_pred``, ``avg_sim_pred``, ``avg_sim_vis``, ``avg_sim_trg``.
        """
        views = self.views_for(imgs, views)
        enc, v = self.encoder, views.num_vis
        patches = gather_patches(imgs, views.perm, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = enc.forward_patches(patches[:, :v], views.vis_ids)  # (B, 1+V, D)
        pred = self.decoder(tokens[:, 1:], views.vis_ids, views.trg_ids)  # (B, T, D)
        target = self.teacher_targets(patches, views.perm)[:, v:]  # (B, T, D), hidden positions
        loss = F.mse_loss(pred.float(), target)
        metrics = {
            "loss_pred": loss.detach(),
            "avg_sim_pred": avg_similarity(pred.detach()),
            "avg_sim_vis": avg_similarity(tokens[:, 1:].detach()),
            "avg_sim_trg": avg_similarity(target),
        }
        return loss, metrics

    @torch.no_grad()
    def teacher_targets(self, patches: Tensor, ids: Tensor) -> Tensor:
        """Teacher targets for every given patch.

        Args:
            patches: (B, N, P*P*C) all patches of the image; ids: (B, N) their grid ids.

        Returns:
            (B, N, D) float32: average of the top-K block outputs (patch tokens), each
            instance-normalised over the image's tokens.
        """
        t = self.target_encoder
        x = t.embed_patches(patches, ids, cls=True)  # (B, 1+N, D)
        outputs = []
        for blk in t.blocks:
            x = blk(x)
            outputs.append(x[:, 1:])  # cls excluded from the statistics and the targets
        return average_top_k(outputs, self.top_k)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the teacher."""
        if self._ema_pairs is None:
            self._ema_pairs = paired_parameters(self.target_encoder, self.encoder)
        ema_update(*self._ema_pairs, momentum)
