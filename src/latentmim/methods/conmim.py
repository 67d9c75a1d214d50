"""ConMIM: masked image modeling with denoising contrast (Yi et al., ICLR 2023).

The online encoder sees the corrupted image: every patch, the blockwise-masked ones replaced by a
learned mask token before the position embedding (:mod:`latentmim.masking.block_masks`). A
momentum ("slowly progressing") copy of it sees the uncorrupted image, without gradient. Both
outputs go through a per-token MLP projector (BatchNorm, 256-d output) and are L2-normalised; each
masked position's online feature must pick its own patch's momentum feature among all N patches of
the same image: an InfoNCE loss with temperature 0.1, averaged over the masked positions of the
batch (docs/method.md#conmim).

forward = [perturb the target branch's image] -> cut all patches -> online: embed, swap the masked
embeddings for the mask token, add positions, encode, project -> momentum: encode the whole image,
project -> InfoNCE of each masked position against the image's N momentum features.

The paper's asymmetric designs are switches: the image perturbation (``perturb``: the stronger
photometric augmentation goes to the momentum branch's full image, the masked image gets only the
shared crop and flip) and the model progress rates (``target_mode="ema"`` and the EMA momentum
the engine passes to :meth:`ConMIM.update_target`; ``"stopgrad"`` uses the online network itself
as the target, ``"naive"`` also lets gradients through the targets).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.data.info import IMAGENET_MEAN, IMAGENET_STD
from latentmim.data.perturbation import BLUR_SIGMA_PER_PATCH, Perturbation, perturb
from latentmim.masking.block_masks import (
    PAPER_MASK_FRAC,
    PAPER_MIN_ASPECT,
    PAPER_MIN_BLOCK_FRAC,
    BlockMaskGenerator,
    BlockMaskViews,
    sample_block_views,
)
from latentmim.masking.patchify import all_ids, gather_patches
from latentmim.methods.base import PretrainMethod
from latentmim.methods.ema import ema_update, paired_parameters
from latentmim.models.vit import ViTEncoder

# How targets are produced (the paper's "asymmetric model progress rates" and stop-gradient).
#   ema:      a momentum copy of the online encoder and projector, no gradient (the paper)
#   stopgrad: the online encoder and projector themselves, no gradient (no progress asymmetry)
#   naive:    the online encoder and projector, gradients flow through the targets too
TARGET_MODES = ("ema", "stopgrad", "naive")
# Which branch's image gets the strong photometric perturbation (the paper: the target's).
PERTURB_MODES = ("target", "online", "both", "none")

# --------------------------------------------------------------------------------------------
# Views, projector, loss
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConMIMViews:
    """One batch of ConMIM views: blockwise masks, patch offsets, and the perturbations.

    Attributes:
        masks: the hidden patches (``mask`` (B, N) bool) and the patch offsets.
        online_aug: the online branch's perturbation, or None (the paper: None).
        target_aug: the momentum branch's perturbation, or None.
    """

    masks: BlockMaskViews
    online_aug: Perturbation | None
    target_aug: Perturbation | None

    @property
    def mask(self) -> Tensor:
        """(B, N) bool, True where the patch is hidden."""
        return self.masks.mask

    @property
    def offsets(self) -> Tensor | None:
        """(B, N, 2) patch offsets, or None without a gap."""
        return self.masks.offsets

    def to(self, device: torch.device | str) -> ConMIMViews:
        return ConMIMViews(self.masks.to(device), *(None if a is None else a.to(device)
                                                    for a in (self.online_aug, self.target_aug)))

    def rows(self, index: slice) -> ConMIMViews:
        return ConMIMViews(self.masks.rows(index), *(None if a is None else a.rows(index)
                                                     for a in (self.online_aug, self.target_aug)))


class ConMIMProjector(nn.Sequential):
    """The authors' per-token MLP head (SimCLR-style, with BatchNorm over all tokens of the batch).

    ``depth - 1`` times Linear (no bias) -> BatchNorm1d -> ReLU, then Linear (no bias) ->
    BatchNorm1d without affine parameters. BatchNorm normalises over every token of the batch,
    the cls token included, as theirs; the layer indices match their ``projectors`` module.

    Args:
        dim: encoder width D.
        hidden_dim: hidden width (the paper: 4096).
        out_dim: output width (the paper: 256).
        depth: number of Linear layers (the paper: 3).
    """

    def __init__(self, dim: int, hidden_dim: int = 4096, out_dim: int = 256, depth: int = 3) -> None:
        layers: list[nn.Module] = []
        for i in range(depth):
            last = i == depth - 1
            d_in, d_out = (dim if i == 0 else hidden_dim), (out_dim if last else hidden_dim)
            layers.append(nn.Linear(d_in, d_out, bias=False))
            layers += [nn.BatchNorm1d(d_out, affine=False)] if last else [nn.BatchNorm1d(d_out), nn.ReLU()]
        super().__init__(*layers)
        for m in self:
            if isinstance(m, nn.Linear):  # the authors' init: normal std 0.02 truncated at +-1 std
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.02, b=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, L, out_dim), BatchNorm statistics over all B*L tokens."""
        b, length, _ = x.shape
        return super().forward(x.reshape(b * length, -1)).reshape(b, length, -1)


