"""I-JEPA: predict a momentum target encoder's latents of target blocks from one context block.

forward = cut patches -> context encoder on the context block -> predictor, once per target
block -> smooth L1 to the target encoder's layer-normed latents of those blocks, the target
encoder having seen the whole image (docs/method.md#i-jepa; Assran et al., CVPR 2023, and the
authors' ``src/train.py``).

I-JEPA's ViT has no cls token: the context and target encoders run with ``cls=False`` by default,
so the online encoder's cls token gets no gradient and is frozen here (DDP fails on a trainable
parameter that never gets one). The EMA momentum follows the paper's linear ramp through
:meth:`IJEPA.momentum_at`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.multiblock import BlockViews, MultiBlockMasker
from latentmim.masking.patchify import all_ids, gather_patches
from latentmim.methods.base import PretrainMethod
from latentmim.methods.ema import ema_update, paired_parameters
from latentmim.models.predictor import JEPAPredictor
from latentmim.models.vit import ViTEncoder


def linear_momentum(start: float, progress: float, end: float = 1.0) -> float:
    """I-JEPA's EMA momentum: a linear ramp from ``start`` to ``end`` over the run.

    The authors step ``ema[0] + i * (ema[1] - ema[0]) / (ipe * epochs * ipe_scale)`` with
    ``ipe_scale = 1.0`` in every released config, i.e. 0.996 -> 1.0 over the whole run.

    Args:
        start: momentum at progress 0.
        progress: fraction of the run done, clipped to [0, 1].
        end: momentum at progress 1.
    """
    progress = min(max(progress, 0.0), 1.0)
    return start + (end - start) * progress


def upcast(x: Tensor) -> Tensor:
    """``x`` in float32 when it is in a 16-bit float (autocast), else unchanged (float32, float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """Rows ``ids`` of every image: x (B, N, D), ids (B, ...) -> (B, ..., D)."""
    flat = ids.reshape(ids.shape[0], -1)  # (B, K)
    out = torch.gather(x, 1, flat[..., None].expand(-1, -1, x.shape[-1]))
    return out.view(*ids.shape, x.shape[-1])


class IJEPA(PretrainMethod):
    """Context encoder (the online encoder) + predictor; EMA target encoder on the whole image.

    Args:
        encoder: the online (context) encoder.
        predictor: ``(ctx (B, Kc, D), ctx_ids, trg_ids (B, M, Kt)) -> (B, M, Kt, D)``.
        masker: the multi-block mask generator of :meth:`sample_views`.
        patch_gap: gap g between patches in the training crop (I-JEPA itself: 0).
        loss_beta: smooth L1 threshold (``F.smooth_l1_loss``'s default 1.0, as the authors).
        momentum_end: the EMA momentum at the end of the run (paper: 1.0), see :meth:`momentum_at`.
        use_cls: run both encoders with the cls token (it attends, its output is dropped); False
            is the paper (no cls token).
        seed: seed of the views drawn inside :meth:`forward` when none are given.
    """

    def __init__(
        self,
        encoder: ViTEncoder,
        predictor: JEPAPredictor,
        masker: MultiBlockMasker,
        patch_gap: int = 0,
        loss_beta: float = 1.0,
        momentum_end: float = 1.0,
        use_cls: bool = False,
        seed: int = 0,
    ) -> None:
        # num_vis only serves the base class's random views, which I-JEPA replaces.
        super().__init__(encoder, encoder.grid_size**2, patch_gap, seed)
        if masker.grid_size != encoder.grid_size:
            raise ValueError(f"masker grid {masker.grid_size} does not match the encoder's {encoder.grid_size}")
        self.predictor = predictor
        self.masker = masker
        self.loss_beta = loss_beta
        self.momentum_end = momentum_end
        self.use_cls = use_cls
        if not use_cls:
            encoder.cls_token.requires_grad_(False)
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self._ema_pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def train(self, mode: bool = True) -> IJEPA:
        """The target encoder always runs in eval mode (no drop path on targets)."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def sample_views(self, batch_size: int, generator: torch.Generator) -> BlockViews:
        """One context block and ``num_targets`` target blocks per image, and patch offsets."""
        return self.masker.sample(batch_size, generator, self.patch_gap)

    def momentum_at(self, start: float, progress: float) -> float:
        """The EMA momentum at ``progress`` for a run starting at ``start``: linear to ``momentum_end``."""
        return linear_momentum(start, progress, self.momentum_end)

    def forward(self, imgs: Tensor, views: BlockViews | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: context and target blocks and patch offsets; drawn here when None.

        Returns:
            (loss, metrics) with detached scalar metrics ``loss_pred``, ``avg_sim_pred``,
            ``avg_sim_vis`` (context tokens) and ``avg_sim_trg``.
        """
        views = self.views_for(imgs, views)
        enc = self.encoder
        b = imgs.shape[0]
        ids = all_ids(b, enc.grid_size, imgs.device)  # (B, N)
        patches = gather_patches(imgs, ids, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        ctx = self.encode(enc, gather_tokens(patches, views.ctx_ids), views.ctx_ids)  # (B, Kc, D)
        pred = self.predictor(ctx, views.ctx_ids, views.trg_ids)  # (B, M, Kt, D)
        target = self.targets(patches, views.trg_ids)  # (B, M, Kt, D)
        # Mean over every element: all blocks have Kt patches, so this is the mean over blocks of
        # each block's mean, as the authors' F.smooth_l1_loss over the stacked blocks.
        loss = F.smooth_l1_loss(upcast(pred), target, beta=self.loss_beta)
        metrics = {
            "loss_pred": loss.detach(),
            "avg_sim_pred": avg_similarity(pred.detach().flatten(1, 2)),
            "avg_sim_vis": avg_similarity(ctx.detach()),
            "avg_sim_trg": avg_similarity(target.flatten(1, 2)),
        }
        return loss, metrics

    def encode(self, encoder: ViTEncoder, patches: Tensor, ids: Tensor) -> Tensor:
        """Patch tokens after the final norm, (B, K, D); the cls token, if used, is dropped."""
        x = encoder.forward_patches(patches, ids, cls=self.use_cls)
        return x[:, 1:] if self.use_cls else x

    @torch.no_grad()
    def targets(self, patches: Tensor, trg_ids: Tensor) -> Tensor:
        """Target latents of the target blocks.

        The target encoder sees every patch; its output (after its final norm) is layer-normed
        again over the feature dimension without affine parameters, then the blocks' tokens
        are gathered.

        Args:
            patches: (B, N, P*P*C) all patches in id order.
            trg_ids: (B, M, Kt).

        Returns:
            (B, M, Kt, D), float32 under autocast.
        """
        h = self.encode(self.target_encoder, patches, all_ids(patches.shape[0], self.grid_size, patches.device))
        h = F.layer_norm(upcast(h), (h.shape[-1],))
        return gather_tokens(h, trg_ids)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the target encoder."""
        if self._ema_pairs is None:
            self._ema_pairs = paired_parameters(self.target_encoder, self.encoder)
        ema_update(*self._ema_pairs, momentum)
