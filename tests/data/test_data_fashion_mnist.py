"""IDX parsing and the Fashion-MNIST dataset."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentmim.data.errors import DataError
from latentmim.data.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT, FashionMNIST
from latentmim.data.idx import encode_idx, parse_idx, read_idx

REAL_DATA = Path(FASHION_MNIST_DEFAULT_ROOT)


def _write_tiny_split(
    root: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool
) -> None:
    """Write images/labels as IDX files by hand (header bytes spelled out)."""
    n, h, w = images.shape
    img_bytes = struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, h, w) + images.tobytes()
    lab_bytes = struct.pack(">BBBBI", 0, 0, 0x08, 1, n) + labels.tobytes()
    for name, data in (
        (f"{prefix}-images-idx3-ubyte", img_bytes),
        (f"{prefix}-labels-idx1-ubyte", lab_bytes),
    ):
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)


def _tiny_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def test_parse_idx_matches_hand_written_bytes() -> None:
    data = struct.pack(">BBBBII", 0, 0, 0x08, 2, 2, 3) + bytes([1, 2, 3, 4, 5, 255])
    np.testing.assert_array_equal(
        parse_idx(data), np.array([[1, 2, 3], [4, 5, 255]], dtype=np.uint8)
    )
    # Big-endian int32 payload.
    data = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 2) + struct.pack(">ii", -7, 70000)
    out = parse_idx(data)
    assert out.dtype == np.int32 and out.tolist() == [-7, 70000]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_encode_parse_roundtrip(dtype: type) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    out = parse_idx(encode_idx(arr))
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\x00\x00", "too short"),
        (struct.pack(">BBBBI", 1, 0, 0x08, 1, 2) + b"ab", "magic"),
        (struct.pack(">BBBBI", 0, 0, 0x07, 1, 2) + b"ab", "magic"),
        (struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + b"ab", "expected 3"),
        (struct.pack(">BBBB", 0, 0, 0x08, 2) + b"\x00", "header"),
    ],
)
def test_parse_idx_rejects_corrupt_data(data: bytes, needle: str) -> None:
    with pytest.raises(DataError, match=needle) as info:
        parse_idx(data, "some/file-idx")
    assert "some/file-idx" in str(info.value)


def test_read_idx_reports_missing_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        read_idx(tmp_path / "nope-idx1-ubyte")
    assert str(tmp_path / "nope-idx1-ubyte") in str(info.value)
    bad = tmp_path / "bad-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"0123456789" * 20)[:25])
    with pytest.raises(DataError, match="corrupt gzip") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reads_hand_made_files(tmp_path: Path, gz: bool) -> None:
    train_x, train_y = _tiny_arrays(5, seed=0)
    val_x, val_y = _tiny_arrays(3, seed=1)
    _write_tiny_split(tmp_path, "train", train_x, train_y, gz)
    _write_tiny_split(tmp_path, "t10k", val_x, val_y, gz)
    train, val = FashionMNIST(tmp_path, "train"), FashionMNIST(str(tmp_path), "val")
    assert (len(train), len(val)) == (5, 3)
    img, label = val[2]
    assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(img), val_x[2])
    assert label == int(val_y[2]) and isinstance(label, int)
    np.testing.assert_array_equal(train.targets, train_y)


def test_fashion_mnist_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        FashionMNIST(tmp_path / "missing", "train")
    assert str(tmp_path / "missing") in str(info.value)
    with pytest.raises(DataError) as info:
        FashionMNIST(tmp_path, "train")
    assert str(tmp_path / "train-images-idx3-ubyte") in str(info.value)
    with pytest.raises(DataError, match="'test'"):
        FashionMNIST(tmp_path, "test")
    # Images and labels disagree in count: caught on first access, naming the labels file.
    train_x, train_y = _tiny_arrays(4, seed=2)
    _write_tiny_split(tmp_path, "train", train_x, train_y[:3], gz=False)
    ds = FashionMNIST(tmp_path, "train")
    with pytest.raises(DataError) as info:
        len(ds)
    assert str(tmp_path / "train-labels-idx1-ubyte") in str(info.value)


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"{REAL_DATA} not present")
def test_real_fashion_mnist_sizes_labels_and_stats() -> None:
    train, val = FashionMNIST(split="train"), FashionMNIST(split="val")
    assert (len(train), len(val)) == (60000, 10000)
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(val.targets).tolist() == [1000] * 10
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    pixels = train.images.astype(np.float64) / 255
    assert abs(pixels.mean() - 0.2860) < 1e-3 and abs(pixels.std() - 0.3530) < 1e-3
    img, label = val[0]
    assert img.mode == "L" and label == int(val.targets[0])
