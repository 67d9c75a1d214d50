"""The tensor augmentation (augment=tensor): crop rule, exact pixels, PIL agreement, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.data.loader import SeededDataset
from latentmim.data.tensor_augment import CROP_ATTEMPTS, TensorCropFlip, crop_box
from latentmim.engine.data import build_pretrain_data

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def _smooth_rgb(size: int) -> Image.Image:
    """A smooth image (sums of low-frequency sines), where two bicubic kernels differ little."""
    y, x = np.mgrid[0:size, 0:size] / size
    chans = [np.sin(2 * np.pi * (x + k * y) + k) for k in range(3)]
    return Image.fromarray(((np.stack(chans, -1) + 1) * 127.5).round().astype(np.uint8))


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float, by the formula (v / 255 - mean) / std."""
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def test_crop_box_by_hand() -> None:
    u = torch.zeros(2 * CROP_ATTEMPTS + 2)
    u[1] = 0.5  # area U = 0 -> 0.25 * 40 * 40 = 400 px, aspect exp(0) = 1 -> a 20 x 20 box
    u[-2], u[-1] = 0.5, 0.99  # top = int(0.5 * 21) = 10, left = int(0.99 * 21) = 20
    assert crop_box(40, 40, 0.25, u) == (10, 20, 20, 20)
    # the first attempt's aspect is 4/3 at the full area: a 46 x 35 box does not fit, the second
    # attempt (area 0.25 + 0.75 * 0.5, aspect 1) does: round(sqrt(1000)) = 32 on a side
    u = torch.zeros(2 * CROP_ATTEMPTS + 2)
    u[0], u[1], u[2], u[3] = 1.0, 1.0, 0.5, 0.5
    assert crop_box(40, 40, 0.25, u) == (0, 0, 32, 32)


def test_crop_box_falls_back_to_the_clamped_centre_crop() -> None:
    # every attempt asks for the full area at aspect 4/3: never fits; a 100 x 20 image's aspect 5
    # is clamped to 4/3: the centred 20 x 27 box
    u = torch.ones(2 * CROP_ATTEMPTS + 2)
    assert crop_box(20, 100, 1.0, u) == (0, (100 - 27) // 2, 20, 27)
    assert crop_box(30, 30, 1.0, u) == (0, 0, 30, 30)


def test_crop_boxes_follow_the_area_and_aspect_ranges() -> None:
    g = torch.Generator().manual_seed(0)
    areas = []
    for _ in range(500):
        top, left, h, w = crop_box(48, 64, 0.2, torch.rand(2 * CROP_ATTEMPTS + 2, generator=g))
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
        # rounding a side moves the area by at most half a pixel per side
        assert 0.2 * 48 * 64 - (h + w) <= h * w <= 48 * 64
        assert 0.75 - 0.1 <= w / h <= 4 / 3 + 0.1
        areas.append(h * w / (48 * 64))
    # U(0.2, 1) areas (minus the rare oversized draws that were retried): mean near 0.6
    assert 0.5 < float(np.mean(areas)) < 0.65


def test_full_crop_is_the_normalised_image_or_its_mirror_exactly() -> None:
    # min_crop=1 leaves only the whole image (a box of any other aspect does not fit): the output
    # is the image itself, normalised, flipped about half the time
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    ref = _normalise(np.asarray(img))
    t = TensorCropFlip(24, 1.0, MEAN, STD)
    flips = 0
    for seed in range(200):
        out = t(img, torch.Generator().manual_seed(seed))
        if torch.allclose(out, ref, atol=1e-5):
            continue
        torch.testing.assert_close(out, ref.flip(-1), atol=1e-5, rtol=0)
        flips += 1
    assert 70 <= flips <= 130  # Binomial(200, 0.5): 7 std


def test_a_crop_agrees_with_pil_bicubic_on_a_smooth_image() -> None:
    img = _smooth_rgb(40)
    t = TensorCropFlip(40, 0.2, MEAN, STD)
    for seed in range(5):
        out = t(img, torch.Generator().manual_seed(seed))
        u = torch.rand(2 * CROP_ATTEMPTS + 3, generator=torch.Generator().manual_seed(seed))  # the documented draw
        top, left, h, w = crop_box(40, 40, 0.2, u[:-1])
        ref_img = img.resize((40, 40), Image.BICUBIC, box=(left, top, left + w, top + h))
        ref = _normalise(np.asarray(ref_img))
        ref = ref.flip(-1) if float(u[-1]) < 0.5 else ref
        # the kernels differ (PIL a = -0.5, torch a = -0.75): a fraction of a grey level on average
        err = ((out - ref) * torch.tensor(STD).view(3, 1, 1) * 255).abs()
        assert float(err.mean()) < 0.75, (seed, float(err.mean()))  # measured 0.08-0.38
        assert math.isfinite(float(out.sum()))


def test_channels_convert_as_in_the_pil_path() -> None:
    gray = Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8))
    g = torch.Generator().manual_seed(0)
    assert TensorCropFlip(32, 0.5, (0.3,), (0.3,), in_chans=1)(gray, g).shape == (1, 32, 32)
    assert TensorCropFlip(32, 0.5, MEAN, STD, in_chans=3)(gray, g).shape == (3, 32, 32)
    rgb = _smooth_rgb(20)
    one = TensorCropFlip(20, 1.0, (0.0,), (1.0,), in_chans=1)(rgb, torch.Generator().manual_seed(1))
    luma = np.asarray(rgb.convert("L")).astype(np.float32) / 255  # PIL's own conversion
    assert torch.allclose(one[0], torch.from_numpy(luma), atol=1e-6) or torch.allclose(
        one[0], torch.from_numpy(luma).flip(-1), atol=1e-6)


def test_seeded_dataset_passes_a_generator_and_leaves_the_global_rngs_alone() -> None:
    images = [(_smooth_rgb(32).rotate(10 * i), i) for i in range(4)]
    ds = SeededDataset(images, TensorCropFlip(16, 0.2, MEAN, STD), seed=3)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = [ds[i][0] for i in range(4)]
    assert torch.equal(torch.rand(1), expected_next)  # the global stream did not move
    assert torch.equal(a[2], ds[2][0])  # a pure function of (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(a[2], ds[2][0])
    other = SeededDataset(images, TensorCropFlip(16, 0.2, MEAN, STD), seed=4)
    assert not torch.equal(a[2], other[2][0])


def test_augment_key_is_validated_and_selects_the_transform(tmp_path) -> None:
    with pytest.raises(ConfigError, match="'augment'.*'cv2'"):
        compose_config(["augment=cv2"])
    cfg = compose_config(["augment=tensor", "synthetic.num_train=8", "synthetic.num_val=4",
                          f"output_dir={tmp_path}", "env.device=cpu"])
    data = build_pretrain_data(cfg, torch.device("cpu"), with_monitor=False)
    assert isinstance(data.train.transform, TensorCropFlip)
    x, _, ok = data.train[0]
    assert x.shape == (3, cfg.train_size, cfg.train_size) and ok
