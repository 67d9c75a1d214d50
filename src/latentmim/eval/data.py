"""Evaluation data: which dataset, at the encoder's resolution and channel count.

The dataset and its settings default to the checkpoint's pre-training data; ``dataset=`` (and
friends) evaluate on something else. Images are resized to the encoder's G*P side (patch gap 0,
METHOD.md section 1) and converted to its channel count, so a grayscale Fashion-MNIST encoder can
be scored on RGB data and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import EvalCommon
from latentmim.config.load import DATASETS
from latentmim.config.schema import SyntheticConfig
from latentmim.data.info import DatasetInfo
from latentmim.data.loader import SeededDataset
from latentmim.data.registry import build_dataset
from latentmim.data.robust import RobustDataset
from latentmim.data.seeding import seeded_subset
from latentmim.data.transforms import eval_transform
from latentmim.interop.load import Pretrained


@dataclass(frozen=True)
class DataSpec:
    """Everything :func:`~latentmim.data.registry.build_dataset` needs, resolved."""

    dataset: str
    data_path: str | None
    download: bool
    synthetic_num_train: int
    synthetic_num_val: int
    synthetic_size: int
    synthetic_seed: int  # identity of the procedural data (the pre-training run's seed)


def resolve_data(cfg: EvalCommon, loaded: Pretrained) -> DataSpec:
    """Fill the dataset settings the user left out from the checkpoint's pre-training config.

    A checkpoint never decides what is written where: ``download`` is the user's (default
    false), and the checkpoint's stored ``data_path`` is used only to read a dataset already on
    disk. With ``download=true`` the folder comes from the command line or the dataset's
    documented default, so a crafted checkpoint cannot make an evaluation download into a folder
    of its choosing.

    Raises:
        ConfigError: no dataset given and none stored in the checkpoint, or an unknown one.
    """
    pre = loaded.config
    dataset = cfg.dataset or (pre.dataset if pre else None)
    if dataset is None:
        raise ConfigError(
            f"config key 'dataset': checkpoint '{loaded.source}' does not say what it was trained "
            "on; pass dataset=NAME"
        )
    if dataset not in DATASETS:
        raise ConfigError(f"config key 'dataset': {dataset!r} is not one of {', '.join(DATASETS)}")
    same = pre is not None and dataset == pre.dataset
    inherit = same and not cfg.download  # read-only use of the stored path
    data_path = cfg.data_path if cfg.data_path is not None else (pre.data_path if inherit else None)
    syn = pre.synthetic if pre else SyntheticConfig()
    return DataSpec(
        dataset=dataset,
        data_path=data_path,
        download=cfg.download,
        synthetic_num_train=cfg.synthetic.num_train or syn.num_train,
        synthetic_num_val=cfg.synthetic.num_val or syn.num_val,
        synthetic_size=cfg.synthetic.image_size or syn.image_size,
        synthetic_seed=pre.data_seed if pre else 0,
    )


def load_split(spec: DataSpec, split: str) -> tuple[Dataset, DatasetInfo]:
    """One split of the dataset, items ``(PIL image, label)``. Raises DataError."""
    num = spec.synthetic_num_train if split == "train" else spec.synthetic_num_val
    return build_dataset(spec.dataset, split, spec.data_path, download=spec.download,
                         synthetic_size=spec.synthetic_size, synthetic_num=num,
                         seed=spec.synthetic_seed)


def channel_stats(info: DatasetInfo, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalisation mean/std for ``in_chans`` channels (the transforms convert L <-> RGB).

    RGB data for a grayscale encoder uses the channel-averaged statistics (an approximation of
    the luma statistics); grayscale data for an RGB encoder repeats its single value.
    """
    if info.in_chans == in_chans:
        return info.mean, info.std
    if in_chans == 1:
        return (sum(info.mean) / len(info.mean),), (sum(info.std) / len(info.std),)
    return tuple(info.mean) * in_chans, tuple(info.std) * in_chans


def dataset_labels(ds: Dataset) -> Tensor:
    """(N,) int64 labels of an ``(image, label)`` dataset.

    Read from a label list when the dataset (under Subset / RobustDataset wrappers) keeps one
    (``targets``, torchvision's ``_labels``, Caltech101's ``y``), else by loading every item.
    """
    if isinstance(ds, Subset):
        return dataset_labels(ds.dataset)[torch.as_tensor(ds.indices, dtype=torch.long)]
    if isinstance(ds, RobustDataset):
        return dataset_labels(ds.base)
    for attr in ("targets", "_labels", "y"):
        labels = getattr(ds, attr, None)
        if labels is not None and len(labels) == len(ds):  # type: ignore[arg-type]
            return torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return torch.tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.long)  # type: ignore[arg-type]


def make_loader(
    base: Dataset,
    transform: Callable,
    batch_size: int,
    workers: int,
    device: torch.device,
    seed: int = 0,
    shuffle: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A loader of ``(image tensor, label, ok)``; augmentation is seeded per (seed, epoch, index)."""
    ds = SeededDataset(base, transform, seed=seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator().manual_seed(seed))


@dataclass
class EvalSplits:
    """Train and val splits (subsets applied) with the eval transform of an encoder."""

    spec: DataSpec
    info: DatasetInfo
    train: Dataset | None  # None when the evaluation asked for val only
    val: Dataset
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    in_chans: int

    def eval_transform(self) -> Callable:
        return eval_transform(self.image_size, self.mean, self.std)


def build_eval_splits(cfg: EvalCommon, loaded: Pretrained, need_train: bool = True) -> EvalSplits:
    """The train/val splits an evaluation runs on (``train_images``/``val_images`` subsets)."""
    spec = resolve_data(cfg, loaded)
    val, info = load_split(spec, "val")
    train = seeded_subset(load_split(spec, "train")[0], cfg.train_images, cfg.seed) if need_train else None
    mean, std = channel_stats(info, loaded.encoder.in_chans)
    return EvalSplits(
        spec=spec,
        info=info,
        train=train,
        val=seeded_subset(val, cfg.val_images, cfg.seed + 1),
        mean=mean,
        std=std,
        image_size=loaded.image_size,
        in_chans=loaded.encoder.in_chans,
    )
