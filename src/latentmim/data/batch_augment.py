"""``augment=batch``: the PIL pre-training augmentation, resampled for a whole batch at once.

:func:`~latentmim.data.transforms.train_transform` (random resized crop, bicubic; horizontal
flip; normalise) costs about 0.35 ms per 40-px image on one CPU core, over half of the demo's
training step per image, and runs per sample in Python. Here the work is split in two:

* per sample, in the loader, :class:`DrawCropFlip` only *draws* the crop box and the flip, with
  the very calls ``RandomResizedCrop`` and ``RandomHorizontalFlip`` make on torch's RNG (which
  :class:`~latentmim.data.loader.SeededDataset` seeds from (seed, epoch, index)), and returns the
  uncropped uint8 pixels with them;
* per batch, after the transfer to the training device, :class:`BatchCropFlip` resamples every
  crop with two batched matrix products (rows, then columns) whose coefficients are Pillow's
  bicubic ones in Pillow's 22-bit fixed point, rounded and clipped to uint8 after each pass as
  Pillow does, then flips and normalises.

The result is the PIL path's tensor, bit for bit (tested against ``train_transform`` on the same
seeds): ``augment=batch`` is another way to run ``augment=pil``, not another recipe. On 2 CPU cores
the loader alone is 1.10x faster and the whole demo is not (``docs/small_scale.md``, section 10);
on a GPU the crop runs on the device. Every image
of a batch must have the same size (the collated pixels are one tensor): datasets with fixed-size
images only (``latentmim.data.registry.FIXED_SIZE_DATASETS``; the config says so for the others).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import PIL
import torch
from PIL import Image

from latentmim.data.tensor_augment import CROP_ATTEMPTS, CROP_RATIO, centre_box
from latentmim.data.transforms import check_crop, pil_mode, to_uint8_chw

# RandomResizedCrop draws its aspect from the log of the float32 tensor of the range
LOG_RATIO = tuple(torch.log(torch.tensor(CROP_RATIO)).tolist())
PRECISION_BITS = 22  # Pillow's fixed point for 8-bit images (Resample.c: 32 - 8 - 2)
BICUBIC_A = -0.5  # Pillow's bicubic kernel parameter (torch's own bicubic uses -0.75)
BICUBIC_SUPPORT = 2.0
PILLOW_MAJOR = int(PIL.__version__.split(".")[0])


class CropJob(NamedTuple):
    """One sample's uncropped pixels and its drawn crop; collates into the batched fields.

    Attributes:
        pixels: uint8 (C, H, W), batched (B, C, H, W).
        box: int64 (5,) = (top, left, height, width, flip), batched (B, 5).
    """

    pixels: torch.Tensor
    box: torch.Tensor


def draw_crop_box(height: int, width: int, min_crop: float) -> tuple[int, int, int, int]:
    """``T.RandomResizedCrop.get_params`` of an image of this size: the same torch draws, in order.

    The same calls on torch's global RNG (one ``uniform_`` for the area and one for the log-aspect
    per attempt, then two ``randint`` for the position) and the same float arithmetic, so the same
    seed gives the same box, without torchvision's per-call checks (about 70 us per call).

    Returns:
        ``(top, left, h, w)``.
    """
    area = height * width
    for _ in range(CROP_ATTEMPTS):
        target_area = area * torch.empty(1).uniform_(min_crop, 1.0).item()
        aspect = torch.exp(torch.empty(1).uniform_(LOG_RATIO[0], LOG_RATIO[1])).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,)).item())
            left = int(torch.randint(0, width - w + 1, size=(1,)).item())
            return top, left, h, w
    return centre_box(height, width)


class DrawCropFlip:
    """The per-sample half: draw ``train_transform``'s crop box and flip, keep the pixels as they are.

    Draws exactly what ``T.RandomResizedCrop(crop_size, scale=(min_crop, 1))`` and
    ``T.RandomHorizontalFlip()`` draw from torch's global RNG, in the same order, so under the same
    seed the box and the flip equal the PIL path's.

    Args:
        crop_size: Output side in pixels (checked here, applied by :class:`BatchCropFlip`).
        min_crop: Smallest crop area as a fraction of the image, in (0, 1].
        mean, std: Per-channel statistics, length ``in_chans`` (checked against it).
        in_chans: 1 ('L') or 3 ('RGB').
    """

    torch_rng_only = True  # SeededDataset's switch: seed torch's RNG alone around the call

    def __init__(
        self, crop_size: int, min_crop: float, mean: Sequence[float], std: Sequence[float], in_chans: int = 3
    ) -> None:
        self.mode = pil_mode(in_chans, mean, std)
        check_crop(crop_size, min_crop)
        self.min_crop = float(min_crop)
        self.crop_size = int(crop_size)

    def __call__(self, image: Image.Image) -> CropJob:
        pixels = to_uint8_chw(image, self.mode)
        top, left, h, w = draw_crop_box(pixels.shape[1], pixels.shape[2], self.min_crop)
        flip = bool(torch.rand(1) < 0.5)  # RandomHorizontalFlip(p=0.5)'s draw
        return CropJob(pixels, torch.tensor([top, left, h, w, int(flip)], dtype=torch.int64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop_size={self.crop_size}, min_crop={self.min_crop}, mode={self.mode!r})"


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """Pillow's bicubic kernel (a = -0.5), elementwise, in the operation order of Resample.c."""
    a = BICUBIC_A
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def resample_weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """Pillow's bicubic resampling coefficients of a crop, in its 22-bit fixed point.

    Row ``i`` of sample ``b`` weighs the input pixels that Pillow's ``precompute_coeffs`` uses for
    output pixel ``i`` when it resizes the crop ``[start, start + length)`` to ``out_size``
    (support widened by the scale when shrinking; window clipped to the crop; weights normalised
    to sum 1, then rounded half away from zero to integers of ``2**-22``).

    Args:
        start, length: (B,) int64 crop offset and length along one axis.
        in_size: The uncropped image's length along that axis.
        out_size: The output length.

    Returns:
        (B, out_size, in_size) float64 holding integers (exact in float64 products and sums).
    """
    dev = start.device
    length_f = length.to(torch.float64)[:, None, None]  # (B, 1, 1)
    scale = length_f / out_size
    filterscale = scale.clamp(min=1.0)  # shrinking widens the kernel (antialiasing)
    support = BICUBIC_SUPPORT * filterscale
    centre = (torch.arange(out_size, dtype=torch.float64, device=dev)[None, :, None] + 0.5) * scale  # (B, S, 1)
    lo = torch.trunc(centre - support + 0.5).clamp(min=0.0)  # C's (int) cast truncates
    hi = torch.minimum(torch.trunc(centre + support + 0.5), length_f)
    # Only the taps of each window (Pillow's ksize of the widest kernel), not all in_size pixels
    taps = 2 * math.ceil(BICUBIC_SUPPORT * max(float(length.max()) / out_size, 1.0)) + 1
    pos = lo + torch.arange(taps, dtype=torch.float64, device=dev)  # (B, S, taps) within the crop
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    w = torch.where(pos < hi, _bicubic((pos - centre + 0.5) * (1.0 / filterscale)), zero)
    total = w.sum(-1, keepdim=True)
    w = torch.where(total != 0, w / total, w)
    w = torch.trunc(w * (1 << PRECISION_BITS) + torch.where(w < 0, -0.5, 0.5))
    # Scatter into the dense matrix; taps past the window carry weight 0 (index clipped to stay valid)
    index = (pos + start.to(torch.float64)[:, None, None]).clamp(max=in_size - 1).long()
    dense = torch.zeros(start.shape[0], out_size, in_size, dtype=torch.float64, device=dev)
    return dense.scatter_add_(2, index, w)


