"""Deterministic data pipeline pieces: per-sample seeded augmentation and an epoch sampler.

Together they make a training run reproducible independently of the number of
DataLoader workers and resumable in the middle of an epoch:

* :class:`EpochSampler` fixes *which* samples come in which order for
  (seed, epoch), and can skip the already-consumed head of an epoch;
* :class:`SeededDataset` fixes *how* sample ``i`` is augmented in epoch ``e``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from latentmim.data.errors import DataError
from latentmim.data.robust import RobustDataset
from latentmim.data.seeding import (
    AUGMENT_STREAM,
    PERMUTATION_STREAM,
    derive_seed,
    seeded_global_rngs,
    seeded_torch_rng,
)


class SeededDataset(Dataset):
    """Apply a random transform whose randomness depends only on (seed, epoch, index).

    The epoch lives in a shared-memory tensor, so :meth:`set_epoch` in the main
    process also reaches DataLoader workers that were started earlier
    (``persistent_workers=True``); call it before creating the epoch's iterator.

    Args:
        base: Dataset returning ``(PIL image, label)``. If it is a
            :class:`~latentmim.data.robust.RobustDataset`, substituted (unreadable)
            samples are reported through the ``ok`` flag.
        transform: Callable PIL image -> tensor (C, H, W), e.g. from
            :mod:`latentmim.data.transforms`; may use torch/random/numpy global RNGs. One with
            ``torch_rng_only = True`` (:class:`~latentmim.data.transforms.TorchRngCompose`) gets
            only torch's RNG seeded (the same tensors, less overhead).
        seed: Non-negative run seed.
    """

    def __init__(
        self, base: Dataset, transform: Callable[[Any], torch.Tensor], seed: int = 0
    ) -> None:
        if seed < 0:
            raise DataError(f"seed must be non-negative, got {seed}")
        self.base = base
        self.transform = transform
        self.seed = int(seed)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (>= 0)."""
        if epoch < 0:
            raise DataError(f"epoch must be non-negative, got {epoch}")
        self._epoch[0] = epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, bool]:
        """Load and augment sample ``index``.

        Returns:
            ``(image, label, ok)``: float tensor (C, H, W); int label; ``ok`` is False
            when the requested file was unreadable and a neighbour was substituted.
        """
        if isinstance(self.base, RobustDataset):
            result = self.base.load(index)
            image, label, ok = result.image, result.label, result.ok
        else:
            image, label = self.base[index]
            ok = True
        # Seeded by the requested index, so a substitute is augmented reproducibly too.
        seed = derive_seed(AUGMENT_STREAM, self.seed, self.epoch, index)
        seeded = seeded_torch_rng if getattr(self.transform, "torch_rng_only", False) else seeded_global_rngs
        with seeded(seed):
            tensor = self.transform(image)
        return tensor, int(label), ok


class EpochSampler(Sampler[int]):
    """Epoch-seeded permutation sampler with mid-epoch resume and rank sharding.

    Epoch ``e`` visits ``torch.randperm(num_samples)`` drawn from a generator seeded
    by (seed, e) (or ``0..num_samples-1`` when ``shuffle=False``). For distributed
    use, the epoch order is first made divisible by ``world_size`` (``drop_last``
    drops the tail, otherwise the head is repeated, as in torch's DistributedSampler)
    and rank ``r`` takes elements ``r, r + world_size, ...``. With the defaults
    (rank 0 of 1) every sample is visited exactly once per epoch.

    Batch-level ``drop_last`` (an incomplete last batch) is the DataLoader's job.

    Args:
        num_samples: Dataset length.
        shuffle: Permute per epoch (training) or keep dataset order (evaluation).
        seed: Non-negative run seed.
        drop_last: Drop the tail that does not divide evenly among ranks.
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: Number of processes sharing the epoch.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_samples < 0:
            raise DataError(f"num_samples must be non-negative, got {num_samples}")
        if seed < 0:
            raise DataError(f"seed must be non-negative, got {seed}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(
                f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        self.num_samples = int(num_samples)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    @property
    def samples_per_epoch(self) -> int:
        """Samples this rank visits in a full epoch (before :meth:`set_start`)."""
        if self.drop_last:
            return self.num_samples // self.world_size
        return -(-self.num_samples // self.world_size)  # ceil

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (>= 0) and reset the start offset to 0."""
        if epoch < 0:
            raise DataError(f"epoch must be non-negative, got {epoch}")
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, index: int) -> None:
        """Skip the first ``index`` samples of this rank's current epoch (mid-epoch resume).

        Call after :meth:`set_epoch`, which resets the offset. ``index`` counts this
        rank's samples, i.e. batches already consumed times the per-rank batch size.
        """
        if not 0 <= index <= self.samples_per_epoch:
            raise DataError(
                f"start index {index} outside [0, {self.samples_per_epoch}] for this epoch"
            )
        self.start = int(index)

    def epoch_indices(self) -> list[int]:
        """This rank's full order for the current epoch, ignoring the start offset."""
        n = self.num_samples
        if self.shuffle:
            gen = torch.Generator().manual_seed(
                derive_seed(PERMUTATION_STREAM, self.seed, self.epoch)
            )
            order = torch.randperm(n, generator=gen).tolist()
        else:
            order = list(range(n))
        total = self.samples_per_epoch * self.world_size
        if total > n:
            # Pad by repeating the head (possibly several times when n < world_size).
            order = (order * (-(-total // n)))[:total] if n else []
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.start :])

    def __len__(self) -> int:
        return self.samples_per_epoch - self.start
