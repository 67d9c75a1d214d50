"""augment=batch: the PIL path's tensors, bit for bit, from a per-sample draw and a batched crop."""

from __future__ import annotations

import numpy as np
import PIL
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.data.batch_augment import (
    BatchCropFlip,
    CropJob,
    DrawCropFlip,
    draw_crop_box,
    resized_crop_uint8,
    vertical_first,
)
from latentmim.data.loader import SeededDataset
from latentmim.data.seeding import seeded_torch_rng
from latentmim.data.synthetic import SyntheticShapes
from latentmim.data.transforms import train_transform
from latentmim.engine.data import build_pretrain_data


class _Images(torch.utils.data.Dataset):
    """Fixed PIL images (the label is the index)."""

    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], i


def _noisy(n: int, size: int, mode: str, seed: int) -> list[Image.Image]:
    """Pixel noise over a smooth ramp: every bicubic tap and every rounding matters."""
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    ramp = np.linspace(0, 200, size)[None, :, None] if mode == "RGB" else np.linspace(0, 200, size)[None, :]
    return [Image.fromarray(np.clip(ramp + rng.normal(0, 40, shape), 0, 255).astype(np.uint8), mode)
            for _ in range(n)]


def _both_paths(images: list[Image.Image], crop: int, min_crop: float, mean, std, epoch: int):
    """(PIL path's stacked tensors, batch path's tensors) for the same dataset, seed and epoch."""
    chans = len(mean)
    pil = SeededDataset(_Images(images), train_transform(crop, min_crop, mean, std, chans), seed=3)
    draw = SeededDataset(_Images(images), DrawCropFlip(crop, min_crop, mean, std, chans), seed=3)
    pil.set_epoch(epoch)
    draw.set_epoch(epoch)
    ref = torch.stack([pil[i][0] for i in range(len(images))])
    job = default_collate([draw[i][0] for i in range(len(images))])
    return ref, BatchCropFlip(crop, mean, std)(job)


@pytest.mark.parametrize("mode, size, crop, min_crop", [
    ("RGB", 40, 40, 0.2),   # the demo: 40-px renders, 40-px crops (always enlarging)
    ("L", 28, 32, 0.2),     # Fashion-MNIST: grey, enlarged to 32
    ("RGB", 64, 32, 0.08),  # shrinking (antialiased, wider kernel; Pillow 13's vertical-first crops)
    ("RGB", 50, 40, 0.5),   # mixed: one side shrinks while the other grows
])
def test_batch_path_equals_the_pil_pipeline_bit_for_bit(mode, size, crop, min_crop) -> None:
    mean, std = ((0.5, 0.4, 0.3), (0.25, 0.2, 0.3)) if mode == "RGB" else ((0.29,), (0.35,))
    images = _noisy(96, size, mode, seed=size)
    for epoch in (0, 1):
        ref, out = _both_paths(images, crop, min_crop, mean, std, epoch)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        assert torch.equal(out, ref), f"{(out != ref).float().mean():.4f} of the values differ"


def test_batch_path_equals_the_pil_pipeline_on_rendered_synthetic_images() -> None:
    scenes = SyntheticShapes(num_images=64, image_size=40, split="train", seed=0)
    images = [scenes[i][0] for i in range(64)]
    ref, out = _both_paths(images, 40, 0.2, (0.48, 0.46, 0.41), (0.23, 0.22, 0.23), epoch=2)
    assert torch.equal(out, ref)


def test_draw_crop_box_makes_torchvisions_draws() -> None:
    # many sizes, including ones where every attempt fails (a 4 x 90 strip at min_crop 0.9) and the
    # fallback centre crop is taken; the RNG must also end in the same state (the flip draws next)
    for (h, w, min_crop) in [(40, 40, 0.2), (28, 28, 0.08), (17, 61, 0.5), (4, 90, 0.9), (90, 4, 0.9)]:
        for seed in range(300):
            with seeded_torch_rng(seed):
                ref = T.RandomResizedCrop.get_params(torch.zeros(1, h, w), [min_crop, 1.0], [3 / 4, 4 / 3])
                ref_next = torch.rand(1)
            with seeded_torch_rng(seed):
                box = draw_crop_box(h, w, min_crop)
                nxt = torch.rand(1)
            assert box == tuple(ref) and torch.equal(nxt, ref_next), (h, w, seed)


