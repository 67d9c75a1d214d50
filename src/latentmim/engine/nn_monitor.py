"""The NN monitor run during pre-training: official LOO 1-NN on val and weighted k-NN."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from latentmim.engine.distributed import all_gather_ordered, get_world_size, is_main_process
from latentmim.engine.features import encode_images, extract_features, raw_pixel_features
from latentmim.engine.knn import loo_1nn_accuracy, weighted_knn_accuracy
from latentmim.models.vit import ViTEncoder


def nn_scores(
    encode: Callable[[Tensor], Tensor],
    train_loader: Iterable,
    val_loader: Iterable,
    num_classes: int,
    device: torch.device,
    k: int = 20,
    temperature: float = 0.07,
    progress: bool = False,
) -> dict[str, float]:
    """Both NN protocols for one feature extractor.

    Under a process group (DDP pre-training) each loader must hold this rank's strided shard
    (:class:`latentmim.data.loader.EpochSampler` with ``rank``/``world_size``); the features
    are gathered across ranks, so every rank scores the whole set.

    Returns:
        ``nn_loo`` (official: leave-one-out 1-NN within val, %), ``knn{k}_top1`` (weighted
        k-NN train bank -> val queries, %).
    """
    progress = progress and is_main_process()
    val_x, val_y = _gathered(encode, val_loader, device, progress, "NN val features")
    train_x, train_y = _gathered(encode, train_loader, device, progress, "NN train features")
    knn = weighted_knn_accuracy(train_x, train_y, val_x, val_y, num_classes, k=k, temperature=temperature, topk=(1,))
    return {"nn_loo": loo_1nn_accuracy(val_x, val_y), f"knn{k}_top1": knn["top1"]}


def _gathered(encode: Callable[[Tensor], Tensor], loader: Iterable, device: torch.device, progress: bool,
              desc: str) -> tuple[Tensor, Tensor]:
    """Features of a whole eval set; under DDP each rank encodes its shard and all gather them."""
    x, y = extract_features(encode, loader, device, progress, desc)
    if get_world_size() == 1:
        return x, y
    total = len(loader.dataset)  # type: ignore[attr-defined]
    return all_gather_ordered(x, total), all_gather_ordered(y, total)


def encoder_nn_scores(encoder: ViTEncoder, *args, **kwargs) -> dict[str, float]:
    """:func:`nn_scores` for an encoder (official features: avg-pooled pre-norm patch tokens)."""
    was_training = encoder.training
    encoder.eval()
    try:
        return nn_scores(lambda x: encode_images(encoder, x), *args, **kwargs)
    finally:
        encoder.train(was_training)


def raw_pixel_nn_scores(*args, **kwargs) -> dict[str, float]:
    """:func:`nn_scores` on raw (normalised) pixels: the floor a learned feature must beat."""
    return nn_scores(raw_pixel_features, *args, **kwargs)
