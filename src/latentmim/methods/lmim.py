"""Latent MIM: predict the target encoder's latents of hidden patches from ~10% visible ones.

forward = cut patches -> encode visible -> project -> decode target queries -> compare with the
target encoder's latents of the hidden patches (docs/method.md#latent-mim).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from latentmim.losses import LatentLoss
from latentmim.losses.similarity import avg_similarity, similarity_regularizer
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import Views
from latentmim.methods.base import PretrainMethod
from latentmim.methods.ema import ema_update, paired_parameters
from latentmim.models.vit import ViTEncoder
from latentmim.training.schedules import cosine_decay

# How targets are produced (the rows of the collapse ablation).
#   naive:       the online encoder itself, gradients flow through the targets
#   independent: a separate target encoder trained jointly by gradient ("no weight sharing")
#   stopgrad:    the online encoder without gradient ("weight sharing + stop-grad")
#   ema:         a momentum copy of the online encoder (the paper's method)
TARGET_MODES = ("naive", "independent", "stopgrad", "ema")


class LatentMIM(PretrainMethod):
    """Online encoder + projector + decoder, and a target encoder per ``target_mode``.

    Args:
        encoder: online ViT encoder.
        num_vis: visible patches per image (the paper: 20 of 196).
        projector: per-token MLP after the online encoder (identity for "none").
        decoder: latent decoder ``(tokens, vis_ids, trg_ids) -> (B, T, D)``.
        loss_fn: ``(pred, target) -> scalar``.
        target_mode: one of :data:`TARGET_MODES`.
        target_depth: blocks of the target encoder (None = all); the target network is a
            (truncated) encoder followed by a projector.
        mask_target: target encoder sees only target patches (True) or all patches (False).
        patch_gap: gap g between patches in the training crop.
        avg_sim_coeff: weight c of the similarity regulariser (0 disables it).
        sim_init, sim_end: the regulariser's goal g at the start and end of the run (cosine in
            between, set by :meth:`set_progress`).
        seed: seed of the views drawn inside :meth:`forward` when none are given.
    """

    def __init__(
        self,
        encoder: ViTEncoder,
        projector: nn.Module,
        decoder: nn.Module,
        loss_fn: LatentLoss,
        num_vis: int = 20,
        target_mode: str = "ema",
        target_depth: int | None = None,
        mask_target: bool = True,
        patch_gap: int = 4,
        avg_sim_coeff: float = 0.0,
        sim_init: float = 0.75,
        sim_end: float = 0.25,
        seed: int = 0,
    ) -> None:
        super().__init__(encoder, num_vis, patch_gap, seed)
        if target_mode not in TARGET_MODES:
            raise ValueError(f"target_mode must be one of {TARGET_MODES}, got {target_mode!r}")
        self.projector = projector
        self.decoder = decoder
        self.loss_fn = loss_fn
        self.target_mode = target_mode
        self.target_depth = target_depth
        self.mask_target = mask_target
        self.avg_sim_coeff = avg_sim_coeff
        self.sim_init, self.sim_end = sim_init, sim_end
        self.sim_goal = sim_init  # the goal g at the current progress (set_progress)
        # The target network is encoder + projector, like the online branch, so targets live
        # in the projected space the decoder predicts (as in the authors' code).
        self.target_encoder: ViTEncoder | None = None
        self.target_projector: nn.Module | None = None
        if target_mode in ("ema", "independent"):
            self.target_encoder = make_target_encoder(encoder, target_depth)
            self.target_projector = copy.deepcopy(projector)
            for net in (self.target_encoder, self.target_projector):
                net.requires_grad_(target_mode == "independent")
        self._ema_pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def set_progress(self, progress: float) -> None:
        """The similarity goal g: cosine from ``sim_init`` (start) to ``sim_end`` (end of the run)."""
        self.sim_goal = cosine_decay(progress, self.sim_init, self.sim_end, 1.0)

    def forward(self, imgs: Tensor, views: Views | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: visible/target split and patch offsets; drawn here when None.

        Returns:
            (loss, metrics) with detached scalar metrics ``loss_pred``, ``avg_sim_pred``,
            ``avg_sim_vis``, ``avg_sim_trg`` and ``sim_goal``.
        """
        views = self.views_for(imgs, views)
        enc, v = self.encoder, views.num_vis
        # All patches, in view order (visible first), cut in one gather.
        patches = gather_patches(imgs, views.perm, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = self.projector(enc.forward_patches(patches[:, :v], views.vis_ids))  # (B, 1+V, D)
        pred = self.decoder(tokens, views.vis_ids, views.trg_ids)  # (B, T, D)
        target = self.targets(patches, views)  # (B, T, D)

        loss_pred = self.loss_fn(pred, target)
        s_pred, s_vis = avg_similarity(pred), avg_similarity(tokens[:, 1:])
        loss = loss_pred
        if self.avg_sim_coeff > 0:
            reg = similarity_regularizer(s_pred, self.sim_goal) + similarity_regularizer(s_vis, self.sim_goal)
            loss = loss + self.avg_sim_coeff * reg
        metrics = {
            "loss_pred": loss_pred.detach(),
            "avg_sim_pred": s_pred.detach(),
            "avg_sim_vis": s_vis.detach(),
            "avg_sim_trg": avg_similarity(target.detach()),
            "sim_goal": torch.tensor(self.sim_goal, device=loss.device),
        }
        return loss, metrics

    def targets(self, patches: Tensor, views: Views) -> Tensor:
        """Target latents of the hidden patches, (B, T, D).

        Args:
            patches: (B, N, P*P*C) all patches in view order (visible first).
        """
        v = views.num_vis
        if self.mask_target:
            inputs, ids = patches[:, v:], views.trg_ids
        else:
            inputs, ids = patches, views.perm
        separate = self.target_encoder is not None
        encoder = self.target_encoder if separate else self.encoder
        projector = self.target_projector if separate else self.projector
        with_grad = self.target_mode in ("naive", "independent")
        with torch.set_grad_enabled(with_grad and torch.is_grad_enabled()):
            z = encoder.forward_patches(inputs, ids, depth=self.target_depth)[:, 1:]  # drop cls
            z = projector(z)
        if not self.mask_target:
            z = z[:, v:]  # outputs at the target positions
        return z if with_grad else z.detach()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the momentum target (no-op for the other target modes)."""
        if self.target_mode != "ema":
            return
        if self._ema_pairs is None:
            enc_t, enc_o = paired_parameters(self.target_encoder, self.encoder)
            proj_t, proj_o = paired_parameters(self.target_projector, self.projector)
            self._ema_pairs = (enc_t + proj_t, enc_o + proj_o)
        ema_update(*self._ema_pairs, momentum)


def make_target_encoder(encoder: ViTEncoder, depth: int | None) -> ViTEncoder:
    """A copy of the online encoder truncated to its first ``depth`` blocks."""
    target = copy.deepcopy(encoder)
    if depth is not None and depth < len(target.blocks):
        target.blocks = target.blocks[:depth]
    return target
