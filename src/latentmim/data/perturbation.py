"""ConMIM's strong photometric perturbation, on normalised image tensors, per image.

The authors apply, to the momentum branch's full image after the shared crop and flip, a colour
jitter, random greyscale, Gaussian blur and solarisation (their ``DataAugmentationForConMIM``).
Here the same operations run on the batch's tensors on the training device, each image with its
own parameters drawn on the CPU from an explicit generator (:meth:`Perturbation.draw`), so a
step's perturbation is a pure function of (seed, step) like its masks (docs/method.md#conmim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# The strong augmentation of the authors' full image (their DataAugmentationForConMIM, applied
# after the shared flip + random resized crop): ColorJitter(0.4, 0.4, 0.2, 0.1) with p = 0.8,
# RandomGrayscale(p = 0.2), Gaussian blur with p = 0.1 and radius U(0.1, 2.0) px at 16-px patches,
# solarisation (PIL's threshold 128) with p = 0.2.
JITTER_P, GRAY_P, BLUR_P, SOLARIZE_P = 0.8, 0.2, 0.1, 0.2
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.4, 0.4, 0.2, 0.1
BLUR_SIGMA_PER_PATCH = (0.1 / 16, 2.0 / 16)  # blur std as a fraction of the patch side
SOLARIZE_THRESHOLD = 128 / 255
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class Perturbation:
    """Per-image parameters of the strong augmentation, drawn on the CPU (:meth:`draw`).

    Attributes:
        jitter: (B,) bool, colour jitter applied.
        factors: (B, 4) float32 brightness, contrast and saturation factors and the hue shift.
        order: (B, 4) int64 the order of the four jitter operations (a permutation of 0..3, as
            torchvision's ``ColorJitter``: 0 brightness, 1 contrast, 2 saturation, 3 hue).
        gray: (B,) bool, converted to grayscale.
        blur_sigma: (B,) float32 Gaussian blur std in pixels, 0 for no blur.
        solarize: (B,) bool, solarised.
    """

    jitter: Tensor
    factors: Tensor
    order: Tensor
    gray: Tensor
    blur_sigma: Tensor
    solarize: Tensor

    @staticmethod
    def draw(batch_size: int, patch_size: int, generator: torch.Generator) -> Perturbation:
        """The parameters of ``batch_size`` images from one ``(B, 13)`` draw of uniforms."""
        u = torch.rand(batch_size, 13, generator=generator)
        factors = torch.stack([
            1.0 + BRIGHTNESS * (2 * u[:, 1] - 1),
            1.0 + CONTRAST * (2 * u[:, 2] - 1),
            1.0 + SATURATION * (2 * u[:, 3] - 1),
            HUE * (2 * u[:, 4] - 1),
        ], dim=1)
        lo, hi = (s * patch_size for s in BLUR_SIGMA_PER_PATCH)
        blur = u[:, 10] < BLUR_P
        sigma = torch.where(blur, lo + (hi - lo) * u[:, 11], torch.zeros(()))
        return Perturbation(
            jitter=u[:, 0] < JITTER_P,
            factors=factors,
            order=u[:, 5:9].argsort(dim=1),  # a uniformly random permutation per image
            gray=u[:, 9] < GRAY_P,
            blur_sigma=sigma,
            solarize=u[:, 12] < SOLARIZE_P,
        )

    def to(self, device: torch.device | str) -> Perturbation:
        return Perturbation(*(t.to(device, non_blocking=True) for t in self._fields()))

    def rows(self, index: slice) -> Perturbation:
        return Perturbation(*(t[index] for t in self._fields()))

    def _fields(self) -> tuple[Tensor, ...]:
        return (self.jitter, self.factors, self.order, self.gray, self.blur_sigma, self.solarize)


def _per_image(x: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1), to broadcast over an image batch."""
    return x.view(-1, 1, 1, 1)


def grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 1, H, W) luma (torchvision's weights)."""
    r, g, b = x.unbind(dim=1)
    return (_GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``_blend`` for float images: ``(f x + (1 - f) other)`` clamped to [0, 1]."""
    f = _per_image(factor)
    return (f * x + (1.0 - f) * other).clamp(0.0, 1.0)


def colour_blend(x: Tensor, op: Tensor, factor: Tensor) -> Tensor:
    """Brightness (op 0), contrast (op 1) or saturation (op 2), chosen per image.

    All three are torchvision's blend ``f x + (1 - f) other`` with ``other`` black, the image's
    mean luma, or its luma image; on one channel the luma is the image itself and saturation is
    the identity (as torchvision).

    Args:
        x: (B, C, H, W) pixels in [0, 1].
        op: (B,) int64 in {0, 1, 2}.
        factor: (B,) the operation's factor.
    """
    gray = grayscale(x) if x.shape[1] == 3 else x  # (B, 1, H, W)
    other = torch.where(_per_image(op == 0), 0.0,
                        torch.where(_per_image(op == 1), gray.mean(dim=(1, 2, 3), keepdim=True), gray))
    out = _blend(x, other, factor)
    if x.shape[1] != 3:
        out = torch.where(_per_image(op == 2), x, out)
    return out


def rgb_to_hsv(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV with every channel in [0, 1] (torchvision's convention).

    Hue in turns: ``((g - b)/c mod 6, 2 + (b - r)/c, 4 + (r - g)/c) / 6`` when red, green or blue
    is the largest channel, c = max - min; grays get hue 0 and saturation 0.
    """
    r, g, b = x.unbind(dim=1)
    minc, maxc = torch.aminmax(x, dim=1)
    chroma = maxc - minc
    flat = chroma == 0
    s = torch.where(flat, 0.0, chroma / torch.where(maxc == 0, 1.0, maxc))
    c = torch.where(flat, 1.0, chroma)
    h = torch.where(maxc == r, (g - b) / c, torch.where(maxc == g, 2.0 + (b - r) / c, 4.0 + (r - g) / c))
    h = torch.remainder(h / 6.0, 1.0)
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`: channel ``v - v s clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 h) mod 6`` and n = 5, 3, 1 for red, green, blue (the sector table in closed form)."""
    h, s, v = x.unbind(dim=1)
    h6, vs = h * 6.0, v * s
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        channels.append(v - vs * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(channels, dim=1)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue by ``shift`` (B,) in [-0.5, 0.5] turns (identity on one channel)."""
    if x.shape[1] != 3:
        return x
    hsv = rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], dim=1))


def gaussian_blur(x: Tensor, sigma: Tensor, max_sigma: float) -> Tensor:
    """Separable Gaussian blur with a per-image std ``sigma`` (B,), 0 meaning no blur.

    The kernel spans ``+-ceil(3 max_sigma)`` pixels (a fixed size, so no value is read back to
    the host); edges are replicated.
    """
    b, c, h, w = x.shape
    radius = max(1, math.ceil(3.0 * max_sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)  # (K,)
    s = sigma.to(x.dtype).clamp_min(1e-6)[:, None]  # (B, 1)
    kernel = torch.exp(-0.5 * (taps / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, K); sigma -> 0 gives a delta
    kernel = kernel.repeat_interleave(c, dim=0)  # (B*C, K), one kernel per image and channel
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel[:, None, :, None], groups=b * c)  # vertical pass
    y = F.conv2d(y, kernel[:, None, None, :], groups=b * c)  # horizontal pass
    return y.reshape(b, c, h, w)


def perturb(imgs: Tensor, p: Perturbation, mean: Tensor, std: Tensor, max_sigma: float) -> Tensor:
    """Apply the strong augmentation to normalised images.

    The authors apply it to the PIL image before ``ToTensor`` and ``Normalize``; here it runs on
    the pixels ``imgs * std + mean`` in [0, 1] in float (no uint8 rounding between operations)
    and the result is normalised again. Operations an image does not draw leave it unchanged
    bit for bit.

    Args:
        imgs: (B, C, H, W) normalised images.
        p: the batch's parameters, on the images' device.
        mean, std: (1, C, 1, 1) the data's normalisation.
        max_sigma: largest blur std the parameters can hold, in pixels (sets the kernel size).

    Returns:
        (B, C, H, W) normalised perturbed images, in at least fp32.
    """
    dtype = torch.promote_types(imgs.dtype, torch.float32)
    x = imgs.to(dtype) * std.to(dtype) + mean.to(dtype)
    # Colour jitter: four operations in each image's own order (ColorJitter's random order).
    # At step k every jittered image applies its k-th operation: a blend (brightness, contrast,
    # saturation) or the hue rotation; each is computed for the whole batch and kept where drawn.
    factors = p.factors.to(dtype)
    for k in range(4):
        op = p.order[:, k]
        blend_op = op.clamp(max=2)
        blended = colour_blend(x, blend_op, factors.gather(1, blend_op[:, None]).squeeze(1))
        x = torch.where(_per_image(p.jitter & (op < 3)), blended, x)
        if x.shape[1] == 3:
            x = torch.where(_per_image(p.jitter & (op == 3)), adjust_hue(x, factors[:, 3]), x)
    if x.shape[1] == 3:
        x = torch.where(_per_image(p.gray), grayscale(x).expand_as(x), x)
    x = torch.where(_per_image(p.blur_sigma > 0), gaussian_blur(x, p.blur_sigma, max_sigma), x)
    x = torch.where(_per_image(p.solarize) & (x >= SOLARIZE_THRESHOLD), 1.0 - x, x)
    return (x - mean.to(dtype)) / std.to(dtype)
