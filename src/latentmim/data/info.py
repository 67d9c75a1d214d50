"""Static description of a dataset: class count, channels and normalisation stats."""

from __future__ import annotations

from dataclasses import dataclass

from latentmim.data.errors import DataError

# Per-channel statistics of ImageNet-1k train images in [0, 1] (the usual values,
# also used for any RGB natural-image dataset without its own stats).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Measured on the 60000 Fashion-MNIST training images (pixel / 255).
FASHION_MNIST_MEAN: tuple[float] = (0.2860,)
FASHION_MNIST_STD: tuple[float] = (0.3530,)

# Measured on 5000 SyntheticShapes train images (seed 0, 64 px; 32 px agrees to 0.002).
SYNTHETIC_MEAN: tuple[float, float, float] = (0.500, 0.499, 0.501)
SYNTHETIC_STD: tuple[float, float, float] = (0.220, 0.229, 0.216)

# The commonly quoted training-set statistics (pixel / 255, std over all pixels);
# not re-measured here because these sets are only present after a download.
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)
STL10_MEAN: tuple[float, float, float] = (0.4467, 0.4398, 0.4066)
STL10_STD: tuple[float, float, float] = (0.2603, 0.2566, 0.2713)


# Normalisation by training-dataset name; ImageNet's for the rest (folders, ImageNet, ImageNet-100).
_STATS_BY_NAME: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "synthetic": (SYNTHETIC_MEAN, SYNTHETIC_STD),
    "fashion_mnist": (FASHION_MNIST_MEAN, FASHION_MNIST_STD),
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "stl10": (STL10_MEAN, STL10_STD),
}


def dataset_stats(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) used to normalise inputs of a model trained on ``dataset``."""
    return _STATS_BY_NAME.get(dataset, (IMAGENET_MEAN, IMAGENET_STD))

@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the transforms need to know about a dataset.

    Attributes:
        name: Registry name of the dataset (e.g. ``"imagenet100"``).
        num_classes: Number of classification labels; labels are ``0..num_classes-1``.
        in_chans: Channels of the image tensors the transforms produce (1 or 3).
        mean: Per-channel mean of pixel values in [0, 1], length ``in_chans``.
        std: Per-channel standard deviation, length ``in_chans``.
    """

    name: str
    num_classes: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        # Catch mismatched stats here rather than as a broadcasting error in Normalize.
        if self.num_classes < 1:
            raise DataError(
                f"dataset '{self.name}': num_classes must be >= 1, got {self.num_classes}"
            )
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise DataError(
                f"dataset '{self.name}': mean/std have {len(self.mean)}/{len(self.std)} "
                f"entries but in_chans={self.in_chans}"
            )
        if any(s <= 0 for s in self.std):
            raise DataError(f"dataset '{self.name}': std must be positive, got {self.std}")
