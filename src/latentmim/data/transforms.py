"""Standard pre-training and evaluation image transforms (torchvision v1 API).

The v1 transforms draw their randomness from torch's global RNG, which is what
:class:`~latentmim.data.loader.SeededDataset` seeds per sample. The last two steps,
``ToTensor`` and ``Normalize``, are fused into :class:`ToNormalizedTensor`: the same
arithmetic in the same order (so the same bits), without torchvision's per-call checks,
which cost as much as the crop itself on a 40-px image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from latentmim.data.errors import DataError

# Eval images are resized so that the centre crop keeps 87.5% of the short side
# (224 / 256), the usual ImageNet protocol.
EVAL_CROP_FRACTION = 0.875


class ConvertMode:
    """Convert a PIL image to a fixed mode ('L' or 'RGB'); a no-op if already there.

    A class rather than a lambda so composed transforms pickle into DataLoader workers.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.mode == self.mode else img.convert(self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r})"


def to_uint8_chw(image: Image.Image, mode: str) -> torch.Tensor:
    """A PIL image as a (C, H, W) uint8 tensor in ``mode`` ('L' or 'RGB'), converted as the PIL path does."""
    image = image if image.mode == mode else image.convert(mode)
    # tobytes is a plain copy of PIL's buffer: 2x faster than numpy's array interface here
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(image.height, image.width, len(image.getbands())).permute(2, 0, 1)


class ToNormalizedTensor:
    """PIL image ('L' or 'RGB', uint8) -> normalised float tensor (C, H, W).

    Bit-for-bit ``T.Normalize(mean, std)(T.ToTensor()(img))``: permute the uint8 pixels to
    (C, H, W), convert to float32, divide by 255, subtract the mean, divide by the std.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if any(s == 0 for s in std):
            raise DataError(f"std must be non-zero, got {list(std)}")
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        if img.mode not in ("L", "RGB"):
            raise DataError(f"expected an 'L' or 'RGB' image, got mode {img.mode!r}")
        pixels = to_uint8_chw(img, img.mode)
        if pixels.shape[0] != self.mean.shape[0]:
            raise DataError(f"image has {pixels.shape[0]} channels, mean/std {self.mean.shape[0]}")
        x = pixels.to(torch.float32, memory_format=torch.contiguous_format)  # (C, H, W), as ToTensor lays it out
        return x.div_(255).sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class TorchRngCompose(T.Compose):
    """A ``T.Compose`` whose steps draw only from torch's global RNG (never ``random``/numpy).

    :class:`~latentmim.data.loader.SeededDataset` then seeds torch's RNG alone around it.
    """

    torch_rng_only = True


def pil_mode(in_chans: int, mean: Sequence[float], std: Sequence[float]) -> str:
    """The PIL mode ('L' or 'RGB') of ``in_chans`` channels, after checking mean/std match it."""
    if in_chans not in (1, 3):
        raise DataError(f"in_chans must be 1 or 3, got {in_chans}")
    if len(mean) != in_chans or len(std) != in_chans:
        raise DataError(f"mean/std have {len(mean)}/{len(std)} entries but in_chans={in_chans}")
    return "L" if in_chans == 1 else "RGB"


def check_crop(crop_size: int, min_crop: float) -> None:
    """Raise :class:`DataError` unless ``crop_size >= 1`` and ``0 < min_crop <= 1``."""
    if crop_size < 1:
        raise DataError(f"crop_size must be >= 1, got {crop_size}")
    if not 0.0 < min_crop <= 1.0:
        raise DataError(f"min_crop must be in (0, 1], got {min_crop}")


def train_transform(
    crop_size: int,
    min_crop: float,
    mean: Sequence[float],
    std: Sequence[float],
    in_chans: int = 3,
) -> T.Compose:
    """Random resized crop + horizontal flip, then normalise.

    Args:
        crop_size: Output side in pixels.
        min_crop: Smallest crop area as a fraction of the image, in (0, 1].
        mean: Per-channel mean, length ``in_chans``.
        std: Per-channel std, length ``in_chans``.
        in_chans: 1 (grayscale stays 1-channel) or 3 (RGB).

    Returns:
        Transform mapping a PIL image to a float tensor (in_chans, crop_size, crop_size).
    """
    mode = pil_mode(in_chans, mean, std)
    check_crop(crop_size, min_crop)
    return TorchRngCompose(
        [
            ConvertMode(mode),
            T.RandomResizedCrop(
                crop_size, scale=(min_crop, 1.0), interpolation=InterpolationMode.BICUBIC
            ),
            T.RandomHorizontalFlip(),
            ToNormalizedTensor(mean, std),
        ]
    )


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """Resize the short side to ``int(size / 0.875)``, centre-crop ``size``, normalise.

    The channel count (1 or 3) is taken from ``len(mean)``.

    Args:
        size: Output side in pixels.
        mean: Per-channel mean.
        std: Per-channel std.

    Returns:
        Transform mapping a PIL image to a float tensor (len(mean), size, size).
    """
    mode = pil_mode(len(mean), mean, std)
    if size < 1:
        raise DataError(f"eval size must be >= 1, got {size}")
    return TorchRngCompose(
        [
            ConvertMode(mode),
            T.Resize(int(size / EVAL_CROP_FRACTION), interpolation=InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            ToNormalizedTensor(mean, std),
        ]
    )
