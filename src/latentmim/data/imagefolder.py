"""Generic ``root/{train,val}/<class>/<image>`` datasets with one class list for both splits."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import ImageFolder

from latentmim.data.errors import DataError
from latentmim.data.robust import load_rgb


def folder_classes(directory: Path) -> list[str]:
    """Sorted names of the subfolders of ``directory`` (the class names)."""
    if not directory.is_dir():
        raise DataError(f"image folder '{directory}' does not exist")
    classes = sorted(p.name for p in directory.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"image folder '{directory}' has no class subfolders")
    return classes


class _FixedClassImageFolder(ImageFolder):
    """torchvision ImageFolder whose class list is given instead of discovered."""

    def __init__(self, root: Path, classes: list[str], allow_empty: bool) -> None:
        self._fixed_classes = classes
        super().__init__(str(root), loader=load_rgb, allow_empty=allow_empty)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return list(self._fixed_classes), {c: i for i, c in enumerate(self._fixed_classes)}


def build_image_folder(root: str | Path, split: str) -> ImageFolder:
    """ImageFolder for ``root/<split>`` with classes taken from ``root/train``.

    Taking the class list from ``train`` for both splits keeps labels aligned when
    the val folder lacks some classes (plain ImageFolder would renumber them).
    Images are decoded with :func:`~latentmim.data.robust.load_rgb`, so unreadable
    files raise and can be skipped by :class:`~latentmim.data.robust.RobustDataset`.

    Args:
        root: Folder containing ``train/`` and ``val/``.
        split: ``"train"`` or ``"val"``.

    Returns:
        The dataset; items are ``(PIL RGB image, label)``.

    Raises:
        DataError: Missing folders, val classes unknown to train, or no images.
    """
    if split not in ("train", "val"):
        raise DataError(f"imagefolder: unknown split '{split}', expected 'train' or 'val'")
    root = Path(root)
    classes = folder_classes(root / "train")
    split_dir = root / split
    if split != "train":
        extra = sorted(set(folder_classes(split_dir)) - set(classes))
        if extra:
            raise DataError(
                f"imagefolder: class folder '{split_dir / extra[0]}' is not in '{root / 'train'}'"
            )
    try:
        dataset = _FixedClassImageFolder(split_dir, classes, allow_empty=split != "train")
    except FileNotFoundError as exc:
        raise DataError(f"imagefolder '{split_dir}': {exc}".replace("\n", " ")) from None
    if len(dataset) == 0:
        raise DataError(f"imagefolder '{split_dir}' contains no images")
    return dataset
