"""Few-shot transfer datasets: a train pool to draw k shots per class from, and a test set.

Two kinds of names:

* the package's own datasets (``synthetic``, ``fashion_mnist``, ``cifar10``, ...): train pool =
  their train split, test = their val split, built by :mod:`latentmim.data.registry`;
* the CoOp transfer suite (Caltech101, DTD, Flowers102, OxfordIIITPet, StanfordCars, SUN397,
  UCF101 mid-frames) under one root laid out as in CoOp's DATASETS.md. If the CoOp split file
  (``split_zhou_*.json``: lists of ``[relative image path, label, class name]``) is present, its
  ``train`` list is the pool and its ``test`` list the test set. Otherwise torchvision's loader is
  used (never downloading unless ``download=True``) with its official train/test split where it
  has one (DTD partition 1, Flowers102, OxfordIIITPet, StanfordCars); Caltech101, SUN397 and
  UCF101 (an image folder ``ucf101/UCF-101-midframes/<class>/*.jpg``) have none, so a seeded
  per-class split is drawn as CoOp does (50% train / 20% val / 30% test; val unused).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision import datasets as tv

from latentmim.config.load import DATASETS
from latentmim.data.errors import DataError
from latentmim.data.imagefolder import folder_classes
from latentmim.data.info import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo
from latentmim.data.robust import RobustDataset, load_rgb
from latentmim.data.seeding import derive_seed
from latentmim.eval.data import dataset_labels

SPLIT_STREAM = 0x73706C74  # b"splt"


@dataclass(frozen=True)
class CoopLayout:
    """Where CoOp keeps a dataset under its root, and the torchvision fallback."""

    folder: str  # dataset folder under the root
    image_dir: str  # split-file paths are relative to folder/image_dir
    split_file: str
    torchvision: Callable[[str, str, bool], Dataset] | None  # (root, split, download) -> dataset
    tv_folder: str  # what torchvision expects under the root (checked before it is called)
    tv_splits: tuple[str, str] | None  # (train, test) split names, or None = seeded split


TRANSFER: dict[str, CoopLayout] = {
    "caltech101": CoopLayout("caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json",
                             lambda r, s, d: tv.Caltech101(r, target_type="category", download=d),
                             "caltech101", None),
    "dtd": CoopLayout("dtd", "images", "split_zhou_DescribableTextures.json",
                      lambda r, s, d: tv.DTD(r, split=s, partition=1, download=d), "dtd/dtd", ("train", "test")),
    "flowers102": CoopLayout("oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json",
                             lambda r, s, d: tv.Flowers102(r, split=s, download=d), "flowers-102",
                             ("train", "test")),
    "oxford_pets": CoopLayout("oxford_pets", "images", "split_zhou_OxfordPets.json",
                              lambda r, s, d: tv.OxfordIIITPet(r, split=s, download=d), "oxford-iiit-pet",
                              ("trainval", "test")),
    "stanford_cars": CoopLayout("stanford_cars", "", "split_zhou_StanfordCars.json",
                                lambda r, s, d: tv.StanfordCars(r, split=s, download=d), "stanford_cars",
                                ("train", "test")),
    "sun397": CoopLayout("sun397", "SUN397", "split_zhou_SUN397.json",
                         lambda r, s, d: tv.SUN397(r, download=d), "SUN397", None),
    "ucf101": CoopLayout("ucf101", "UCF-101-midframes", "split_zhou_UCF101.json", None,
                         "ucf101/UCF-101-midframes", None),
}
FEWSHOT_DATASETS: tuple[str, ...] = (*DATASETS, *TRANSFER)


class FileListDataset(Dataset):
    """``(PIL RGB image, label)`` from a list of files (wrap in RobustDataset for bad files)."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths = paths
        self.targets = labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[object, int]:
        return load_rgb(self.paths[index]), self.targets[index]


@dataclass
class FewshotData:
    """A few-shot benchmark: pool, test set, their labels and how the split was obtained."""

    name: str
    pool: Dataset
    pool_labels: Tensor
    test: Dataset
    info: DatasetInfo
    split_source: str


def per_class_split(labels: Tensor, seed: int, train_frac: float = 0.5, val_frac: float = 0.2) -> tuple[Tensor, Tensor]:
    """CoOp's split for datasets without one: per class, shuffle; first 50% train, last 30% test.

    Returns:
        (train indices, test indices), int64.
    """
    g = torch.Generator().manual_seed(derive_seed(SPLIT_STREAM, seed))
    train, test = [], []
    for c in labels.unique(sorted=True).tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n_train, n_val = round(idx.numel() * train_frac), round(idx.numel() * val_frac)
        train.append(idx[:n_train])
        test.append(idx[n_train + n_val:])
    return torch.cat(train), torch.cat(test)


