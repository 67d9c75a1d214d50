"""Where a linear probe's training batches come from: cached features, or augmented images.

Both yield ``(features (B, D), labels (B,))`` for epoch ``e`` starting at batch ``start``, in an
order that is a pure function of (seed, epoch), so a resumed probe sees the same batches.
Incomplete last batches are dropped (as MAE's loaders do), keeping BatchNorm statistics sane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from latentmim.config.errors import ConfigError
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.seeding import PERMUTATION_STREAM, derive_seed


def _steps(n: int, batch_size: int) -> int:
    steps = n // batch_size
    if steps == 0:
        raise ConfigError(f"config key 'batch_size': {batch_size} exceeds the {n} training samples")
    return steps


class CachedFeatures:
    """Batches of precomputed features (the fast, augmentation-free probe).

    Args:
        features: (N, D) float features.
        labels: (N,) int64 labels.
        batch_size: B.
        seed: shuffling seed.
        device: where batches are delivered.
    """

    def __init__(self, features: Tensor, labels: Tensor, batch_size: int, seed: int,
                 device: torch.device | str = "cpu") -> None:
        self.features = features.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = _steps(features.shape[0], batch_size)

    def batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(derive_seed(PERMUTATION_STREAM, self.seed, epoch))
        order = torch.randperm(self.features.shape[0], generator=g).to(self.features.device)
        for b in range(start, self.steps_per_epoch):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.features[idx], self.labels[idx]


class AugmentedFeatures:
    """Features of freshly augmented images through a frozen encoder (MAE's protocol).

    Args:
        base: dataset of ``(PIL image, label)``.
        transform: random train transform (crop + flip + normalise), seeded per sample.
        encode: frozen feature function, (B, C, H, W) on ``device`` -> (B, D).
        batch_size: B.
        seed: run seed (sample order and augmentation).
        workers: DataLoader processes.
        device: where ``encode`` runs.
    """

    def __init__(self, base: Dataset, transform: Callable, encode: Callable[[Tensor], Tensor],
                 batch_size: int, seed: int, workers: int, device: torch.device) -> None:
        self.data = SeededDataset(base, transform, seed=seed)
        self.sampler = EpochSampler(len(self.data), seed=seed, shuffle=True)
        self.loader = DataLoader(self.data, batch_size=batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=workers, pin_memory=device.type == "cuda",
                                 generator=torch.Generator().manual_seed(seed))
        self.encode = encode
        self.device = device
        self.batch_size = batch_size
        self.steps_per_epoch = _steps(len(self.data), batch_size)

    def batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        self.data.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(start * self.batch_size)
        for b, (imgs, labels, _) in enumerate(self.loader, start=start):
            if b >= self.steps_per_epoch:
                break
            with torch.no_grad():
                feats = self.encode(imgs.to(self.device, non_blocking=True))
            yield feats.float(), labels.to(self.device)
