"""Train/eval transforms: shapes, channels, normalisation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from latentmim.data.errors import DataError
from latentmim.data.info import FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_STD
from latentmim.data.transforms import ToNormalizedTensor, eval_transform, train_transform


def _rgb(w: int, h: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_train_transform_shapes_and_channels() -> None:
    torch.manual_seed(0)
    t3 = train_transform(24, 0.3, IMAGENET_MEAN, IMAGENET_STD, in_chans=3)
    x = t3(_rgb(50, 40))
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32
    t1 = train_transform(32, 0.5, FASHION_MNIST_MEAN, FASHION_MNIST_STD, in_chans=1)
    gray = Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8))
    assert t1(gray).shape == (1, 32, 32)
    # An RGB image fed to a 1-channel pipeline (and vice versa) is converted.
    assert t1(_rgb(30, 30)).shape == (1, 32, 32)
    assert t3(gray).shape == (3, 24, 24)


def test_train_transform_is_random_and_seedable() -> None:
    t = train_transform(16, 0.2, IMAGENET_MEAN, IMAGENET_STD, in_chans=3)
    img = _rgb(64, 64)
    torch.manual_seed(5)
    a = t(img)
    torch.manual_seed(5)
    b = t(img)
    c = t(img)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_eval_transform_resizes_crops_and_normalises() -> None:
    t = eval_transform(28, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    assert [type(s).__name__ for s in t.transforms][1:3] == ["Resize", "CenterCrop"]
    assert t.transforms[1].size == 32  # int(28 / 0.875)
    value = round(FASHION_MNIST_MEAN[0] * 255)
    x = t(Image.new("L", (28, 28), value))
    assert x.shape == (1, 28, 28)
    assert float(x.abs().max()) < 1.0 / 255 / FASHION_MNIST_STD[0]
    x3 = eval_transform(224, IMAGENET_MEAN, IMAGENET_STD)(_rgb(300, 260))
    assert x3.shape == (3, 224, 224)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_to_normalized_tensor_equals_torchvision_bit_for_bit(mode: str) -> None:
    # The fused step must reproduce T.ToTensor + T.Normalize exactly, or every recorded
    # number of the PIL path would move.
    c = 3 if mode == "RGB" else 1
    mean, std = [0.2, 0.45, 0.7][:c], [0.11, 0.3, 0.27][:c]
    reference = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    rng = np.random.default_rng(3)
    for h, w in [(40, 40), (7, 13), (28, 28)]:
        shape = (h, w, 3) if c == 3 else (h, w)
        img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
        ours = ToNormalizedTensor(mean, std)(img)
        assert ours.shape == (c, h, w) and ours.dtype == torch.float32
        assert torch.equal(ours, reference(img))


def test_to_normalized_tensor_rejects_mismatches() -> None:
    with pytest.raises(DataError, match="mode 'RGBA'"):
        ToNormalizedTensor([0.5] * 3, [0.2] * 3)(Image.new("RGBA", (4, 4)))
    with pytest.raises(DataError, match="1 channels"):
        ToNormalizedTensor([0.5] * 3, [0.2] * 3)(Image.new("L", (4, 4)))
    with pytest.raises(DataError, match="non-zero"):
        ToNormalizedTensor([0.5], [0.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: train_transform(32, 0.2, IMAGENET_MEAN, IMAGENET_STD, in_chans=1),
        lambda: train_transform(32, 0.0, IMAGENET_MEAN, IMAGENET_STD, in_chans=3),
        lambda: train_transform(32, 0.2, IMAGENET_MEAN, IMAGENET_STD, in_chans=2),
        lambda: eval_transform(0, IMAGENET_MEAN, IMAGENET_STD),
    ],
)
def test_bad_arguments_raise_data_error(call: Callable[[], object]) -> None:
    with pytest.raises(DataError):
        call()
