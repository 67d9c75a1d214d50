"""Fashion-MNIST read directly from its IDX files (no torchvision download logic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from latentmim.data.errors import DataError
from latentmim.data.idx import read_idx

FASHION_MNIST_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# split -> (images file, labels file), without the optional ".gz" suffix.
_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_idx_file(root: Path, name: str) -> Path:
    """Locate ``root/name`` or ``root/name.gz`` (uncompressed preferred).

    Raises:
        DataError: Neither file exists.
    """
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"Fashion-MNIST file '{root / name}' (or '.gz') does not exist")


class FashionMNIST(Dataset):
    """Fashion-MNIST, 28x28 grayscale, 10 classes; ``val`` is the official t10k set.

    File paths are checked at construction; pixels are read on first use into one
    uint8 array of shape (N, 28, 28) (~47 MB for train), so building the dataset is
    cheap and each DataLoader worker only pays for the files once.

    Args:
        root: Folder with the four standard IDX files, gzipped or not.
        split: ``"train"`` (60000 images) or ``"val"`` (10000 images).
    """

    classes: tuple[str, ...] = FASHION_MNIST_CLASSES

    def __init__(self, root: str | Path = FASHION_MNIST_DEFAULT_ROOT, split: str = "train") -> None:
        if split not in _FILES:
            raise DataError(
                f"Fashion-MNIST: unknown split '{split}', expected one of {sorted(_FILES)}"
            )
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"Fashion-MNIST root '{self.root}' does not exist")
        self.split = split
        images_name, labels_name = _FILES[split]
        self.images_path = find_idx_file(self.root, images_name)
        self.labels_path = find_idx_file(self.root, labels_name)
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None or self._labels is None:
            images = read_idx(self.images_path)
            labels = read_idx(self.labels_path)
            if images.dtype != np.uint8 or images.ndim != 3:
                raise DataError(
                    f"Fashion-MNIST file '{self.images_path}' holds {images.dtype} {images.shape}, "
                    "expected uint8 (N, H, W)"
                )
            if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
                raise DataError(
                    f"Fashion-MNIST file '{self.labels_path}' holds {labels.dtype} {labels.shape}, "
                    f"expected uint8 ({len(images)},)"
                )
            if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
                raise DataError(
                    f"Fashion-MNIST file '{self.labels_path}' has label {int(labels.max())} > 9"
                )
            self._images, self._labels = images, labels
        return self._images, self._labels

    @property
    def images(self) -> np.ndarray:
        """All images, uint8 of shape (N, 28, 28)."""
        return self._load()[0]

    @property
    def targets(self) -> np.ndarray:
        """All labels, uint8 of shape (N,), values 0..9."""
        return self._load()[1]

    def __len__(self) -> int:
        return len(self._load()[1])

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        images, labels = self._load()
        # A 2-D uint8 array becomes a mode "L" image.
        return Image.fromarray(images[index]), int(labels[index])
