"""The NN monitor run during pre-training: official LOO 1-NN on val and weighted k-NN."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from latentmim.models.vit import ViTEncoder
from latentmim.probing.features import (
    FeatureSet,
    encode_images,
    extract_features,
    raw_pixel_features,
)
from latentmim.probing.knn import loo_1nn_accuracy, weighted_knn_accuracy
from latentmim.runtime.distributed import all_gather_ordered, get_world_size, is_main_process
from latentmim.training.precision import autocast


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
        k-NN train bank -> val queries, %), and ``dropped_images`` when images of either set
        were unreadable (they are left out of both protocols).
    """
    progress = progress and is_main_process()
    val = _gathered(encode, val_loader, device, progress, "NN val features")
    train = _gathered(encode, train_loader, device, progress, "NN train features")
    # The neighbour search runs where the encoder does: on a GPU it takes milliseconds, on the
    # host it would take minutes per pass for ImageNet-sized banks (and one core per rank).
    (val_x, val_y), (train_x, train_y) = (tuple(t.to(device) for t in fs.readable()) for fs in (val, train))
    knn = weighted_knn_accuracy(train_x, train_y, val_x, val_y, num_classes, k=k, temperature=temperature, topk=(1,))
    scores = {"nn_loo": loo_1nn_accuracy(val_x, val_y), f"knn{k}_top1": knn["top1"]}
    if val.dropped or train.dropped:  # unreadable images: dropped, not scored as duplicates
        scores["dropped_images"] = float(val.dropped + train.dropped)
    return scores


def _gathered(encode: Callable[[Tensor], Tensor], loader: Iterable, device: torch.device, progress: bool,
              desc: str) -> FeatureSet:
    """Features of a whole eval set; under DDP each rank encodes its shard and all gather them.

    The readable flags are gathered with the features, so every rank drops the same rows.
    """
    fs = extract_features(encode, loader, device, progress, desc)
    if get_world_size() == 1:
        return fs
    total = len(loader.dataset)  # type: ignore[attr-defined]
    ok = all_gather_ordered(fs.ok.to(torch.uint8), total).bool()  # as bytes: not every backend gathers bool
    return FeatureSet(all_gather_ordered(fs.features, total), all_gather_ordered(fs.labels, total), ok)


def encoder_nn_scores(encoder: ViTEncoder, *args, precision: str = "fp32", compile: bool = False,
                      **kwargs) -> dict[str, float]:
    """:func:`nn_scores` for an encoder (official features: avg-pooled pre-norm patch tokens).

    ``precision`` is the autocast of the encoder's forward (the run's ``env.precision``); the
    features come back in float32, and the k-NN math always runs in float32. ``compile``
    compiles the feature forward (the weights stay the encoder's own).
    """
    was_training = encoder.training
    encoder.eval()

    def encode(x: Tensor) -> Tensor:
        with autocast(precision, x.device):
            return encode_images(encoder, x)

    try:
        return nn_scores(torch.compile(encode) if compile else encode, *args, **kwargs)
    finally:
        encoder.train(was_training)


def raw_pixel_nn_scores(*args, **kwargs) -> dict[str, float]:
    """:func:`nn_scores` on raw (normalised) pixels: the floor a learned feature must beat."""
    return nn_scores(raw_pixel_features, *args, **kwargs)
