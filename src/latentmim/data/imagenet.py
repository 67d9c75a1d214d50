"""ImageNet-1k and ImageNet-100 in the layout of the LatentMIM authors.

Expected tree::

    root/train/<wnid>/*.JPEG
    root/val/ILSVRC2012_val_00000001.JPEG ...          (flat)
    root/anno/meta.mat                                 (official devkit)
    root/anno/ILSVRC2012_validation_ground_truth.txt   (one ILSVRC id per line)

Labels are the official ILSVRC2012 ids minus one (0..999) for both splits, so they
match the usual torchvision / timm class order. The ImageNet-100 subset (CMC,
Tian et al. 2019) uses labels 0..99 in sorted-wnid order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from latentmim.data.errors import DataError
from latentmim.data.imagenet_meta import imagenet100_wnids, read_ground_truth, read_synsets
from latentmim.data.robust import load_rgb

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpeg", ".jpg", ".png"})
META_FILE = "anno/meta.mat"
GROUND_TRUTH_FILE = "anno/ILSVRC2012_validation_ground_truth.txt"
# The 1-based image number is the last digit group of a val file name.
_VAL_NUMBER = re.compile(r"(\d+)$")


def _image_files(folder: Path) -> list[str]:
    """Sorted names of the image files directly inside ``folder``."""
    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(names)


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataError(f"{what} folder '{path}' does not exist")


class ImageNet(Dataset):
    """ImageNet-1k, or a subset of its classes, read lazily from JPEG files.

    Args:
        root: Dataset root with ``train/``, ``val/`` and ``anno/`` (see module docstring).
        split: ``"train"`` or ``"val"``.
        classes: Optional subset of wnids. ``None`` keeps every class found under
            ``train/`` (train split) or every val image (val split) with labels
            ``ilsvrc_id - 1``; a subset relabels its classes ``0..len-1`` in sorted
            wnid order and restricts both splits to them.

    Attributes:
        samples: ``(path, label)`` per image, in a fixed (sorted) order.
        num_classes: 1000 for the full set (the number of leaf synsets in meta.mat),
            ``len(classes)`` for a subset.
        wnids: Class wnid of each label: ``wnids[label]``.
    """

    def __init__(self, root: str | Path, split: str, classes: Sequence[str] | None = None) -> None:
        if split not in ("train", "val"):
            raise DataError(f"ImageNet: unknown split '{split}', expected 'train' or 'val'")
        self.root = Path(root)
        self.split = split
        _require_dir(self.root, "ImageNet root")
        wnid_to_id = read_synsets(self.root / META_FILE)

        if classes is None:
            # Official order: label = ilsvrc_id - 1.
            self.wnids = tuple(sorted(wnid_to_id, key=wnid_to_id.__getitem__))
            wnid_to_label = {w: wnid_to_id[w] - 1 for w in self.wnids}
        else:
            unknown = [w for w in classes if w not in wnid_to_id]
            if unknown:
                raise DataError(
                    f"ImageNet: class '{unknown[0]}' is not a leaf synset of '{self.root / META_FILE}'"
                )
            self.wnids = tuple(sorted(set(classes)))
            wnid_to_label = {w: k for k, w in enumerate(self.wnids)}
        self.num_classes = len(self.wnids)

        if split == "train":
            self.samples = self._train_samples(wnid_to_label, subset=classes is not None)
        else:
            self.samples = self._val_samples(wnid_to_id, wnid_to_label, subset=classes is not None)
        if not self.samples:
            raise DataError(
                f"ImageNet: no images found for split '{split}' under '{self.root / split}'"
            )
        self.targets = [label for _, label in self.samples]

    def _train_samples(self, wnid_to_label: dict[str, int], subset: bool) -> list[tuple[str, int]]:
        train_dir = self.root / "train"
        _require_dir(train_dir, "ImageNet train")
        if subset:
            # Every class of a subset must be there, else its labels silently shift meaning.
            wnids = list(self.wnids)
            for w in wnids:
                _require_dir(train_dir / w, "ImageNet class")
        else:
            wnids = sorted(e.name for e in os.scandir(train_dir) if e.is_dir())
            for w in wnids:
                if w not in wnid_to_label:
                    raise DataError(f"ImageNet: train folder '{train_dir / w}' is not a known wnid")
        samples: list[tuple[str, int]] = []
        for w in wnids:
            folder = train_dir / w
            samples.extend((str(folder / name), wnid_to_label[w]) for name in _image_files(folder))
        return samples

    def _val_samples(
        self, wnid_to_id: dict[str, int], wnid_to_label: dict[str, int], subset: bool
    ) -> list[tuple[str, int]]:
        val_dir = self.root / "val"
        _require_dir(val_dir, "ImageNet val")
        truth = read_ground_truth(self.root / GROUND_TRUTH_FILE)
        id_to_label = {wnid_to_id[w]: label for w, label in wnid_to_label.items()}
        samples: list[tuple[str, int]] = []
        for name in _image_files(val_dir):
            match = _VAL_NUMBER.search(os.path.splitext(name)[0])
            if match is None or not 1 <= int(match.group(1)) <= len(truth):
                raise DataError(
                    f"ImageNet: val file '{val_dir / name}' has no number in 1..{len(truth)} "
                    f"(lines of '{self.root / GROUND_TRUTH_FILE}')"
                )
            ilsvrc_id = truth[int(match.group(1)) - 1]
            if ilsvrc_id in id_to_label:
                samples.append((str(val_dir / name), id_to_label[ilsvrc_id]))
            elif not subset:  # a subset drops other classes; the full set has no others
                raise DataError(
                    f"ImageNet: val file '{val_dir / name}' has id {ilsvrc_id}, not a class of "
                    f"'{self.root / META_FILE}'"
                )
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        return load_rgb(path), label


class ImageNet100(ImageNet):
    """The 100-class ImageNet subset of CMC (Tian et al., 2019), labels 0..99 by sorted wnid.

    Args:
        root: ImageNet-1k root (same layout as :class:`ImageNet`).
        split: ``"train"`` or ``"val"``.
    """

    def __init__(self, root: str | Path, split: str) -> None:
        super().__init__(root, split, classes=imagenet100_wnids())
