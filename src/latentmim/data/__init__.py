"""Datasets, transforms and the deterministic sampling pieces of the training pipeline.

Every dataset yields ``(PIL image, int label)``; :func:`build_dataset` picks one by
name and returns it with its :class:`DatasetInfo`.
"""

from latentmim.data.errors import DataError
from latentmim.data.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT, FashionMNIST
from latentmim.data.imagenet import ImageNet, ImageNet100
from latentmim.data.info import DatasetInfo
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.registry import DATASET_NAMES, build_dataset
from latentmim.data.robust import LoadResult, RobustDataset, load_rgb
from latentmim.data.synthetic import SyntheticScene, SyntheticShapes
from latentmim.data.transforms import eval_transform, train_transform

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_DEFAULT_ROOT",
    "DataError",
    "DatasetInfo",
    "EpochSampler",
    "FashionMNIST",
    "ImageNet",
    "ImageNet100",
    "LoadResult",
    "RobustDataset",
    "SeededDataset",
    "SyntheticScene",
    "SyntheticShapes",
    "build_dataset",
    "eval_transform",
    "load_rgb",
    "train_transform",
]
