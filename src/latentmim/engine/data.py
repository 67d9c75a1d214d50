"""Data loaders for pre-training and the NN monitor, built from the config at the edge."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from latentmim.config.schema import PretrainConfig
from latentmim.data.info import DatasetInfo
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.registry import build_dataset
from latentmim.data.transforms import eval_transform, train_transform


@dataclass
class PretrainData:
    info: DatasetInfo
    train: SeededDataset
    sampler: EpochSampler
    loader: DataLoader
    nn_train: DataLoader | None  # eval-transformed subsets for the NN monitor
    nn_val: DataLoader | None


def _raw(cfg: PretrainConfig, split: str):
    num = cfg.synthetic.num_train if split == "train" else cfg.synthetic.num_val
    return build_dataset(
        cfg.dataset,
        split,
        cfg.data_path,
        download=cfg.download,
        synthetic_size=cfg.synthetic.image_size,
        synthetic_num=num,
        seed=cfg.env.seed,
    )


def _subset(ds, limit: int | None, seed: int):
    """A fixed random subset (same for every eval of the run) of at most ``limit`` items."""
    if limit is None or limit >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    return Subset(ds, torch.randperm(len(ds), generator=g)[:limit].tolist())


def build_pretrain_data(cfg: PretrainConfig, device: torch.device, with_monitor: bool = True) -> PretrainData:
    """Training loader (seeded augmentation, resumable sampler) and NN-monitor loaders."""
    base, info = _raw(cfg, "train")
    train = SeededDataset(
        base, train_transform(cfg.train_size, cfg.min_crop, info.mean, info.std, info.in_chans), seed=cfg.env.seed
    )
    sampler = EpochSampler(len(train), seed=cfg.env.seed, shuffle=True)
    pin = device.type == "cuda"
    # Each loader gets its own generator: creating an iterator draws a worker seed from it, and
    # must not consume the global RNG (drop path), or a resumed run would diverge.
    common = dict(num_workers=cfg.env.workers, pin_memory=pin, persistent_workers=False)
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.env.seed), **common)
    nn_train = nn_val = None
    if with_monitor:
        tf = eval_transform(cfg.eval_size, info.mean, info.std)
        val_base, _ = _raw(cfg, "val")
        eval_bs = max(cfg.batch_size, 64)
        nn_train = DataLoader(
            _subset(SeededDataset(base, tf, seed=cfg.env.seed), cfg.nn_train_images, cfg.env.seed),
            batch_size=eval_bs, shuffle=False, generator=torch.Generator(), **common,
        )
        nn_val = DataLoader(
            _subset(SeededDataset(val_base, tf, seed=cfg.env.seed), cfg.nn_val_images, cfg.env.seed + 1),
            batch_size=eval_bs, shuffle=False, generator=torch.Generator(), **common,
        )
    return PretrainData(info, train, sampler, loader, nn_train, nn_val)
