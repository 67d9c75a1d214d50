"""PCAE: predict only the most distinctive target latents, found by progressive token dropping.

forward = cut patches -> encode visible -> momentum encoder on the hidden patches, dropping tokens
after some blocks (keep the least similar to the mean token) -> decoder predicts the surviving
tokens' normalised latents at their positions -> loss 1 - cos (docs/method.md#pcae).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.losses.regression import normalize_per_token
from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import Views
from latentmim.methods.base import PretrainMethod
from latentmim.methods.ema import ema_update, paired_parameters
from latentmim.methods.token_drop import gather_tokens, num_kept, random_keep, rank_keep
from latentmim.models.vit import ViTEncoder


class PCAE(PretrainMethod):
    """Online encoder + MAE-style decoder; an EMA target encoder that compresses its tokens.

    Args:
        encoder: online ViT encoder.
        decoder: ``(tokens (B, 1+V, D), vis_ids (B, V), kept_ids (B, K)) -> (B, K, D)``, the
            self-attention decoder with mask tokens at the retained positions only.
        schedule: (block, keep fraction) drop stages of the target encoder
            (:func:`~latentmim.methods.token_drop.drop_schedule`).
        num_vis: visible patches per image (PCAE: 25%).
        patch_gap: gap g between patches in the training crop.
        random_drop: keep a random subset at every stage (the "RD" ablation).
        seed: seed of the random drop; draw ``n`` of a run uses seed (seed, n), and n is saved
            in the checkpoint, so a resumed run drops exactly what it would have. Also seeds the
            views drawn inside :meth:`forward` when none are given.
    """

    def __init__(
        self,
        encoder: ViTEncoder,
        decoder: nn.Module,
        schedule: list[tuple[int, float]],
        num_vis: int = 49,
        patch_gap: int = 0,
        random_drop: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(encoder, num_vis, patch_gap, seed)
        depth = len(encoder.blocks)
        if any(not 0 <= b < depth for b, _ in schedule):
            raise ValueError(f"drop blocks {[b for b, _ in schedule]} outside [0, {depth - 1}]")
        self.decoder = decoder
        self.schedule = dict(schedule)
        self.random_drop = random_drop
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.register_buffer("drop_draws", torch.zeros((), dtype=torch.long))  # saved with the model
        # The count as a host int, so a step never reads the buffer back from the device; read once
        # after a load (a resumed run), then kept in step with the buffer.
        self._draws: int | None = None
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_draws", None))
        self._ema_pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def train(self, mode: bool = True) -> PCAE:
        """The target encoder always runs in eval mode (no drop path on targets)."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def forward(self, imgs: Tensor, views: Views | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g).
            views: visible/hidden split and patch offsets; drawn here when None.

        Returns:
            (loss, metrics): ``loss_pred``, ``avg_sim_pred``, ``avg_sim_vis``, ``avg_sim_trg`` and
            ``pcae_kept_stage{i}`` (tokens per image left after drop stage i, 1-based).
        """
        views = self.views_for(imgs, views)
        enc, v = self.encoder, views.num_vis
        patches = gather_patches(imgs, views.perm, views.offsets, enc.grid_size, enc.patch_size, self.patch_gap)
        tokens = enc.forward_patches(patches[:, :v], views.vis_ids)  # (B, 1+V, D)
        target, kept_ids, counts = self.compressed_targets(patches[:, v:], views.trg_ids)  # (B, K, D), (B, K)
        pred = self.decoder(tokens, views.vis_ids, kept_ids)  # (B, K, D)
        loss = 1.0 - F.cosine_similarity(pred.float(), target.float(), dim=-1).mean()
        metrics = {
            "loss_pred": loss.detach(),
            "avg_sim_pred": avg_similarity(pred.detach()),
            "avg_sim_vis": avg_similarity(tokens[:, 1:].detach()),
            "avg_sim_trg": avg_similarity(target),
        }
        for i, k in enumerate(counts, start=1):
            metrics[f"pcae_kept_stage{i}"] = torch.tensor(float(k))
        return loss, metrics

    @torch.no_grad()
    def compressed_targets(self, patches: Tensor, ids: Tensor) -> tuple[Tensor, Tensor, list[int]]:
        """Run the target encoder on the hidden patches (no cls), dropping tokens as scheduled.

        Args:
            patches: (B, T, P*P*C) the hidden patches.
            ids: (B, T) their grid ids.

        Returns:
            targets (B, K, D): final-norm features of the survivors, standardised per token;
            kept_ids (B, K): their grid ids; counts: tokens left after each stage.
        """
        enc = self.target_encoder
        x = enc.embed_patches(patches, ids, cls=False)  # (B, T, D)
        counts: list[int] = []
        for i, blk in enumerate(enc.blocks):
            x = blk(x)
            if i not in self.schedule:
                continue
            k = num_kept(x.shape[1], self.schedule[i])
            if self.random_drop:
                idx = random_keep(x.shape[0], x.shape[1], k, self._drop_generator(), x.device)
            else:
                idx = rank_keep(x, k)  # (B, k) least similar to the mean token
            x, ids = gather_tokens(x, idx), torch.gather(ids, 1, idx)
            counts.append(k)
        return normalize_per_token(enc.norm(x)).float(), ids, counts

    def _drop_generator(self) -> torch.Generator:
        if self._draws is None:
            self._draws = int(self.drop_draws)
        g = torch.Generator().manual_seed((self.seed * 0x9E3779B1 + self._draws) % (2**63))
        if self.training:
            self._draws += 1
            self.drop_draws.fill_(self._draws)
        return g

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step t <- m*t + (1-m)*o of the target encoder."""
        if self._ema_pairs is None:
            self._ema_pairs = paired_parameters(self.target_encoder, self.encoder)
        ema_update(*self._ema_pairs, momentum)