def _read_coop_split(root: Path, layout: CoopLayout) -> tuple[Dataset, Dataset, int] | None:
    split = root / layout.folder / layout.split_file
    if not split.is_file():
        return None
    try:
        items = json.loads(split.read_text())
        lists = {s: [(str(p), int(lab)) for p, lab, _ in items[s]] for s in ("train", "test")}
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"CoOp split file '{split}' is not valid: {err}") from None
    base = root / layout.folder / layout.image_dir
    num_classes = 1 + max(lab for s in lists.values() for _, lab in s)
    train, test = ([base / p for p, _ in lists[s]] for s in ("train", "test"))
    return (RobustDataset(FileListDataset(train, [lab for _, lab in lists["train"]]), name=split.name),
            RobustDataset(FileListDataset(test, [lab for _, lab in lists["test"]]), name=split.name),
            num_classes)


def _labels(ds: Dataset) -> Tensor:
    samples = getattr(ds, "_samples", None)  # StanfordCars keeps (path, label) pairs
    if samples is not None:
        return torch.tensor([int(s[1]) for s in samples])
    return dataset_labels(ds)


def _transfer(name: str, root: str | None, download: bool, seed: int) -> FewshotData:
    layout = TRANSFER[name]
    if root is None:
        raise DataError(f"few-shot dataset '{name}' needs transfer_root (the CoOp data folder)")
    rootp = Path(root).expanduser()
    coop = _read_coop_split(rootp, layout)
    if coop is not None:
        pool, test, num_classes = coop
        return FewshotData(name, pool, dataset_labels(pool), test, DatasetInfo(name, num_classes, 3, IMAGENET_MEAN,
                           IMAGENET_STD), f"CoOp split file {layout.split_file}")
    where = rootp / layout.tv_folder
    if not download and not where.exists():
        raise DataError(f"few-shot dataset '{name}': neither '{rootp / layout.folder / layout.split_file}' nor "
                        f"'{where}' exists (pass download=True to let torchvision fetch it where it can)")
    if layout.torchvision is None:  # UCF101 mid-frames: an image folder
        classes = folder_classes(where)
        files = [(p, i) for i, c in enumerate(classes) for p in sorted((where / c).iterdir()) if p.is_file()]
        full: Dataset = RobustDataset(FileListDataset([p for p, _ in files], [i for _, i in files]), name=name)
    else:
        try:
            full = layout.torchvision(str(rootp), (layout.tv_splits or ("train",))[0], download)
        except RuntimeError as err:
            raise DataError(f"few-shot dataset '{name}' under '{rootp}': {str(err).splitlines()[0]}") from None
    labels = _labels(full)
    info = DatasetInfo(name, int(labels.max()) + 1, 3, IMAGENET_MEAN, IMAGENET_STD)
    if layout.tv_splits is None:
        train_idx, test_idx = per_class_split(labels, seed)
        return FewshotData(name, Subset(full, train_idx.tolist()), labels[train_idx], Subset(full, test_idx.tolist()),
                           info, "seeded per-class split 50/20/30 (no CoOp split file found)")
    test = layout.torchvision(str(rootp), layout.tv_splits[1], download)  # type: ignore[misc]
    return FewshotData(name, full, labels, test, info, "torchvision official train/test split (no CoOp split file)")


def load_fewshot_data(name: str, transfer_root: str | None, download: bool, seed: int,
                      registry_split: Callable[[str], tuple[Dataset, DatasetInfo]]) -> FewshotData:
    """Pool and test set of ``name``.

    Args:
        name: one of :data:`FEWSHOT_DATASETS`.
        transfer_root: CoOp data root for the transfer datasets.
        download: let torchvision download (transfer datasets only).
        seed: seed of the per-class split where one has to be drawn.
        registry_split: builds a split (``"train"``/``"val"``) of a package dataset (resolving
            its path and settings the way every evaluation does).

    Raises:
        DataError: unknown name, or missing files.
    """
    if name in TRANSFER:
        return _transfer(name, transfer_root, download, seed)
    if name not in DATASETS:
        raise DataError(f"unknown few-shot dataset '{name}'; choose from {', '.join(FEWSHOT_DATASETS)}")
    pool, info = registry_split("train")
    test, _ = registry_split("val")
    return FewshotData(name, pool, dataset_labels(pool), test, info, "the dataset's train / val splits")
