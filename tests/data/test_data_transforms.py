"""Train/eval transforms: shapes, channels, normalisation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from latentmim.data.errors import DataError
from latentmim.data.info import FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_STD
from latentmim.data.transforms import eval_transform, train_transform


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