def test_resized_crop_equals_pillow_for_tall_wide_and_odd_crops() -> None:
    # explicit boxes on one 64-px noise image, enlarging and shrinking on either axis; on Pillow >= 13
    # the tall shrinking ones take the vertical pass first (and would differ if run horizontal-first)
    image = _noisy(1, 64, "L", seed=1)[0]
    pixels = torch.from_numpy(np.asarray(image).copy())[None, None]
    boxes = [(0, 0, 64, 64), (3, 5, 57, 43), (12, 10, 41, 36), (0, 0, 64, 20), (7, 1, 20, 63), (9, 9, 13, 13),
             (0, 0, 50, 40), (30, 2, 34, 31), (1, 30, 33, 34)]
    for size in (16, 32, 48):
        box = torch.tensor(boxes)
        out = resized_crop_uint8(pixels.expand(len(boxes), -1, -1, -1), box, size)
        for b, (top, left, h, w) in enumerate(boxes):
            ref = image.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BICUBIC)
            assert torch.equal(out[b, 0], torch.from_numpy(np.asarray(ref).astype(np.float64))), (size, boxes[b])
    # the rule itself, by hand: 57 rows -> 32 shrink by 25, 43 columns by 11 (< 25 / 2): vertical first
    assert vertical_first(torch.tensor([57, 57, 20]), torch.tensor([43, 46, 10]), 32).tolist() == [
        int(PIL.__version__.split(".")[0]) >= 13, False, False]


def test_flip_and_normalisation_by_hand() -> None:
    # a full-image box at the output size is the identity resize; the flip reverses the columns
    pixels = torch.arange(2 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 3, 4, 4)
    box = torch.tensor([[0, 0, 4, 4, 0], [0, 0, 4, 4, 1]])
    out = BatchCropFlip(4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(CropJob(pixels, box))
    expect = (pixels.float() / 255 - 0.5) / 0.25
    assert torch.allclose(out[0], expect[0]) and torch.allclose(out[1], expect[1].flip(-1))


def test_augment_batch_is_validated_and_hands_the_step_the_pil_tensors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="'augment'.*imagefolder"):
        compose_config(["augment=batch", "dataset=imagefolder", "data_path=/nonexistent"])
    common = ["synthetic.num_train=16", "synthetic.num_val=4", "batch_size=8", f"output_dir={tmp_path}",
              "env.device=cpu", "env.workers=0"]
    batches = {}
    for aug in ("pil", "batch"):
        data = build_pretrain_data(compose_config([*common, f"augment={aug}"]), torch.device("cpu"),
                                   with_monitor=False)
        data.train.set_epoch(1)
        data.sampler.set_epoch(1)
        images, labels, _ = next(iter(data.loader))
        batches[aug] = (data.to_device(images), labels)
    assert isinstance(data.train.transform, DrawCropFlip)
    assert batches["batch"][0].shape == (8, 3, 40, 40)  # the demo's train crop: 4 x (8 + 2)
    assert torch.equal(batches["batch"][0], batches["pil"][0]) and torch.equal(batches["batch"][1], batches["pil"][1])


def test_bicubic_kernel_is_pillows_not_torchs() -> None:
    # guard against "simplifying" to torch's own bicubic: it differs from Pillow's on enlargement
    image = _noisy(1, 20, "RGB", seed=5)[0]
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
    ours = resized_crop_uint8(pixels, torch.tensor([[2, 3, 15, 14]]), 40)
    torch_bicubic = T.functional.resized_crop(pixels, 2, 3, 15, 14, [40, 40], InterpolationMode.BICUBIC,
                                              antialias=False).double()
    ref = torch.from_numpy(np.asarray(image.crop((3, 2, 17, 17)).resize((40, 40), Image.Resampling.BICUBIC))
                           .astype(np.float64)).permute(2, 0, 1)[None]
    assert torch.equal(ours, ref) and not torch.equal(torch_bicubic, ref)


def test_augment_auto_is_batch_for_fixed_size_datasets_and_pil_for_image_folders(tmp_path) -> None:
    from latentmim.engine.data import augment_mode

    assert augment_mode(compose_config(["augment=auto"])) == "batch"  # the demo: synthetic
    assert augment_mode(compose_config(["augment=auto", "dataset=fashion_mnist"])) == "batch"
    # an image folder (images of many sizes) composes and takes the PIL path, where batch is refused
    folder = ["dataset=imagefolder", f"data_path={tmp_path}"]
    assert augment_mode(compose_config(["augment=auto", *folder])) == "pil"
    assert augment_mode(compose_config(["augment=pil"])) == "pil"
    assert compose_config([]).augment == "auto"  # the demo's default