def denoising_contrast_loss(online: Tensor, target: Tensor, mask: Tensor, tau: float = 0.1) -> Tensor:
    """ConMIM's InfoNCE: each masked position must find its own patch among the image's N targets.

    Features are L2-normalised; the logits of position i are ``<q_i, k_j> / tau`` for all N
    patches j of the same image (masked or not), the label is i. The cross-entropy is averaged
    over every masked position of the batch (images may hide different numbers of patches),
    as the authors' ``CrossEntropyLoss()(logits[mask], labels[mask])``; it is computed for every
    position and weighted by the mask, so no count is read back to the host.

    Args:
        online: (B, N, E) online features of every position.
        target: (B, N, E) target features of every patch.
        mask: (B, N) bool, True at the masked positions (the only ones that count).
        tau: temperature.

    Returns:
        scalar loss, in at least fp32.
    """
    dtype = torch.promote_types(online.dtype, torch.float32)
    # Autocast would run the matmul in bf16/fp16 whatever the inputs' dtype: the logits stay fp32.
    with torch.autocast(online.device.type, enabled=False):
        q = F.normalize(online.to(dtype), dim=-1)
        k = F.normalize(target.to(dtype), dim=-1)
        logits = q @ k.transpose(1, 2) / tau  # (B, N, N)
        b, n, _ = logits.shape
        labels = torch.arange(n, device=logits.device).expand(b, n)
        ce = F.cross_entropy(logits.reshape(b * n, n), labels.reshape(-1), reduction="none").view(b, n)
        w = mask.to(dtype)
        return (ce * w).sum() / w.sum().clamp_min(1.0)


def masked_avg_similarity(x: Tensor, keep: Tensor) -> Tensor:
    """:func:`~latentmim.losses.similarity.avg_similarity` of each image's kept tokens.

    With blockwise masks images keep different numbers of tokens, so the selection cannot be
    stacked into (B, T, D); per image this is the same quantity, ``||mean_t u_t||^2`` of the
    unit vectors of its kept tokens, averaged over the batch.

    Args:
        x: (B, N, D); keep: (B, N) bool.

    Returns:
        detached scalar in [0, 1].
    """
    u = F.normalize(x.detach().float(), dim=-1) * keep[..., None]
    mean = u.sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp_min(1)
    return mean.pow(2).sum(dim=-1).mean()


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------


