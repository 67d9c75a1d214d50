"""Image-level features at the evaluation resolution (patch gap 0): encoder, raw pixels, any callable.

Used by the NN monitor during pre-training and by every evaluation suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentmim.masking.patchify import all_ids, centre_cut_patches, patchify
from latentmim.models.vit import ViTEncoder
from latentmim.runtime.progress import live_bars
from latentmim.training.precision import autocast

FEATURES = ("avgpool_prenorm", "avgpool", "cls")


class FeatureSet(NamedTuple):
    """Features of an evaluation set, with which rows came from a readable image.

    A loader over a :class:`~latentmim.data.robust.RobustDataset` replaces an unreadable image
    by the next readable one and flags it (``ok`` False). Kept, those substitutes are duplicates
    of their neighbour, match it in leave-one-out 1-NN and inflate the score: evaluations drop
    them (:meth:`readable`) and report how many (:attr:`dropped`).

    Attributes:
        features: (N, D) float32 on CPU, one row per loaded item.
        labels: (N,) int64 on CPU.
        ok: (N,) bool, False where the item was a substitute for an unreadable image.
    """

    features: Tensor
    labels: Tensor
    ok: Tensor

    @property
    def dropped(self) -> int:
        """Number of rows that stand for unreadable images."""
        return int((~self.ok).sum())

    def readable(self) -> tuple[Tensor, Tensor]:
        """``(features, labels)`` of the readable images only: (M, D) and (M,), M = N - dropped."""
        if bool(self.ok.all()):
            return self.features, self.labels
        return self.features[self.ok], self.labels[self.ok]


@torch.no_grad()
def encode_images(encoder: ViTEncoder, imgs: Tensor, feature: str = "avgpool_prenorm", patch_gap: int = 0) -> Tensor:
    """Encode whole images.

    Args:
        encoder: the online encoder.
        imgs: (B, C, G*P, G*P) normalised images, or (B, C, G*(P+g), G*(P+g)) with a gap g.
        feature: ``avgpool_prenorm`` (the official NN protocol: mean of the patch tokens before
            the final norm, cls excluded), ``avgpool`` (same after the norm) or ``cls``.
        patch_gap: 0 (every protocol: contiguous patches) or g > 0, the *training view*: each
            G*(P+g) image is read as pre-training with a patch gap reads it, one P x P patch per
            cell of P+g pixels, cut at the cell's centre (offset g // 2; training draws it in
            [0, g)). A measurement of the train/eval mismatch of the gap (docs/recipes.md#why-a-patch-gap-of-2-px).

    Returns:
        (B, D) float32 features (not normalised; the k-NN code normalises).
    """
    ids = all_ids(imgs.shape[0], encoder.grid_size, imgs.device)
    if patch_gap:
        patches = centre_cut_patches(imgs, encoder.grid_size, encoder.patch_size, patch_gap)
    else:
        patches = patchify(imgs, encoder.patch_size)  # (B, N, P*P*C)
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
) -> FeatureSet:
    """Features of a frozen encoder over a loader of ``(images, labels[, ok])`` batches.

    Args:
        encoder: the encoder (put in eval mode here, restored afterwards).
        loader: yields (B, C, G*P, G*P) images and (B,) labels first.
        feature: see :func:`encode_images`.
        device: where the encoder runs.
        precision: ``fp32`` | ``bf16`` | ``fp16`` autocast; features come back in float32.
        progress: show a tqdm bar (rate and ETA).
        desc: the bar's label.

    Returns:
        The :class:`FeatureSet` (float32 features, int64 labels, readable flags), on CPU.
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
) -> FeatureSet:
    """Run a frozen encoder over a data loader and collect features, labels and readable flags.

    The caller is responsible for putting the model in eval mode; ``encode`` is any
    callable (a bound method, a lambda selecting the cls token, :func:`raw_pixel_features`).

    Args:
        encode: maps a (B, C, H, W) image batch on ``device`` to (B, D) features.
        loader: yields tuples/lists whose first two items are images (B, C, H, W) and labels
            (B,); a third item that is a (B,) bool tensor is the readable flag of
            :class:`~latentmim.data.loader.SeededDataset`; other items (indices, paths) are ignored.
        device: where ``encode`` runs.
        progress: show a tqdm progress bar.
        desc: label of the progress bar.

    Returns:
        The :class:`FeatureSet`: (N, D) float32 features, (N,) int64 labels, (N,) readable flags
        (all True for loaders without them), on CPU.
    """
    feature_batches: list[Tensor] = []
    label_batches: list[Tensor] = []
    ok_batches: list[Tensor] = []
    for batch in tqdm(loader, desc=desc, disable=not live_bars(progress)):
        images, labels = batch[0], batch[1]
        flags = batch[2] if len(batch) > 2 and isinstance(batch[2], Tensor) and batch[2].dtype == torch.bool else None
        ok_batches.append(flags.reshape(-1).cpu() if flags is not None else torch.ones(len(images), dtype=torch.bool))
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
    return FeatureSet(torch.cat(feature_batches), torch.cat(label_batches), torch.cat(ok_batches))


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
