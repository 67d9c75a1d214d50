"""Image-level features of an encoder at the evaluation resolution (patch gap 0)."""

from __future__ import annotations

import torch
from torch import Tensor

from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.vit import ViTEncoder

FEATURES = ("avgpool_prenorm", "avgpool", "cls")


@torch.no_grad()
def encode_images(encoder: ViTEncoder, imgs: Tensor, feature: str = "avgpool_prenorm") -> Tensor:
    """Encode whole images.

    Args:
        encoder: the online encoder.
        imgs: (B, C, G*P, G*P) normalised images.
        feature: ``avgpool_prenorm`` (the official NN protocol: mean of the patch tokens before
            the final norm, cls excluded), ``avgpool`` (same after the norm) or ``cls``.

    Returns:
        (B, D) float32 features (not normalised; the k-NN code normalises).
    """
    patches = patchify(imgs, encoder.patch_size)  # (B, N, P*P*C)
    ids = all_ids(imgs.shape[0], encoder.grid_size, imgs.device)
    normed, prenorm = encoder.forward_patches(patches, ids, return_prenorm=True)
    if feature == "avgpool_prenorm":
        out = prenorm[:, 1:].mean(dim=1)
    elif feature == "avgpool":
        out = normed[:, 1:].mean(dim=1)
    elif feature == "cls":
        out = normed[:, 0]
    else:
        raise ValueError(f"unknown feature {feature!r}; choose one of {', '.join(FEATURES)}")
    return out.float()
