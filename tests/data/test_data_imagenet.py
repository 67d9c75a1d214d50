"""ImageNet / ImageNet-100 on a fake tree in the authors' layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from latentmim.data.errors import DataError
from latentmim.data.imagenet import ImageNet, ImageNet100
from latentmim.data.imagenet_meta import imagenet100_wnids, read_synsets
from latentmim.data.registry import build_dataset
from latentmim.data.robust import RobustDataset

# Official ids deliberately not in sorted-wnid order, plus one non-leaf synset.
LEAVES = {"n03000003": 1, "n01000001": 2, "n02000002": 3, "n04000004": 4}
INNER = ("n09999999", 5)


def _write_meta(path: Path, leaves: dict[str, int], inner: tuple[str, int] | None = INNER) -> None:
    """meta.mat with the devkit's struct layout (synsets: 1xN struct array)."""
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]  # fmt: skip
    rows = [(i, w, f"words {w}", "gloss", 0, np.zeros((1, 0)), 0, 1) for w, i in leaves.items()]
    if inner is not None:
        rows.append((inner[1], inner[0], "inner", "gloss", 2, np.array([[1, 2]]), 1, 0))
    synsets = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f, v in zip(fields, row, strict=True):
            synsets[0, k][f] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"synsets": synsets})


def _jpeg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (value, 255 - value, 7)).save(path, format="JPEG")


def _fake_imagenet(
    root: Path, train: dict[str, int], val_ids: list[int], leaves: dict[str, int]
) -> None:
    """train: wnid -> number of images; val_ids: ground-truth id of val image k+1."""
    _write_meta(root / "anno" / "meta.mat", leaves)
    for w, n in train.items():
        for k in range(n):
            _jpeg(root / "train" / w / f"{w}_{k}.JPEG", 10 * k)
    for k in range(len(val_ids)):
        _jpeg(root / "val" / f"ILSVRC2012_val_{k + 1:08d}.JPEG", 5 * k)
    (root / "val" / "README.txt").write_text("not an image")
    (root / "anno" / "ILSVRC2012_validation_ground_truth.txt").write_text(
        "".join(f"{i}\n" for i in val_ids)
    )


def test_read_synsets_keeps_leaves_with_official_ids(tmp_path: Path) -> None:
    _write_meta(tmp_path / "meta.mat", LEAVES)
    assert read_synsets(tmp_path / "meta.mat") == LEAVES


def test_train_and_val_labels_are_official_ids_minus_one(tmp_path: Path) -> None:
    val_ids = [4, 2, 2, 1, 3, 1]
    _fake_imagenet(tmp_path, {"n03000003": 2, "n01000001": 3, "n04000004": 1}, val_ids, LEAVES)
    train = ImageNet(tmp_path, "train")
    assert train.num_classes == 4
    labels = {Path(p).parent.name: label for p, label in train.samples}
    assert labels == {"n03000003": 0, "n01000001": 1, "n04000004": 3}
    assert len(train) == 6 and train.targets.count(1) == 3
    img, label = train[0]
    assert img.mode == "RGB" and img.size == (12, 10) and label == train.targets[0]

    val = ImageNet(tmp_path, "val")
    assert [Path(p).name for p, _ in val.samples][:2] == [
        "ILSVRC2012_val_00000001.JPEG",
        "ILSVRC2012_val_00000002.JPEG",
    ]
    assert val.targets == [i - 1 for i in val_ids]


def test_val_label_follows_file_number_not_listing_position(tmp_path: Path) -> None:
    _fake_imagenet(tmp_path, {"n01000001": 1}, [4, 2, 3, 1], LEAVES)
    (tmp_path / "val" / "ILSVRC2012_val_00000002.JPEG").unlink()
    assert ImageNet(tmp_path, "val").targets == [3, 2, 0]


def test_imagenet100_subset_relabels_by_sorted_wnid(tmp_path: Path) -> None:
    subset = imagenet100_wnids()
    assert len(subset) == 100 == len(set(subset))
    assert subset[:2] == ("n02869837", "n01749939")
    # Official ids: the 100 subset classes get ids 3..102 in reverse-sorted order.
    leaves = {"n00000001": 1, "n99999999": 2}
    leaves.update({w: 102 - k for k, w in enumerate(sorted(subset))})
    val_ids = [1, 102, 3, 2, 50]
    _fake_imagenet(tmp_path, {w: 1 for w in leaves}, val_ids, leaves)

    train = ImageNet100(tmp_path, "train")
    assert train.num_classes == 100 and len(train) == 100
    assert {Path(p).parent.name: y for p, y in train.samples} == {
        w: k for k, w in enumerate(sorted(subset))
    }
    val = ImageNet100(tmp_path, "val")
    # Ids 1 and 2 are outside the subset; id 102 is the first sorted wnid, 3 the last.
    assert [Path(p).name[-10:-5] for p, _ in val.samples] == ["00002", "00003", "00005"]
    assert val.targets == [0, 99, 102 - 50]

    ds, info = build_dataset("imagenet100", "val", str(tmp_path))
    assert isinstance(ds, RobustDataset) and info.num_classes == 100 and info.in_chans == 3
    assert [ds[k][1] for k in range(len(ds))] == val.targets


def test_missing_files_raise_data_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path, "train")
    assert str(tmp_path / "anno" / "meta.mat") in str(info.value)

    _fake_imagenet(tmp_path, {"n01000001": 1}, [1], LEAVES)
    (tmp_path / "anno" / "ILSVRC2012_validation_ground_truth.txt").unlink()
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path, "val")
    assert str(tmp_path / "anno" / "ILSVRC2012_validation_ground_truth.txt") in str(info.value)
    # A class of the subset without a train folder.
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path, "train", classes=["n01000001", "n02000002"])
    assert str(tmp_path / "train" / "n02000002") in str(info.value)
    # A train folder that is not a class of meta.mat.
    _jpeg(tmp_path / "train" / "n05555555" / "x.JPEG", 1)
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path, "train")
    assert str(tmp_path / "train" / "n05555555") in str(info.value)
    # The real subset is absent from this meta.mat.
    with pytest.raises(DataError, match="not a leaf synset"):
        ImageNet100(tmp_path, "train")


def test_bad_ground_truth_and_val_names(tmp_path: Path) -> None:
    _fake_imagenet(tmp_path, {"n01000001": 1}, [1, 2], LEAVES)
    gt = tmp_path / "anno" / "ILSVRC2012_validation_ground_truth.txt"
    gt.write_text("1\nfoo\n")
    with pytest.raises(DataError, match="line 2"):
        ImageNet(tmp_path, "val")
    gt.write_text("1\n2\n")
    _jpeg(tmp_path / "val" / "ILSVRC2012_val_00000007.JPEG", 1)
    with pytest.raises(DataError) as info:
        ImageNet(tmp_path, "val")
    assert "ILSVRC2012_val_00000007.JPEG" in str(info.value)
