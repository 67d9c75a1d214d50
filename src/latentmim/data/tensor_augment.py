"""The pre-training augmentation on uint8 tensors, drawn from an explicit generator.

The same operations as :func:`latentmim.data.transforms.train_transform` (random resized crop
of area ``[min_crop, 1]`` and aspect ``[3/4, 4/3]``, bicubic, horizontal flip with p = 0.5,
normalise), for small images where the PIL path's per-sample overhead dominates a CPU step:
on the demo's 40-px images the PIL transform and the re-seeding of the three global RNGs
around it cost more than the training step itself (``docs/small_scale.md``, section 6).

Here the randomness of one sample is one ``torch.rand`` call on a ``torch.Generator`` that
:class:`~latentmim.data.loader.SeededDataset` seeds from (seed, epoch, index), so no global RNG
is touched, and the crop is torchvision's tensor ``resized_crop`` on the uint8 image (bicubic,
antialiased, rounded back to uint8 as PIL does). The pixels are not bit-identical to PIL's
(PIL's bicubic kernel uses a = -0.5, torch's a = -0.75); runs with ``augment=tensor`` are a
different recipe from ``augment=pil`` and were measured as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from latentmim.data.transforms import check_crop, pil_mode, to_uint8_chw

CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop: then fall back to a centre crop
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def crop_box(
    height: int, width: int, min_crop: float, u: torch.Tensor
) -> tuple[int, int, int, int]:
    """A random crop box from uniforms, by torchvision's ``RandomResizedCrop.get_params`` rule.

    Up to :data:`CROP_ATTEMPTS` tries of area ``U(min_crop, 1) * H * W`` and log-uniform aspect
    ratio in :data:`CROP_RATIO`; the first box that fits is placed uniformly. If none fits, the
    largest centred box with its aspect clamped to the range.

    Args:
        height, width: Image size in pixels.
        min_crop: Smallest crop area as a fraction of the image, in (0, 1].
        u: ``2 * CROP_ATTEMPTS + 2`` uniforms in [0, 1): two per attempt, then top and left.

    Returns:
        ``(top, left, h, w)`` with ``0 <= top``, ``top + h <= height`` (same for width).
    """
    area = height * width
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    vals = u.tolist()
    for k in range(CROP_ATTEMPTS):
        target = area * (min_crop + (1.0 - min_crop) * vals[2 * k])
        ratio = math.exp(log_lo + (log_hi - log_lo) * vals[2 * k + 1])
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(vals[-2] * (height - h + 1))
            left = int(vals[-1] * (width - w + 1))
            return top, left, h, w
    return centre_box(height, width)


def centre_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The crop rule's fallback: the largest centred box with its aspect clamped to :data:`CROP_RATIO`."""
    in_ratio = width / height
    if in_ratio < CROP_RATIO[0]:
        w, h = width, int(round(width / CROP_RATIO[0]))
    elif in_ratio > CROP_RATIO[1]:
        h, w = height, int(round(height * CROP_RATIO[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


class TensorCropFlip:
    """Random resized crop (bicubic) + horizontal flip + normalise, on uint8 tensors.

    Called as ``transform(image, generator)``: all randomness comes from ``generator``
    (:class:`~latentmim.data.loader.SeededDataset` passes one seeded by (seed, epoch, index)).

    Args:
        crop_size: Output side in pixels.
        min_crop: Smallest crop area as a fraction of the image, in (0, 1].
        mean, std: Per-channel mean and std (of pixels in [0, 1]), length ``in_chans``.
        in_chans: 1 or 3.

    Returns (when called): float tensor (in_chans, crop_size, crop_size).
    """

    uses_generator = True  # SeededDataset's switch: pass a generator, leave the global RNGs alone

    def __init__(
        self, crop_size: int, min_crop: float, mean: Sequence[float], std: Sequence[float], in_chans: int = 3
    ) -> None:
        self.mode = pil_mode(in_chans, mean, std)
        check_crop(crop_size, min_crop)
        self.crop_size = int(crop_size)
        self.min_crop = float(min_crop)
        self.in_chans = in_chans
        # normalise a uint8 value v as (v / 255 - mean) / std = v * scale + shift in one pass
        std_t = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1) / std_t

    def __call__(self, image: Image.Image, generator: torch.Generator) -> torch.Tensor:
        img = to_uint8_chw(image, self.mode)
        u = torch.rand(2 * CROP_ATTEMPTS + 3, generator=generator)  # attempts, top, left; flip last
        top, left, h, w = crop_box(img.shape[1], img.shape[2], self.min_crop, u[:-1])
        out = F.resized_crop(img, top, left, h, w, [self.crop_size, self.crop_size],
                             interpolation=InterpolationMode.BICUBIC, antialias=True)
        if float(u[-1]) < 0.5:
            out = out.flip(-1)
        return out.float().mul_(self.scale).add_(self.shift)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop_size={self.crop_size}, min_crop={self.min_crop}, in_chans={self.in_chans})"