def _fixed_point_pass(weighted_sum: torch.Tensor) -> torch.Tensor:
    """Pillow's rounding of a fixed-point sum back to 8 bits: (s + 2**21) >> 22, clipped to [0, 255]."""
    half = float(1 << (PRECISION_BITS - 1))
    return weighted_sum.add_(half).div_(1 << PRECISION_BITS).floor_().clamp_(0.0, 255.0)  # in place: a fresh bmm result


def vertical_first(height: torch.Tensor, width: torch.Tensor, size: int) -> torch.Tensor:
    """Which crops Pillow resizes vertical pass first (the rounding between the passes differs).

    Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks,
    and by more than twice what the width changes; earlier versions always start horizontally.
    The rule was read off the installed Pillow 13.0 on 14850 (height, width, size) cases with no
    exception (``docs/small_scale.md``, section 10); the tests compare against the installed
    Pillow, so a change of the rule fails them.

    Args:
        height, width: (B,) int64 crop sizes.
        size: Output side.

    Returns:
        (B,) bool.
    """
    if PILLOW_MAJOR < 13:
        return torch.zeros_like(height, dtype=torch.bool)
    return (height > size) & (height - size > 2 * (width - size))


def resized_crop_uint8(pixels: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """Crop every image to its box and resize it to ``size`` x ``size`` exactly as Pillow's bicubic does.

    Args:
        pixels: (B, C, H, W) uint8 images.
        box: (B, >= 4) int64, columns (top, left, height, width).
        size: Output side.

    Returns:
        (B, C, size, size) float64 holding the uint8 values Pillow would produce.
    """
    b, c, height, width = pixels.shape
    wx = resample_weights(box[:, 1], box[:, 3], width, size).transpose(1, 2)  # (B, W, S)
    wy = resample_weights(box[:, 0], box[:, 2], height, size)  # (B, S, H)
    x = pixels.to(torch.float64)
    swap = vertical_first(box[:, 2], box[:, 3], size)
    if not bool(swap.any()):  # the common case (every enlarging crop): one batch, horizontal first
        return _vertical(wy, _horizontal(x, wx))
    out = x.new_empty(b, c, size, size)
    keep = ~swap
    out[keep] = _vertical(wy[keep], _horizontal(x[keep], wx[keep]))
    out[swap] = _horizontal(_vertical(wy[swap], x[swap]), wx[swap])  # Pillow 13: vertical pass first
    return out


def _horizontal(x: torch.Tensor, wx: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) pixels, (B, W, S) weights -> (B, C, H, S) rounded pixels (one bmm for all channels)."""
    b, c, h, w = x.shape
    return _fixed_point_pass(torch.bmm(x.reshape(b, c * h, w), wx)).view(b, c, h, -1)


def _vertical(wy: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, S, H) weights, (B, C, H, W) pixels -> (B, C, S, W) rounded pixels (one bmm for all channels)."""
    b, c, h, w = x.shape
    rows = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, H, C*W)
    return _fixed_point_pass(torch.bmm(wy, rows)).view(b, -1, c, w).permute(0, 2, 1, 3)


class BatchCropFlip:
    """The per-batch half: resample, flip and normalise a collated :class:`CropJob` on ``device``.

    Args:
        crop_size: Output side in pixels.
        mean, std: Per-channel mean and std (of pixels in [0, 1]).
        device: Where the batch is moved and processed (the training device).

    Returns (when called with a collated :class:`CropJob`): float32 (B, C, crop_size, crop_size)
    on ``device``, equal to ``train_transform``'s tensors for the same draws.
    """

    def __init__(self, crop_size: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device | str = "cpu") -> None:
        self.crop_size = int(crop_size)
        self.device = torch.device(device)
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    def __call__(self, job: CropJob) -> torch.Tensor:
        pixels = job.pixels.to(self.device, non_blocking=True)
        box = job.box.to(self.device, non_blocking=True)
        out = resized_crop_uint8(pixels, box, self.crop_size)
        flip = box[:, 4].bool()[:, None, None, None]
        out = torch.where(flip, out.flip(-1), out).to(torch.float32)
        # ToNormalizedTensor's arithmetic in its order: / 255, - mean, / std (the same bits)
        return out.div_(255).sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop_size={self.crop_size}, device={self.device})"
