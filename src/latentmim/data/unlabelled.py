"""Images without labels: any folder of image files, and a user's own ``Dataset``.

Self-supervised pre-training needs no labels. :class:`ImageFiles` reads every image under a
folder, flat or nested, whatever its layout; :class:`UserImages` adapts a ``torch.utils.data``
dataset handed over from Python. Both yield ``(PIL RGB image, label)`` like every dataset of
the library, the label being 0 when there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from latentmim.data.errors import DataError
from latentmim.data.robust import load_rgb


def image_files(root: Path) -> list[Path]:
    """Every file under ``root`` (recursively) with an image extension, in sorted order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())


class ImageFiles(Dataset):
    """Every image file under a folder, flat or nested; labels are not read (all 0).

    Files are decoded with :func:`~latentmim.data.robust.load_rgb` (any mode becomes RGB), so
    unreadable ones raise and a :class:`~latentmim.data.robust.RobustDataset` around this
    skips and counts them.

    Args:
        root: the folder.

    Raises:
        DataError: the folder does not exist or holds no image file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"imagefolder: data_path '{self.root}' is not a folder")
        self.files = image_files(self.root)
        if not self.files:
            raise DataError(f"imagefolder: no image files ({', '.join(IMG_EXTENSIONS[:4])}, ...) under '{self.root}'")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return load_rgb(self.files[index]), 0


def to_pil(image: Any) -> Image.Image:
    """A PIL RGB image from a PIL image, a (C, H, W) tensor (float in [0, 1] or uint8) or an
    (H, W, C) uint8 array.

    Raises:
        DataError: any other type or shape.
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise DataError(f"dataset item: an image tensor must be (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
        if image.dtype != torch.uint8:
            image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
        image = image.permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3):
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
        return pil.convert("RGB")
    raise DataError(f"dataset item: expected a PIL image, a (C, H, W) tensor or an (H, W, C) uint8 array, "
                    f"got {type(image).__name__}")


class UserImages(Dataset):
    """A user's dataset as the training pipeline reads datasets.

    Items may be images, or tuples whose first element is the image (and whose second, when an
    integer, is kept as the label). Images may be PIL images, (C, H, W) tensors in [0, 1] or
    uint8, or (H, W, C) uint8 arrays; they become RGB, and the training augmentation (crop,
    flip, normalisation) is applied on top, as for every dataset.

    Args:
        base: any map-style dataset (``__len__`` and ``__getitem__``).
    """

    def __init__(self, base: Dataset) -> None:
        if not hasattr(base, "__len__") or not hasattr(base, "__getitem__"):
            raise DataError(f"pretrain: dataset must be a map-style Dataset (__len__, __getitem__), got {type(base).__name__}")
        if len(base) == 0:  # type: ignore[arg-type]
            raise DataError("pretrain: the dataset is empty")
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        item = self.base[index]
        label = 0
        if isinstance(item, (tuple, list)):
            image = item[0]
            if len(item) > 1 and _is_integer(item[1]):
                label = int(item[1])
        else:
            image = item
        return to_pil(image), label


def _is_integer(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point()
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
