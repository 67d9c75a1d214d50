"""Image-level features at the evaluation resolution (patch gap 0): encoder, raw pixels, any callable.

Used by the NN monitor during pre-training and by every evaluation suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentmim.engine.precision import autocast
from latentmim.engine.progress import live_bars
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


@torch.no_grad()
def extract_features(
    encode: Callable[[Tensor], Tensor],
    loader: Iterable,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Run a frozen encoder over a data loader and collect features and labels.

    The caller is responsible for putting the model in eval mode; ``encode`` is any
    callable (a bound method, a lambda selecting the cls token, :func:`raw_pixel_features`).

    Args:
        encode: maps a (B, C, H, W) image batch on ``device`` to (B, D) features.
        loader: yields tuples/lists whose first two items are images (B, C, H, W) and labels
            (B,); further items (indices, paths, ...) are ignored.
        device: where ``encode`` runs.
        progress: show a tqdm progress bar.
        desc: label of the progress bar.

    Returns:
        features: (N, D) float32 on CPU.
        labels: (N,) int64 on CPU.
    """
    feature_batches: list[Tensor] = []
    label_batches: list[Tensor] = []
    for batch in tqdm(loader, desc=desc, disable=not live_bars(progress)):
        images, labels = batch[0], batch[1]
        images = images.to(device, non_blocking=True)
        feats = encode(images)
        if feats.ndim != 2:
            raise ValueError(f"encode must return (B, D) features, got {tuple(feats.shape)}")
        # Keep results on CPU in float32 so a long pass does not fill accelerator memory
        # and the k-NN step is free to choose its own device.
        feature_batches.append(feats.detach().float().cpu())
        label_batches.append(torch.as_tensor(labels).reshape(-1).long().cpu())
    if not feature_batches:
        raise ValueError("the loader yielded no batches")
    return torch.cat(feature_batches), torch.cat(label_batches)


def raw_pixel_features(images: Tensor) -> Tensor:
    """Flatten images into vectors for the raw-pixel k-NN baseline.

    Args:
        images: (N, C, H, W) images; integer pixels are converted to float32.

    Returns:
        (N, C*H*W) features.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        images = images.float()
    return images.flatten(start_dim=1)
