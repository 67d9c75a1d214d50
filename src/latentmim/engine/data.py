"""Data loaders for pre-training and the NN monitor, built from the config at the edge.

Pre-training reads images only: a built-in dataset, any folder of images (``dataset=imagefolder``,
labels not needed), or a ``Dataset`` handed to :func:`latentmim.pretrain` from Python. The NN
monitor (and the end-of-run baselines) need labelled evaluation data: the training dataset when
it has labels, else ``nn_dataset`` / ``nn_data_path``; without any, the monitor is off and the
run says so (:func:`monitor_data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.data.info import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo, dataset_stats
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.registry import build_dataset
from latentmim.data.robust import RobustDataset
from latentmim.data.seeding import seeded_subset
from latentmim.data.transforms import eval_transform, train_transform
from latentmim.data.unlabelled import ImageFiles, UserImages

# ``dataset`` of a run whose images came from a Dataset passed to latentmim.pretrain in Python.
CUSTOM = "custom"
# Built-in datasets whose items carry class labels (the NN monitor can score on them).
LABELLED = ("synthetic", "fashion_mnist", "cifar10", "cifar100", "stl10", "imagenet", "imagenet100")


@dataclass
class PretrainData:
    info: DatasetInfo
    train: SeededDataset
    sampler: EpochSampler
    loader: DataLoader
    nn_train: DataLoader | None  # eval-transformed labelled subsets for the NN monitor (None: off)
    nn_val: DataLoader | None
    nn_classes: int  # classes of the monitor's labels
    monitor: str  # what the monitor scores on, or why it is off (printed at the start)


@dataclass(frozen=True)
class MonitorData:
    """Where the NN monitor's labelled images come from (``dataset`` None: the monitor is off)."""

    dataset: str | None
    data_path: str | None
    reason: str  # one line for the log: what is scored, or why nothing is


def _folder_root(path: str | None) -> Path:
    if path is None:
        raise ConfigError("config key 'data_path': dataset=imagefolder needs data_path=DIR (a folder of images)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"config key 'data_path': '{root}' is not a folder")
    return root


def _has_labelled_splits(root: Path) -> bool:
    """``root/train/<class>/`` and ``root/val/<class>/``: the layout of a labelled image folder."""
    return all((root / split).is_dir() and any(p.is_dir() for p in (root / split).iterdir())
               for split in ("train", "val"))


def train_images(cfg: PretrainConfig, dataset: Dataset | None = None) -> tuple[Dataset, DatasetInfo]:
    """The un-transformed training images and their :class:`DatasetInfo`.

    Args:
        cfg: the run's config.
        dataset: a user's map-style dataset (items: images, or tuples starting with one);
            ``cfg.dataset`` is then ``custom``.
    """
    if dataset is not None:
        return UserImages(dataset), DatasetInfo(CUSTOM, 1, 3, IMAGENET_MEAN, IMAGENET_STD)
    if cfg.dataset == CUSTOM:
        raise ConfigError("config key 'dataset': 'custom' is a Dataset passed to latentmim.pretrain(cfg, dataset=...) "
                          "from Python; from the command line use a built-in dataset or dataset=imagefolder data_path=DIR")
    if cfg.dataset == "imagefolder":
        root = _folder_root(cfg.data_path)
        files = ImageFiles(root / "train" if (root / "train").is_dir() else root)
        mean, std = dataset_stats(cfg.dataset)
        return RobustDataset(files, name=f"imagefolder '{files.root}'"), DatasetInfo("imagefolder", 1, 3, mean, std)
    return _split(cfg, cfg.dataset, cfg.data_path, "train")


def _split(cfg: PretrainConfig, name: str, path: str | None, split: str) -> tuple[Dataset, DatasetInfo]:
    num = cfg.synthetic.num_train if split == "train" else cfg.synthetic.num_val
    return build_dataset(name, split, path, download=cfg.download, synthetic_size=cfg.synthetic.image_size,
                         synthetic_num=num, seed=cfg.data_seed)


def raw_dataset(cfg: PretrainConfig, split: str) -> tuple[Dataset, DatasetInfo]:
    """The un-transformed ``split`` of the NN monitor's labelled data (:func:`monitor_data`).

    Raises:
        ConfigError: the monitor has no labelled data.
    """
    source = monitor_data(cfg)
    if source.dataset is None:
        raise ConfigError(source.reason)
    return _split(cfg, source.dataset, source.data_path, split)


def monitor_data(cfg: PretrainConfig) -> MonitorData:
    """The labelled data the NN monitor scores on, or why it is off."""
    if cfg.eval_freq == 0:
        return MonitorData(None, None, "NN monitor off (eval_freq=0)")
    if cfg.nn_dataset is not None:
        return MonitorData(cfg.nn_dataset, cfg.nn_data_path,
                           f"NN monitor on {cfg.nn_dataset}" + (f" at {cfg.nn_data_path}" if cfg.nn_data_path else ""))
    if cfg.dataset in LABELLED:
        return MonitorData(cfg.dataset, cfg.data_path, f"NN monitor on {cfg.dataset}'s labelled images")
    if cfg.dataset == "imagefolder" and cfg.data_path and _has_labelled_splits(Path(cfg.data_path).expanduser()):
        return MonitorData("imagefolder", cfg.data_path, f"NN monitor on the class folders of {cfg.data_path}/train and /val")
    what = "a Dataset from Python" if cfg.dataset == CUSTOM else f"the images of {cfg.data_path}"
    return MonitorData(None, None, f"NN monitor off: {what} carry no labels; give nn_dataset=NAME "
                                   "(and nn_data_path=DIR, e.g. an image folder with train/ and val/ class folders) to score the encoder")


def _shard(ds: Dataset, rank: int, world_size: int) -> EpochSampler | None:
    """In-order strided shard of an evaluation set (None = the whole set, in order)."""
    if world_size == 1:
        return None
    return EpochSampler(len(ds), shuffle=False, rank=rank, world_size=world_size)  # type: ignore[arg-type]


def build_pretrain_data(
    cfg: PretrainConfig, device: torch.device, with_monitor: bool = True, rank: int = 0, world_size: int = 1,
    dataset: Dataset | None = None,
) -> PretrainData:
    """Training loader (seeded augmentation, resumable sampler) and NN-monitor loaders.

    With ``world_size > 1`` every loader holds this rank's strided shard: each global training
    batch of ``world_size * batch_size`` images is the single-process batch (the tail that does
    not fill a global batch is dropped), and the monitor's shards are padded to equal length so
    their features can be gathered (:func:`latentmim.runtime.distributed.all_gather_ordered`).

    Args:
        dataset: a user's dataset to pre-train on instead of ``cfg.dataset`` (module docstring).
    """
    base, info = train_images(cfg, dataset)
    train = SeededDataset(  # train_images: a fixed subset, so short runs can still finish epochs
        seeded_subset(base, cfg.train_images, cfg.data_seed + 2),
        train_transform(cfg.train_size, cfg.min_crop, info.mean, info.std, info.in_chans), seed=cfg.env.seed,
    )
    sampler = EpochSampler(len(train), seed=cfg.env.seed, shuffle=True, drop_last=world_size > 1,
                           rank=rank, world_size=world_size)
    # Each loader gets its own generator: creating an iterator draws a worker seed from it, and
    # must not consume the global RNG (drop path), or a resumed run would diverge.
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.env.seed), **_loader_options(cfg, device))
    source = monitor_data(cfg)
    nn_train = nn_val = None
    nn_classes = info.num_classes
    if with_monitor and source.dataset is not None:
        same = source.dataset == cfg.dataset and source.data_path == cfg.data_path and dataset is None
        monitor_base = (base, info) if same else raw_dataset(cfg, "train")  # a rendered dataset's cache is shared
        nn_train, nn_val = build_monitor_loaders(cfg, device, base=monitor_base, rank=rank, world_size=world_size)
        nn_classes = monitor_base[1].num_classes
    return PretrainData(info, train, sampler, loader, nn_train, nn_val, nn_classes, source.reason)


