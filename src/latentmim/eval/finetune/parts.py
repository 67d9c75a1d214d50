"""The pieces of MAE's fine-tuning recipe, taken from timm and built from plain arguments.

RandAugment + random erasing (``timm.data.create_transform``), Mixup/CutMix with label smoothing
(``timm.data.Mixup``), the matching loss (``SoftTargetCrossEntropy`` /
``LabelSmoothingCrossEntropy``), AdamW with layer-wise lr decay (``timm.optim``), and a
throughput probe for the token-dropping variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from timm.data import Mixup, create_transform
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from torch import nn
from torchvision import transforms as T

from latentmim.data.transforms import ConvertMode
from latentmim.eval.finetune.token_drop_vit import TokenDropViT
from latentmim.runtime.timing import median_seconds


class _AtLeastOneBit:
    """Clamp a posterize level to >= 1 bit.

    timm's ``PosterizeIncreasing`` keeps ``4 - int(level * 0.4)`` bits, i.e. 0 bits when the noisy
    magnitude (``mstd0.5`` around 9) reaches 10; recent Pillow (13 here) raises on 0 bits, which
    would kill a fine-tuning run on roughly one image in a few hundred. One bit keeps the
    augmentation's intent (the strongest posterize) without the crash. A class so it pickles.
    """

    def __init__(self, level_fn: Callable) -> None:
        self.level_fn = level_fn

    def __call__(self, level: float, hparams: dict) -> tuple[int, ...]:
        return tuple(max(1, int(b)) for b in self.level_fn(level, hparams))


def finetune_transform(image_size: int, mean: Sequence[float], std: Sequence[float], aa: str | None,
                       reprob: float, remode: str, recount: int, min_crop: float) -> Callable:
    """MAE's training transform: RandomResizedCrop (bicubic) + flip + RandAugment + erasing.

    Args:
        image_size: output side.
        mean, std: per-channel normalisation (their length sets grayscale or RGB).
        aa: timm auto-augment spec (``rand-m9-mstd0.5-inc1``) or None.
        reprob, remode, recount: random erasing probability, fill mode, count.
        min_crop: smallest crop area fraction.
    """
    tf = create_transform(input_size=image_size, is_training=True, scale=(min_crop, 1.0), color_jitter=None,
                          auto_augment=aa, interpolation="bicubic", re_prob=reprob, re_mode=remode,
                          re_count=recount, mean=tuple(mean), std=tuple(std))
    for step in tf.transforms:
        for op in getattr(step, "ops", []):  # RandAugment's operations
            if op.name.startswith("Posterize") and op.level_fn is not None:
                op.level_fn = _AtLeastOneBit(op.level_fn)
    return T.Compose([ConvertMode("L" if len(mean) == 1 else "RGB"), tf])


def build_mixup(mixup: float, cutmix: float, prob: float, switch_prob: float, smoothing: float,
                num_classes: int) -> Mixup | None:
    """timm's batch Mixup/CutMix (which also smooths the labels), or None when both are off."""
    if (mixup <= 0 and cutmix <= 0) or prob <= 0:
        return None
    return Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=prob, switch_prob=switch_prob,
                 mode="batch", label_smoothing=smoothing, num_classes=num_classes)


def build_criterion(mixup_active: bool, smoothing: float) -> nn.Module:
    """Soft-target CE with Mixup (targets are already smoothed), else (smoothed) CE."""
    if mixup_active:
        return SoftTargetCrossEntropy()
    if smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=smoothing)
    return nn.CrossEntropyLoss()


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, layer_decay: float) -> torch.optim.Optimizer:
    """AdamW (0.9, 0.999) with layer-wise lr decay: group ``lr_scale`` = decay^(depth+1-layer).

    Weight decay skips 1-D parameters and the model's ``no_weight_decay()`` (pos_embed, cls_token).
    """
    return create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=weight_decay,
                               layer_decay=layer_decay if layer_decay < 1.0 else None)


def measure_throughput(model: TokenDropViT, ratios: Sequence[float], batch_size: int,
                       image_shape: tuple[int, int, int], device: torch.device,
                       autocast: Callable[[], object], steps: int = 3) -> dict[str, dict[str, float]]:
    """Images per second of a training step (forward + backward) and of inference per drop ratio.

    The weights are untouched (no optimizer step; gradients cleared afterwards) and random
    draws (drop path) happen on a forked RNG. Reports the median over ``steps`` timed runs
    after one warm-up run.

    Returns:
        ``{"train_img_per_s": {ratio: v}, "infer_img_per_s": {ratio: v}}`` (ratio as a string).
    """
    old_ratio, old_eval, was_training = model.ratio, model.drop_at_eval, model.training
    x = torch.randn(batch_size, *image_shape, device=device)
    out: dict[str, dict[str, float]] = {"train_img_per_s": {}, "infer_img_per_s": {}}

    def timed(fn: Callable[[], None]) -> float:  # images per second
        return batch_size / median_seconds(fn, steps, device)

    def train_step() -> None:
        with autocast():
            loss = model(x).float().logsumexp(dim=1).mean()
        loss.backward()

    def infer() -> None:
        with torch.no_grad(), autocast():
            model(x)

    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for r in ratios:
                model.ratio, model.drop_at_eval = r, True
                model.train()
                out["train_img_per_s"][f"{r:g}"] = round(timed(train_step), 2)
                model.eval()
                out["infer_img_per_s"][f"{r:g}"] = round(timed(infer), 2)
    finally:
        model.zero_grad(set_to_none=True)
        model.ratio, model.drop_at_eval = old_ratio, old_eval
        model.train(was_training)
    return out
