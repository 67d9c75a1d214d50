"""``latentmim eval finetune``: MAE's end-to-end fine-tuning recipe on timm's ViT.

The encoder becomes a timm ``VisionTransformer`` classifier (global average pooling + fc_norm,
new head), trained with AdamW + layer-wise lr decay, warmup + cosine per iteration, drop path,
Mixup/CutMix + label smoothing, RandAugment + random erasing and optional autocast. The result
is a standard timm checkpoint (``model.safetensors`` + ``timm_model.json``). Optionally, PCAE's
token dropping (``token_drop``) speeds up training; its img/s with and without is reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from timm.data import Mixup
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import FinetuneEvalConfig
from latentmim.data.loader import EpochSampler, SeededDataset
from latentmim.data.seeding import derive_seed, seeded_global_rngs
from latentmim.eval.data import build_eval_splits, make_loader
from latentmim.eval.finetune.parts import (
    build_criterion,
    build_mixup,
    build_optimizer,
    finetune_transform,
    measure_throughput,
)
from latentmim.eval.finetune.timm_classifier import classifier_from_encoder, save_timm_checkpoint
from latentmim.eval.finetune.token_drop_vit import TokenDropViT
from latentmim.eval.report import markdown_table, write_results
from latentmim.eval.session import start_session
from latentmim.eval.train_loop import SupervisedLoop, check_can_start, topk_correct
from latentmim.methods.token_drop import finetune_drop_blocks
from latentmim.training.errors import NonFiniteLoss
from latentmim.training.grad_check import gradient_norm
from latentmim.training.precision import autocast, grad_scaler
from latentmim.training.schedules import effective_lr, lr_at

STEP_STREAM = 0x66745354  # b"ftST": per-step randomness (Mixup draws, drop path)


class FineTuner(SupervisedLoop):
    """The fine-tuning loop; components are built by the caller.

    Args:
        model: the classifier (a :class:`TokenDropViT` around a timm ViT).
        optimizer: with per-group ``lr_scale`` (layer decay).
        criterion: loss on (logits, targets); targets are soft when ``mixup`` is set.
        mixup: timm Mixup/CutMix or None.
        train_base, train_transform: training dataset of (PIL, label) and its random transform.
        val_loader: yields (images, labels, ...) for evaluation.
        batch_size, accum_iter: micro-batch size and micro-batches per optimizer step.
        lr, min_lr, warmup_epochs, epochs: the per-iteration schedule.
        clip_grad: max gradient norm or None.
        precision: fp32 | bf16 | fp16 autocast.
        seed, workers, device, out_dir, eval_freq, resume, progress, ckpt_steps: run settings.
    """

    def __init__(self, model: TokenDropViT, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 mixup: Mixup | None, train_base: Dataset, train_transform: Any, val_loader: DataLoader,
                 batch_size: int, accum_iter: int, lr: float, min_lr: float, warmup_epochs: float,
                 epochs: int, clip_grad: float | None, precision: str, seed: int, workers: int,
                 device: torch.device, out_dir: Path, eval_freq: int = 1, resume: bool = False,
                 progress: bool = False, ckpt_steps: int = 0) -> None:
        super().__init__(out_dir, epochs, eval_freq, resume, progress, "fine-tune", ckpt_steps)
        self.model, self.optimizer, self.criterion, self.mixup = model, optimizer, criterion, mixup
        self.data = SeededDataset(train_base, train_transform, seed=seed)
        self.sampler = EpochSampler(len(self.data), seed=seed, shuffle=True)
        self.loader = DataLoader(self.data, batch_size=batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=workers, pin_memory=device.type == "cuda",
                                 generator=torch.Generator().manual_seed(seed))
        self.val_loader = val_loader
        self.batch_size, self.accum_iter = batch_size, accum_iter
        self.lr, self.min_lr, self.warmup_epochs = lr, min_lr, warmup_epochs
        self.clip_grad, self.precision, self.seed, self.device = clip_grad, precision, seed, device
        self.scaler = grad_scaler(precision, device)
        self._steps = (len(self.data) // batch_size // accum_iter) * accum_iter
        if self._steps == 0:
            raise ConfigError(f"config key 'batch_size': {batch_size} x accum_iter {accum_iter} exceeds "
                              f"the {len(self.data)} training images")

    @property
    def steps_per_epoch(self) -> int:
        return self._steps

    def epoch_batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        self.data.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(start * self.batch_size)
        for b, (imgs, labels, _) in enumerate(self.loader, start=start):
            if b >= self._steps:
                break
            yield imgs, labels

    def train_step(self, batch: tuple[Tensor, Tensor], step: int, epoch_frac: float) -> dict[str, float]:
        imgs, labels = (t.to(self.device, non_blocking=True) for t in batch)
        first_micro = step % self.accum_iter == 0
        lr = lr_at(epoch_frac, self.lr, self.min_lr, self.warmup_epochs, self.epochs)
        if first_micro:
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        self.model.train()
        # Mixup's draws (numpy) and drop path (torch) become a pure function of (seed, step):
        # a resumed run repeats exactly what the uninterrupted one did.
        step_seed = derive_seed(STEP_STREAM, self.seed, step)
        with seeded_global_rngs(step_seed):
            if self.device.type == "cuda":
                torch.cuda.manual_seed(step_seed)
            targets: Tensor = labels
            if self.mixup is not None:
                imgs, targets = self.mixup(imgs, labels)
            with autocast(self.precision, self.device):
                logits = self.model(imgs)
            loss = self.criterion(logits.float(), targets)
            self.scaler.scale(loss / self.accum_iter).backward()
        loss_value = loss.item()
        if not torch.isfinite(loss.detach()):
            raise NonFiniteLoss(f"non-finite fine-tuning loss ({loss_value}) at step {step}; the last "
                                f"checkpoint in {self.out_dir} is intact (try a lower lr or precision=fp32)")
        if (step + 1) % self.accum_iter == 0:
            norm = None  # computed once: clipping returns it
            if self.clip_grad:
                self.scaler.unscale_(self.optimizer)
                norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad))
            if norm is None and not self.scaler.is_enabled():
                norm = gradient_norm(self.model.parameters())
            if norm is not None and not self.scaler.is_enabled() and not math.isfinite(norm):
                raise NonFiniteLoss(f"non-finite fine-tuning gradients (norm {norm}) at step {step}; the step was "
                                    f"not applied and the last checkpoint in {self.out_dir} is intact")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss_value, "lr": lr, "images": imgs.shape[0]}

    def can_checkpoint(self, step: int) -> bool:
        return (step + 1) % self.accum_iter == 0

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        correct: dict[int, int] = {}
        n, loss_sum = 0, 0.0
        for imgs, labels, *_ in self.val_loader:
            imgs, labels = imgs.to(self.device), labels.to(self.device)
            with autocast(self.precision, self.device):
                logits = self.model(imgs).float()
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            for k, c in topk_correct(logits, labels).items():
                correct[k] = correct.get(k, 0) + c
            n += labels.shape[0]
        return {**{f"top{k}": 100.0 * c / n for k, c in correct.items()}, "val_loss": loss_sum / n}

    def state(self) -> dict[str, Any]:
        return {"model": self.model.vit.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.vit.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def run_finetune_eval(cfg: FinetuneEvalConfig, stop_at_step: int | None = None) -> dict[str, Any]:
    """Fine-tune ``cfg.checkpoint``; writes the timm checkpoint, results and curves."""
    session = start_session(cfg, "finetune")
    loaded, device, out = session.loaded, session.device, session.out_dir
    check_can_start(out, cfg.resume)
    splits = build_eval_splits(cfg, loaded)
    if len(splits.train) < cfg.batch_size * cfg.accum_iter:  # type: ignore[arg-type]
        raise ConfigError(f"config key 'batch_size': {cfg.batch_size} x accum_iter {cfg.accum_iter} exceeds the "
                          f"{len(splits.train)} training images")  # type: ignore[arg-type]
    num_classes = splits.info.num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # head initialisation
        vit, arch, kwargs = classifier_from_encoder(loaded.encoder.cpu(), num_classes, cfg.drop_path)
    depth = kwargs["depth"]
    blocks = list(cfg.token_drop_blocks) if cfg.token_drop_blocks is not None else finetune_drop_blocks(depth)
    if max(blocks) >= depth or len(set(blocks)) != len(blocks):
        raise ConfigError(f"config key 'token_drop_blocks': {blocks} must be distinct blocks of this {depth}-block encoder")
    model = TokenDropViT(vit, cfg.token_drop, blocks, cfg.token_drop_eval).to(device)
    lr = effective_lr(cfg.blr, cfg.batch_size, cfg.accum_iter, 1, cfg.lr)
    mixup = build_mixup(cfg.mixup, cfg.cutmix, cfg.mixup_prob, cfg.mixup_switch_prob, cfg.smoothing, num_classes)
    tf = finetune_transform(splits.image_size, splits.mean, splits.std, cfg.aa, cfg.reprob, cfg.remode,
                            cfg.recount, cfg.min_crop)
    val_loader = make_loader(splits.val, splits.eval_transform(), max(cfg.batch_size, 64), cfg.workers,
                             device, seed=cfg.seed)
    tuner = FineTuner(model, build_optimizer(vit, lr, cfg.weight_decay, cfg.layer_decay),
                      build_criterion(mixup is not None, cfg.smoothing), mixup, splits.train, tf, val_loader,
                      cfg.batch_size, cfg.accum_iter, lr, cfg.min_lr, cfg.warmup_epochs, cfg.epochs,
                      cfg.clip_grad, cfg.precision, cfg.seed, cfg.workers, device, out, cfg.eval_freq,
                      cfg.resume, cfg.progress, cfg.ckpt_steps)
    run = tuner.run(stop_at_step)
    if run["status"] != "done":
        return {**run, "output_dir": str(out)}
    save_timm_checkpoint(vit, arch, kwargs, out)
    throughput = {}
    if cfg.throughput_batches > 0:
        ratios = sorted({0.0, cfg.token_drop})
        throughput = measure_throughput(model, ratios, cfg.batch_size, (splits.in_chans, splits.image_size,
                                        splits.image_size), device, lambda: autocast(cfg.precision, device),
                                        cfg.throughput_batches)
    results: dict[str, Any] = {
        "suite": "finetune",
        "checkpoint": cfg.checkpoint,
        "format": loaded.format,
        "dataset": splits.spec.dataset,
        "num_train": len(splits.train),  # type: ignore[arg-type]
        "num_val": len(splits.val),  # type: ignore[arg-type]
        "timm": {"architecture": arch, "kwargs": {k: v for k, v in kwargs.items() if k != "drop_path_rate"}},
        "settings": {"epochs": cfg.epochs, "lr": lr, "batch_size": cfg.batch_size, "accum_iter": cfg.accum_iter,
                     "layer_decay": cfg.layer_decay, "drop_path": cfg.drop_path, "mixup": cfg.mixup,
                     "cutmix": cfg.cutmix, "smoothing": cfg.smoothing, "aa": cfg.aa, "reprob": cfg.reprob,
                     "token_drop": cfg.token_drop, "token_drop_blocks": blocks, "precision": cfg.precision},
        "scores": {k: v for k, v in run["final"].items() if k != "epoch"},
        "evals": run["evals"],
        "train_time_s": run["train_time_s"],
        "train_img_per_s": run["train_img_per_s"],
        "throughput": throughput,
    }
    row = {"token_drop": cfg.token_drop, **results["scores"]}
    for r, v in throughput.get("train_img_per_s", {}).items():
        row[f"train img/s (drop {r})"] = v
    md = (f"# Fine-tuning of `{cfg.checkpoint}` on {splits.spec.dataset}\n\n"
          f"MAE recipe on timm `{arch}` (global avg pool + fc_norm): {cfg.epochs} epochs, lr {lr:.4g}, "
          f"layer decay {cfg.layer_decay}, drop path {cfg.drop_path}, mixup {cfg.mixup} / cutmix {cfg.cutmix}, "
          f"smoothing {cfg.smoothing}, RandAugment `{cfg.aa}`, erasing {cfg.reprob}; "
          f"{results['num_train']} train / {results['num_val']} val images. Accuracy in %; "
          f"`model.safetensors` loads with `timm.create_model` (see `timm_model.json`).\n\n"
          + markdown_table([row], list(row)) + "\n")
    write_results(out, results, md)
    results["output_dir"] = str(out)
    return results