def _loader_options(cfg: PretrainConfig, device: torch.device) -> dict:
    # Workers live as long as the loader: no respawn per epoch or per monitor pass.
    return dict(num_workers=cfg.env.workers, pin_memory=device.type == "cuda",
                persistent_workers=cfg.env.workers > 0)


def build_monitor_loaders(
    cfg: PretrainConfig,
    device: torch.device,
    size: int | None = None,
    base: tuple | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader, DataLoader]:
    """The NN monitor's (train bank, val) loaders: fixed labelled subsets, eval-transformed.

    Args:
        cfg: the run's config (dataset, subset sizes and seeds; :func:`monitor_data`).
        device: where the features will be computed (pins memory for CUDA).
        size: image side; ``cfg.eval_size`` (G*P) unless given, e.g. ``cfg.train_size`` to read
            the images with the training's patch gap (:func:`latentmim.probing.features.encode_images`).
            The subsets are the same images whatever the size.
        base: the monitor's ``(train dataset, info)`` when already built (the training's own
            images, so a rendered dataset's cache is shared); built here when None.
        rank, world_size: this process's strided shard under DDP.

    Raises:
        ConfigError: the monitor has no labelled data (:func:`monitor_data`).
    """
    base_ds, info = base if base is not None else raw_dataset(cfg, "train")
    mean, std = dataset_stats(cfg.dataset)  # the training's normalisation: the encoder knows no other
    if len(mean) != info.in_chans:
        mean, std = info.mean, info.std
    tf = eval_transform(size or cfg.eval_size, mean, std)
    val_base, _ = raw_dataset(cfg, "val")
    eval_bs = max(cfg.batch_size, 64)
    common = _loader_options(cfg, device)
    nn_train_set = seeded_subset(SeededDataset(base_ds, tf, seed=cfg.env.seed), cfg.nn_train_images, cfg.data_seed)
    nn_val_set = seeded_subset(SeededDataset(val_base, tf, seed=cfg.env.seed), cfg.nn_val_images, cfg.data_seed + 1)
    nn_train = DataLoader(nn_train_set, batch_size=eval_bs, sampler=_shard(nn_train_set, rank, world_size),
                          generator=torch.Generator(), **common)
    nn_val = DataLoader(nn_val_set, batch_size=eval_bs, sampler=_shard(nn_val_set, rank, world_size),
                        generator=torch.Generator(), **common)
    return nn_train, nn_val
