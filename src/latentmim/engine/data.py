"""Data loaders for pre-training and the NN monitor, built from the config at the edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from latentmim.config.schema import PretrainConfig
from latentmim.data.batch_augment import BatchCropFlip, DrawCropFlip
from latentmim.data.info import DatasetInfo
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.registry import FIXED_SIZE_DATASETS, build_dataset
from latentmim.data.seeding import seeded_subset
from latentmim.data.tensor_augment import TensorCropFlip
from latentmim.data.transforms import eval_transform, train_transform


@dataclass
class PretrainData:
    info: DatasetInfo
    train: SeededDataset
    sampler: EpochSampler
    loader: DataLoader
    nn_train: DataLoader | None  # eval-transformed subsets for the NN monitor
    nn_val: DataLoader | None
    # A batch of `loader`'s images -> (B, C, S, S) float on the training device: the transfer,
    # and for augment=batch the crop, flip and normalisation done there for the whole batch.
    to_device: Callable[[Any], torch.Tensor]


class _Transfer:
    """The plain transfer of an already augmented batch (augment=pil or tensor)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True)


def augment_mode(cfg: PretrainConfig) -> str:
    """``cfg.augment`` with ``auto`` resolved: ``batch`` where the dataset's images share one size
    (the PIL path's tensors, bit for bit, faster), ``pil`` elsewhere."""
    if cfg.augment == "auto":
        return "batch" if cfg.dataset in FIXED_SIZE_DATASETS else "pil"
    return cfg.augment


def raw_dataset(cfg: PretrainConfig, split: str):
    """The un-transformed ``split`` of the run's dataset and its :class:`DatasetInfo`."""
    num = cfg.synthetic.num_train if split == "train" else cfg.synthetic.num_val
    return build_dataset(
        cfg.dataset,
        split,
        cfg.data_path,
        download=cfg.download,
        synthetic_size=cfg.synthetic.image_size,
        synthetic_num=num,
        seed=cfg.data_seed,
    )


def _shard(ds, rank: int, world_size: int) -> EpochSampler | None:
    """In-order strided shard of an evaluation set (None = the whole set, in order)."""
    if world_size == 1:
        return None
    return EpochSampler(len(ds), shuffle=False, rank=rank, world_size=world_size)


def build_pretrain_data(
    cfg: PretrainConfig, device: torch.device, with_monitor: bool = True, rank: int = 0, world_size: int = 1
) -> PretrainData:
    """Training loader (seeded augmentation, resumable sampler) and NN-monitor loaders.

    With ``world_size > 1`` every loader holds this rank's strided shard: each global training
    batch of ``world_size * batch_size`` images is the single-process batch (the tail that does
    not fill a global batch is dropped), and the monitor's shards are padded to equal length so
    their features can be gathered (:func:`latentmim.runtime.distributed.all_gather_ordered`).
    """
    base, info = raw_dataset(cfg, "train")
    mode = augment_mode(cfg)
    make_transform = {"pil": train_transform, "tensor": TensorCropFlip, "batch": DrawCropFlip}[mode]
    train = SeededDataset(  # train_images: a fixed subset, so short runs can still finish epochs
        seeded_subset(base, cfg.train_images, cfg.data_seed + 2),
        make_transform(cfg.train_size, cfg.min_crop, info.mean, info.std, info.in_chans), seed=cfg.env.seed,
    )
    sampler = EpochSampler(len(train), seed=cfg.env.seed, shuffle=True, drop_last=world_size > 1,
                           rank=rank, world_size=world_size)
    pin = device.type == "cuda"
    # Each loader gets its own generator: creating an iterator draws a worker seed from it, and
    # must not consume the global RNG (drop path), or a resumed run would diverge.
    common = dict(num_workers=cfg.env.workers, pin_memory=pin, persistent_workers=False)
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.env.seed), **common)
    nn_train = nn_val = None
    if with_monitor:
        nn_train, nn_val = build_monitor_loaders(cfg, device, base=(base, info), rank=rank, world_size=world_size)
    # augment=batch: the loader yields CropJobs (uncropped pixels, drawn boxes), cropped on the device
    to_device = BatchCropFlip(cfg.train_size, info.mean, info.std, device) if mode == "batch" else _Transfer(device)
    return PretrainData(info, train, sampler, loader, nn_train, nn_val, to_device)


def build_monitor_loaders(
    cfg: PretrainConfig,
    device: torch.device,
    size: int | None = None,
    base: tuple | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader, DataLoader]:
    """The NN monitor's (train bank, val) loaders: fixed subsets, eval-transformed.

    Args:
        cfg: the run's config (dataset, subset sizes and seeds).
        device: where the features will be computed (pins memory for CUDA).
        size: image side; ``cfg.eval_size`` (G*P) unless given, e.g. ``cfg.train_size`` to read
            the images with the training's patch gap (:func:`latentmim.probing.features.encode_images`).
            The subsets are the same images whatever the size.
        base: the ``(train dataset, info)`` already built for training, so a rendered dataset's
            cache is shared; built here when None.
        rank, world_size: this process's strided shard under DDP.
    """
    base_ds, info = base if base is not None else raw_dataset(cfg, "train")
    tf = eval_transform(size or cfg.eval_size, info.mean, info.std)
    val_base, _ = raw_dataset(cfg, "val")
    eval_bs = max(cfg.batch_size, 64)
    common = dict(num_workers=cfg.env.workers, pin_memory=device.type == "cuda", persistent_workers=False)
    nn_train_set = seeded_subset(SeededDataset(base_ds, tf, seed=cfg.env.seed), cfg.nn_train_images, cfg.data_seed)
    nn_val_set = seeded_subset(SeededDataset(val_base, tf, seed=cfg.env.seed), cfg.nn_val_images, cfg.data_seed + 1)
    nn_train = DataLoader(nn_train_set, batch_size=eval_bs, sampler=_shard(nn_train_set, rank, world_size),
                          generator=torch.Generator(), **common)
    nn_val = DataLoader(nn_val_set, batch_size=eval_bs, sampler=_shard(nn_val_set, rank, world_size),
                        generator=torch.Generator(), **common)
    return nn_train, nn_val
