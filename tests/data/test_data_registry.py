"""build_dataset: names, defaults, infos and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from latentmim.data.errors import DataError
from latentmim.data.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT
from latentmim.data.info import DatasetInfo
from latentmim.data.registry import DATASET_NAMES, build_dataset
from latentmim.data.synthetic import SyntheticShapes


def test_synthetic_defaults_and_overrides() -> None:
    train, info = build_dataset("synthetic", "train", None)
    val, _ = build_dataset("synthetic", "val", "/ignored/path")
    assert isinstance(train, SyntheticShapes) and (len(train), len(val)) == (10000, 2000)
    assert info == DatasetInfo("synthetic", 10, 3, info.mean, info.std)
    small, _ = build_dataset("synthetic", "train", None, synthetic_size=32, synthetic_num=7, seed=4)
    img, label = small[6]
    assert len(small) == 7 and img.size == (32, 32) and small.seed == 4
    assert label == SyntheticShapes("train", 7, 32, seed=4)[6][1]


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DEFAULT_ROOT).is_dir(), reason="Fashion-MNIST not present"
)
def test_fashion_mnist_default_root() -> None:
    ds, info = build_dataset("fashion_mnist", "val", None)
    assert len(ds) == 10000 and info.in_chans == 1 and info.num_classes == 10
    img, _ = ds[0]
    assert isinstance(img, Image.Image) and img.mode == "L"


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(DataError) as info:
        build_dataset("imagenet1k", "train", None)
    msg = str(info.value)
    assert "'imagenet1k'" in msg and all(name in msg for name in DATASET_NAMES)
    assert "\n" not in msg


def test_unknown_split() -> None:
    with pytest.raises(DataError, match="'test'"):
        build_dataset("synthetic", "test", None)


@pytest.mark.parametrize(
    "name",
    ["fashion_mnist", "cifar10", "cifar100", "stl10", "imagefolder", "imagenet", "imagenet100"],
)
def test_missing_data_path_is_named(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "x"
    with pytest.raises(DataError) as info:
        build_dataset(name, "train", str(missing))
    assert str(info.value) == f"dataset '{name}': data_path '{missing}' does not exist"


@pytest.mark.parametrize("name", ["cifar10", "imagenet", "imagefolder"])
def test_datasets_without_default_need_a_path(name: str) -> None:
    with pytest.raises(DataError, match=f"dataset '{name}' needs a data_path"):
        build_dataset(name, "train", None)


def test_torchvision_dataset_without_files_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download=True") as info:
        build_dataset("cifar10", "val", str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_imagefolder_val_uses_train_classes(tmp_path: Path) -> None:
    for split, cls in (("train", "a"), ("train", "b"), ("train", "c"), ("val", "c")):
        (tmp_path / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / cls / "0.png")
    val, info = build_dataset("imagefolder", "val", str(tmp_path))
    assert info.num_classes == 3 and len(val) == 1 and val[0][1] == 2
    (tmp_path / "val" / "z").mkdir()
    with pytest.raises(DataError) as err:
        build_dataset("imagefolder", "val", str(tmp_path))
    assert str(tmp_path / "val" / "z") in str(err.value)


def test_dataset_info_checks_stats_against_channels() -> None:
    with pytest.raises(DataError, match="in_chans=3"):
        DatasetInfo("x", 10, 3, (0.5,), (0.2,))
    with pytest.raises(DataError, match="num_classes"):
        DatasetInfo("x", 0, 1, (0.5,), (0.2,))
