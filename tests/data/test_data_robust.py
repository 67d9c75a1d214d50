"""Unreadable images are skipped deterministically and reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from latentmim.data.errors import DataError
from latentmim.data.loader import SeededDataset
from latentmim.data.registry import build_dataset
from latentmim.data.robust import RobustDataset, load_rgb
from latentmim.data.transforms import eval_transform


def _good_jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def _truncated_jpeg(path: Path) -> None:
    _good_jpeg(path, seed=99)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, scan data cut


def _folder(root: Path) -> None:
    """imagefolder tree; in sorted order train items are a0, a1(truncated), a2, b0(garbage), b1."""
    for split in ("train", "val"):
        _good_jpeg(root / split / "a" / "a0.jpg", 0)
        _good_jpeg(root / split / "b" / "b1.jpg", 1)
    _truncated_jpeg(root / "train" / "a" / "a1.jpg")
    _good_jpeg(root / "train" / "a" / "a2.jpg", 2)
    (root / "train" / "b" / "b0.jpg").write_bytes(b"this is not a JPEG file" * 4)


def test_truncated_images_stay_errors(tmp_path: Path) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    _truncated_jpeg(tmp_path / "t.jpg")
    with pytest.raises(OSError, match="truncated"):
        load_rgb(tmp_path / "t.jpg")
    _good_jpeg(tmp_path / "g.jpg", 0)
    assert load_rgb(tmp_path / "g.jpg").mode == "RGB"


def test_robust_dataset_substitutes_next_loadable_item(tmp_path: Path) -> None:
    _folder(tmp_path)
    ds, info = build_dataset("imagefolder", "train", str(tmp_path))
    assert isinstance(ds, RobustDataset) and info.num_classes == 2 and len(ds) == 5
    results = [ds.load(i) for i in range(5)]
    assert [(r.index, r.ok, r.label) for r in results] == [
        (0, True, 0),
        (2, False, 0),  # truncated a1 -> a2
        (2, True, 0),
        (4, False, 1),  # garbage b0 -> b1
        (4, True, 1),
    ]
    assert ds.num_failures == 2
    # Substitution wraps around the end deterministically.
    (tmp_path / "train" / "b" / "b1.jpg").write_bytes(b"")
    r = ds.load(3)
    assert (r.index, r.ok, r.label) == (0, False, 0)


def test_seeded_dataset_reports_substitution(tmp_path: Path) -> None:
    _folder(tmp_path)
    ds, info = build_dataset("imagefolder", "train", str(tmp_path))
    seeded = SeededDataset(ds, eval_transform(32, info.mean, info.std), seed=0)
    flags = [seeded[i][2] for i in range(len(seeded))]
    assert flags == [True, False, True, False, True]
    x1, y1, _ = seeded[1]
    x2, y2, _ = seeded[2]
    assert y1 == y2 and torch.equal(x1, x2)  # eval transform: same image, same tensor
    loader = torch.utils.data.DataLoader(seeded, batch_size=5)
    _, _, ok = next(iter(loader))
    assert ok.tolist() == flags and int((~ok).sum()) == 2


def test_too_many_failures_in_a_row_raise(tmp_path: Path) -> None:
    for k in range(3):
        (tmp_path / "train" / "c" / f"{k}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / "c" / f"{k}.jpg").write_bytes(b"junk")
    ds, _ = build_dataset("imagefolder", "train", str(tmp_path))
    with pytest.raises(DataError, match="3 times in a row"):
        ds.load(0)
    with pytest.raises(IndexError):
        ds.load(3)
