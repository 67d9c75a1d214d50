"""Build a dataset and its :class:`DatasetInfo` from a name, a split and a path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from latentmim.data.errors import DataError
from latentmim.data.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT, FashionMNIST
from latentmim.data.imagefolder import build_image_folder
from latentmim.data.imagenet import ImageNet, ImageNet100
from latentmim.data.info import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STL10_MEAN,
    STL10_STD,
    SYNTHETIC_MEAN,
    SYNTHETIC_STD,
    DatasetInfo,
)
from latentmim.data.robust import RobustDataset
from latentmim.data.shapes import NUM_SHAPES
from latentmim.data.synthetic import SyntheticShapes

SPLITS: tuple[str, ...] = ("train", "val")
SYNTHETIC_DEFAULT_NUM: dict[str, int] = {"train": 10000, "val": 2000}


@dataclass(frozen=True)
class _Request:
    """Arguments of :func:`build_dataset`, passed on to the per-dataset builders."""

    name: str
    split: str
    data_path: str | None
    download: bool
    synthetic_size: int
    synthetic_num: int | None
    seed: int

    def existing_path(self) -> Path:
        """``data_path`` as a Path, which must be given and exist."""
        if self.data_path is None:
            raise DataError(f"dataset '{self.name}' needs a data_path")
        path = Path(self.data_path).expanduser()
        if not path.exists():
            raise DataError(f"dataset '{self.name}': data_path '{path}' does not exist")
        return path


def _synthetic(req: _Request) -> tuple[Dataset, DatasetInfo]:
    num = SYNTHETIC_DEFAULT_NUM[req.split] if req.synthetic_num is None else req.synthetic_num
    ds = SyntheticShapes(req.split, num, image_size=req.synthetic_size, seed=req.seed)
    return ds, DatasetInfo(req.name, NUM_SHAPES, 3, SYNTHETIC_MEAN, SYNTHETIC_STD)


def _fashion_mnist(req: _Request) -> tuple[Dataset, DatasetInfo]:
    if req.data_path is None:
        req = replace(req, data_path=FASHION_MNIST_DEFAULT_ROOT)
    ds = FashionMNIST(req.existing_path(), req.split)
    return ds, DatasetInfo(req.name, 10, 1, FASHION_MNIST_MEAN, FASHION_MNIST_STD)


def _torchvision(req: _Request, factory: Callable[[str, bool], Dataset]) -> Dataset:
    """Instantiate a torchvision dataset, turning its 'not found' error into DataError."""
    if req.data_path is None:
        raise DataError(f"dataset '{req.name}' needs a data_path")
    path = Path(req.data_path).expanduser()
    if not req.download and not path.exists():
        raise DataError(f"dataset '{req.name}': data_path '{path}' does not exist")
    try:
        return factory(str(path), req.download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted ..."
        raise DataError(
            f"dataset '{req.name}': no usable data under data_path '{path}' ({exc}); pass download=True to fetch it"
        ) from None


def _cifar10(req: _Request) -> tuple[Dataset, DatasetInfo]:
    ds = _torchvision(
        req, lambda root, dl: tv_datasets.CIFAR10(root, train=req.split == "train", download=dl)
    )
    return ds, DatasetInfo(req.name, 10, 3, CIFAR10_MEAN, CIFAR10_STD)


def _cifar100(req: _Request) -> tuple[Dataset, DatasetInfo]:
    ds = _torchvision(
        req, lambda root, dl: tv_datasets.CIFAR100(root, train=req.split == "train", download=dl)
    )
    return ds, DatasetInfo(req.name, 100, 3, CIFAR100_MEAN, CIFAR100_STD)


def _stl10(req: _Request) -> tuple[Dataset, DatasetInfo]:
    # The 5000 labelled 'train' images for train, the 8000 'test' images for val.
    tv_split = "train" if req.split == "train" else "test"
    ds = _torchvision(req, lambda root, dl: tv_datasets.STL10(root, split=tv_split, download=dl))
    return ds, DatasetInfo(req.name, 10, 3, STL10_MEAN, STL10_STD)


def _imagefolder(req: _Request) -> tuple[Dataset, DatasetInfo]:
    folder = build_image_folder(req.existing_path(), req.split)
    info = DatasetInfo(req.name, len(folder.classes), 3, IMAGENET_MEAN, IMAGENET_STD)
    return RobustDataset(folder, name=req.name), info


def _imagenet(req: _Request) -> tuple[Dataset, DatasetInfo]:
    ds = ImageNet(req.existing_path(), req.split)
    return RobustDataset(ds, name=req.name), DatasetInfo(
        req.name, ds.num_classes, 3, IMAGENET_MEAN, IMAGENET_STD
    )


def _imagenet100(req: _Request) -> tuple[Dataset, DatasetInfo]:
    ds = ImageNet100(req.existing_path(), req.split)
    return RobustDataset(ds, name=req.name), DatasetInfo(
        req.name, ds.num_classes, 3, IMAGENET_MEAN, IMAGENET_STD
    )


_BUILDERS: dict[str, Callable[[_Request], tuple[Dataset, DatasetInfo]]] = {
    "synthetic": _synthetic,
    "fashion_mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "stl10": _stl10,
    "imagefolder": _imagefolder,
    "imagenet": _imagenet,
    "imagenet100": _imagenet100,
}
DATASET_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_dataset(
    name: str,
    split: str,
    data_path: str | None,
    *,
    download: bool = False,
    synthetic_size: int = 64,
    synthetic_num: int | None = None,
    seed: int = 0,
) -> tuple[Dataset, DatasetInfo]:
    """Build one split of a named dataset.

    Items of every returned dataset are ``(PIL image, int label)``. File-based
    ImageNet-style datasets (``imagefolder``, ``imagenet``, ``imagenet100``) come
    wrapped in :class:`~latentmim.data.robust.RobustDataset`, so unreadable images
    are skipped and reported instead of crashing the run.

    Args:
        name: One of :data:`DATASET_NAMES`.
        split: ``"train"`` or ``"val"``.
        data_path: Dataset root; ignored by ``synthetic``, optional for
            ``fashion_mnist`` (defaults to ``FASHION_MNIST_DEFAULT_ROOT``),
            required otherwise (``imagefolder`` expects ``train/`` and ``val/`` in it).
        download: Let torchvision download ``cifar10``/``cifar100``/``stl10`` into
            ``data_path`` if missing; other datasets are never downloaded.
        synthetic_size: Image side of ``synthetic``.
        synthetic_num: Number of ``synthetic`` images (default 10000 train / 2000 val).
        seed: Seed of ``synthetic``.

    Returns:
        ``(dataset, info)``.

    Raises:
        DataError: Unknown name or split, missing path, or unusable files.
    """
    if name not in _BUILDERS:
        raise DataError(f"unknown dataset '{name}'; valid names: {', '.join(DATASET_NAMES)}")
    if split not in SPLITS:
        raise DataError(
            f"dataset '{name}': unknown split '{split}', expected one of {', '.join(SPLITS)}"
        )
    req = _Request(name, split, data_path, download, synthetic_size, synthetic_num, seed)
    return _BUILDERS[name](req)
