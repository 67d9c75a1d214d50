"""Image-level features of an encoder at the evaluation resolution (patch gap 0)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from latentmim.engine.precision import autocast
from latentmim.eval.knn import extract_features
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


def extract_encoder_features(
    encoder: ViTEncoder,
    loader: Iterable,
    feature: str,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = False,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Features of a frozen encoder over a loader of ``(images, labels, ...)`` batches.

    Args:
        encoder: the encoder (put in eval mode here, restored afterwards).
        loader: yields (B, C, G*P, G*P) images and (B,) labels first.
        feature: see :func:`encode_images`.
        device: where the encoder runs.
        precision: ``fp32`` | ``bf16`` | ``fp16`` autocast; features come back in float32.
        progress: show a tqdm bar (rate and ETA).
        desc: the bar's label.

    Returns:
        (N, D) float32 features and (N,) int64 labels, on CPU.
    """
    was_training = encoder.training
    encoder.eval()

    def encode(x: Tensor) -> Tensor:
        with autocast(precision, device):
            return encode_images(encoder, x, feature)

    try:
        return extract_features(encode, loader, device, progress, desc)
    finally:
        encoder.train(was_training)