class ConMIM(PretrainMethod):
    """Online encoder + mask token + projector; a momentum encoder + projector as the target.

    Args:
        encoder: online ViT encoder (the network that is kept).
        projector: per-token head after the encoder (:class:`ConMIMProjector`).
        mask_frac: hidden patches per image as a fraction of N (the paper: 75 of 196).
        min_block_frac: smallest block as a fraction of N (the paper: 16 of 196).
        min_aspect: block aspect ratios in [min_aspect, 1/min_aspect] (the paper: 0.3).
        tau: InfoNCE temperature (the paper: 0.1).
        perturb: which branch's image gets the strong augmentation, one of
            :data:`PERTURB_MODES` (the paper: ``"target"``).
        target_mode: one of :data:`TARGET_MODES` (the paper: ``"ema"``).
        pixel_mean, pixel_std: the data's normalisation, to perturb pixels in [0, 1].
        patch_gap: gap g between patches in the training crop.
        seed: seed of the views drawn inside :meth:`forward` when none are given.

    Attributes:
        mask_token: (1, 1, D) the learned embedding of a hidden patch.
        masks: the blockwise mask generator of the grid.
    """

    def __init__(
        self,
        encoder: ViTEncoder,
        projector: nn.Module,
        mask_frac: float = PAPER_MASK_FRAC,
        min_block_frac: float = PAPER_MIN_BLOCK_FRAC,
        min_aspect: float = PAPER_MIN_ASPECT,
        tau: float = 0.1,
        perturb: str = "target",
        target_mode: str = "ema",
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        patch_gap: int = 0,
        seed: int = 0,
    ) -> None:
        masks = BlockMaskGenerator.from_fractions(encoder.grid_size, mask_frac, min_block_frac, min_aspect)
        n = encoder.grid_size**2
        super().__init__(encoder, n - masks.num_masked, patch_gap, seed)  # nominal visible count
        if target_mode not in TARGET_MODES:
            raise ValueError(f"target_mode must be one of {TARGET_MODES}, got {target_mode!r}")
        if perturb not in PERTURB_MODES:
            raise ValueError(f"perturb must be one of {PERTURB_MODES}, got {perturb!r}")
        if len(pixel_mean) != encoder.in_chans or len(pixel_std) != encoder.in_chans:
            raise ValueError(f"pixel_mean/pixel_std need {encoder.in_chans} values")
        self.masks = masks
        self.tau = tau
        self.perturb = perturb
        self.target_mode = target_mode
        self.mask_token = nn.Parameter(torch.zeros(1, 1, encoder.embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)  # the authors' init
        self.projector = projector
        self.register_buffer("pixel_mean", torch.tensor(list(pixel_mean)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(list(pixel_std)).view(1, -1, 1, 1), persistent=False)
        self.max_blur_sigma = BLUR_SIGMA_PER_PATCH[1] * encoder.patch_size
        self.target_encoder: ViTEncoder | None = None
        self.target_projector: nn.Module | None = None
        if target_mode == "ema":
            self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
            self.target_projector = copy.deepcopy(projector).requires_grad_(False)
        self._ema_pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def train(self, mode: bool = True) -> ConMIM:
        """The momentum encoder always runs in eval mode (no drop path on targets).

        Its projector follows ``mode``: the authors' momentum network is in training mode, so
        its BatchNorm normalises with the statistics of the batch's full images.
        """
        super().train(mode)
        if self.target_encoder is not None:
            self.target_encoder.eval()
        return self

    def sample_views(self, batch_size: int, generator: torch.Generator) -> ConMIMViews:
        """Blockwise masks, patch offsets with a gap, then the perturbations (on the CPU)."""
        masks = sample_block_views(batch_size, self.masks, self.patch_gap, generator)
        p = self.encoder.patch_size
        online = Perturbation.draw(batch_size, p, generator) if self.perturb in ("online", "both") else None
        target = Perturbation.draw(batch_size, p, generator) if self.perturb in ("target", "both") else None
        return ConMIMViews(masks, online, target)

    def _perturbed(self, imgs: Tensor, aug: Perturbation | None) -> Tensor:
        if aug is None:
            return imgs
        with torch.autocast(imgs.device.type, enabled=False):  # pixels in fp32, blur included
            out = perturb(imgs, aug, self.pixel_mean, self.pixel_std, self.max_blur_sigma)
        return out.to(imgs.dtype)


    def features(self, imgs: Tensor, views: ConMIMViews) -> tuple[Tensor, Tensor]:
        """Projected features of both branches, cls dropped after the projector.

        Args:
            imgs: (B, C, S, S) training crops.
            views: on the images' device.

        Returns:
            (online (B, N, E) of the masked image, target (B, N, E) of the full image); the
            target carries a gradient only with ``target_mode="naive"``.
        """
        enc = self.encoder
        ids = all_ids(imgs.shape[0], enc.grid_size, imgs.device)
        cut = (enc.grid_size, enc.patch_size, self.patch_gap)
        online_imgs = self._perturbed(imgs, views.online_aug)
        target_imgs = self._perturbed(imgs, views.target_aug)
        # Both branches see the same patches (the same cells and offsets) of their own image.
        patches = gather_patches(online_imgs, ids, views.offsets, *cut)
        online = self.projector(self.encoder.forward_masked(patches, views.mask, self.mask_token))[:, 1:]
        if target_imgs is not online_imgs:
            patches = gather_patches(target_imgs, ids, views.offsets, *cut)
        separate = self.target_encoder is not None
        encoder = self.target_encoder if separate else self.encoder
        projector = self.target_projector if separate else self.projector
        with torch.set_grad_enabled(self.target_mode == "naive" and torch.is_grad_enabled()):
            target = projector(encoder.forward_patches(patches, ids))[:, 1:]
        return online, (target if self.target_mode == "naive" else target.detach())

    def forward(self, imgs: Tensor, views: ConMIMViews | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = G*(P+g), normalised like the data.
            views: masks, offsets and perturbations; drawn here when None.

        Returns:
            (loss, metrics) with detached scalar metrics ``loss_pred``, ``avg_sim_pred`` (online
            features at the masked positions), ``avg_sim_vis`` (at the visible positions) and
            ``avg_sim_trg`` (target features at the masked positions), all in projector space.
        """
        views = self.views_for(imgs, views)
        online, target = self.features(imgs, views)
        mask = views.mask
        loss = denoising_contrast_loss(online, target, mask, self.tau)
        metrics = {
            "loss_pred": loss.detach(),
            "avg_sim_pred": masked_avg_similarity(online, mask),
            "avg_sim_vis": masked_avg_similarity(online, ~mask),
            "avg_sim_trg": masked_avg_similarity(target, mask),
        }
        return loss, metrics

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the momentum encoder and projector (no-op for the other target modes).

        BatchNorm running statistics are buffers, not parameters: each network keeps its own,
        as in the authors' code.
        """
        if self.target_encoder is None:
            return
        if self._ema_pairs is None:
            enc_t, enc_o = paired_parameters(self.target_encoder, self.encoder)
            proj_t, proj_o = paired_parameters(self.target_projector, self.projector)
            self._ema_pairs = (enc_t + proj_t, enc_o + proj_o)
        ema_update(*self._ema_pairs, momentum)
