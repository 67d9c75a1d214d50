"""``latentmim eval linear``: MAE's linear-probe protocol on a frozen encoder.

BatchNorm(affine=False) + Linear head, LARS (blr 0.1, lr = blr * batch / 256, wd 0), linear
warmup then cosine per iteration, RandomResizedCrop + flip (``mode=augment``), 90 epochs. The
fast variant ``mode=cached`` trains the same head on features computed once without
augmentation (METHOD.md section 4, "LP").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import LinearEvalConfig
from latentmim.data.transforms import train_transform
from latentmim.eval.data import build_eval_splits, make_loader
from latentmim.eval.linear.feature_sources import AugmentedFeatures, CachedFeatures
from latentmim.eval.linear.head import LinearProbeHead
from latentmim.eval.linear.lars import build_lars
from latentmim.eval.report import markdown_table, write_results
from latentmim.eval.session import start_session
from latentmim.eval.train_loop import SupervisedLoop, check_can_start, topk_correct
from latentmim.interop.load import INIT_PREFIX
from latentmim.probing.features import FeatureSet, encode_images, extract_encoder_features
from latentmim.runtime.checkpoint import save_atomic
from latentmim.training.precision import autocast
from latentmim.training.schedules import effective_lr, lr_at

FeatureSource = CachedFeatures | AugmentedFeatures


class LinearProbe(SupervisedLoop):
    """Train a :class:`LinearProbeHead` with LARS on batches from ``source``.

    Args:
        source: training batches of (features, labels).
        val_x, val_y: (Nv, D) validation features and (Nv,) labels.
        num_classes: C.
        out_dir: checkpoints and logs.
        lr: peak learning rate (after warmup); min_lr: its floor.
        epochs, warmup_epochs: schedule length (fractional epochs allowed for warmup).
        weight_decay, momentum, trust_coefficient: LARS settings.
        seed: head initialisation seed.
        device: where the head trains.
        eval_freq, resume, progress, ckpt_steps: see :class:`SupervisedLoop`.
    """

    def __init__(self, source: FeatureSource, val_x: Tensor, val_y: Tensor, num_classes: int,
                 out_dir: Path, lr: float, epochs: int, warmup_epochs: float = 0.0, min_lr: float = 0.0,
                 weight_decay: float = 0.0, momentum: float = 0.9, trust_coefficient: float = 0.001,
                 seed: int = 0, device: torch.device | str = "cpu", eval_freq: int = 1,
                 resume: bool = False, progress: bool = False, ckpt_steps: int = 0) -> None:
        super().__init__(out_dir, epochs, eval_freq, resume, progress, "linear probe", ckpt_steps)
        self.source = source
        self.device = torch.device(device)
        self.val_x, self.val_y = val_x.to(self.device), val_y.to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = LinearProbeHead(val_x.shape[1], num_classes).to(self.device)
        self.optimizer = build_lars(self.head.parameters(), lr=lr, weight_decay=weight_decay,
                                    momentum=momentum, trust_coefficient=trust_coefficient)
        self.lr, self.min_lr, self.warmup_epochs = lr, min_lr, warmup_epochs

    @property
    def steps_per_epoch(self) -> int:
        return self.source.steps_per_epoch

    def epoch_batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        return self.source.batches(epoch, start)

    def train_step(self, batch: tuple[Tensor, Tensor], step: int, epoch_frac: float) -> dict[str, float]:
        x, y = batch
        lr = lr_at(epoch_frac, self.lr, self.min_lr, self.warmup_epochs, self.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.head.train()
        loss = F.cross_entropy(self.head(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "lr": lr, "images": x.shape[0]}

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """(N, D) features -> (N, C) logits with the head in eval mode (running BN statistics)."""
        self.head.eval()
        return torch.cat([self.head(c) for c in x.split(4096)])

    def evaluate(self) -> dict[str, float]:
        correct = topk_correct(self.predict(self.val_x), self.val_y)
        return {f"top{k}": 100.0 * c / self.val_y.shape[0] for k, c in correct.items()}

    def state(self) -> dict[str, Any]:
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])


def _cached_features(path: Path, key: dict[str, Any],
                     compute: Callable[[], FeatureSet]) -> tuple[Tensor, Tensor, int]:
    """Readable features, labels and the dropped count from ``path`` if computed for the same ``key``,
    else compute and save them."""
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key and "dropped" in saved:
            return saved["x"], saved["y"], int(saved["dropped"])
    fs = compute()
    (x, y), dropped = fs.readable(), fs.dropped
    save_atomic({"key": key, "x": x, "y": y, "dropped": dropped}, path)
    return x, y, dropped


def run_linear_eval(cfg: LinearEvalConfig, stop_at_step: int | None = None) -> dict[str, Any]:
    """Linear-probe ``cfg.checkpoint``; writes results.json / results.md / curves.png."""
    session = start_session(cfg, "linear")
    loaded, device, out = session.loaded, session.device, session.out_dir
    check_can_start(out, cfg.resume)
    enc = loaded.encoder.requires_grad_(False)
    splits = build_eval_splits(cfg, loaded)
    if len(splits.train) < cfg.batch_size:  # type: ignore[arg-type]
        raise ConfigError(f"config key 'batch_size': {cfg.batch_size} exceeds the {len(splits.train)} "  # type: ignore[arg-type]
                          "training images")
    tf = splits.eval_transform()
    # Cached features are reused on resume only if nothing that shapes them changed, including
    # the checkpoint file itself (checkpoint_latest.pth is rewritten as training continues).
    stat = Path(cfg.checkpoint.removeprefix(INIT_PREFIX)).stat()
    key = {"checkpoint": cfg.checkpoint, "file": [stat.st_size, stat.st_mtime_ns], "feature": cfg.feature,
           "data": asdict(splits.spec), "train_images": cfg.train_images, "val_images": cfg.val_images,
           "seed": cfg.seed}

    def features(ds: Dataset, desc: str) -> FeatureSet:
        loader = make_loader(ds, tf, max(cfg.batch_size, 64), cfg.workers, device, seed=cfg.seed)
        return extract_encoder_features(enc, loader, cfg.feature, device, cfg.precision, cfg.progress, desc)

    # Unreadable images are dropped from the evaluated sets (and counted), not scored as duplicates.
    val_x, val_y, dropped_val = _cached_features(out / "features_val.pt", {**key, "split": "val"},
                                                 lambda: features(splits.val, "val features"))
    dropped = {"val": dropped_val}
    if cfg.mode == "cached":
        train_x, train_y, dropped["train"] = _cached_features(out / "features_train.pt", {**key, "split": "train"},
                                                              lambda: features(splits.train, "train features"))
        source: FeatureSource = CachedFeatures(train_x, train_y, cfg.batch_size, cfg.seed, device)
    else:
        aug = train_transform(splits.image_size, cfg.min_crop, splits.mean, splits.std, splits.in_chans)

        def encode(x: Tensor) -> Tensor:
            with autocast(cfg.precision, device):
                return encode_images(enc, x, cfg.feature)

        source = AugmentedFeatures(splits.train, aug, encode, cfg.batch_size, cfg.seed, cfg.workers, device)
    lr = effective_lr(cfg.blr, cfg.batch_size, 1, 1, cfg.lr)
    probe = LinearProbe(source, val_x, val_y, splits.info.num_classes, out, lr, cfg.epochs,
                        cfg.warmup_epochs, cfg.min_lr, cfg.weight_decay, cfg.momentum,
                        cfg.trust_coefficient, cfg.seed, device, cfg.eval_freq, cfg.resume, cfg.progress,
                        cfg.ckpt_steps)
    run = probe.run(stop_at_step)
    if run["status"] != "done":
        return {**run, "output_dir": str(out)}
    best = max((e["top1"] for e in run["evals"]), default=float("nan"))
    results: dict[str, Any] = {
        "suite": "linear",
        "checkpoint": cfg.checkpoint,
        "format": loaded.format,
        "dataset": splits.spec.dataset,
        "mode": cfg.mode,
        "feature": cfg.feature,
        "num_train": len(splits.train),  # type: ignore[arg-type]
        "num_val": int(val_y.shape[0]),
        "dropped_images": dropped,  # unreadable images left out (augment mode: the train loop counts its own)
        "settings": {"epochs": cfg.epochs, "warmup_epochs": cfg.warmup_epochs, "batch_size": cfg.batch_size,
                     "lr": lr, "weight_decay": cfg.weight_decay, "optimizer": "LARS"},
        "scores": {k: v for k, v in run["final"].items() if k != "epoch"},
        "best_top1": best,
        "evals": run["evals"],
        "train_time_s": run["train_time_s"],
    }
    row = {"mode": cfg.mode, "feature": cfg.feature, **results["scores"], "best top1": best}
    md = (f"# Linear probe of `{cfg.checkpoint}` on {splits.spec.dataset}\n\n"
          f"MAE protocol: frozen encoder, BN(affine=False) + Linear, LARS, lr {lr:.4g}, "
          f"{cfg.epochs} epochs ({cfg.warmup_epochs} warmup), mode `{cfg.mode}`; "
          f"{results['num_train']} train / {results['num_val']} val images. Final-epoch accuracy (%).\n\n"
          + markdown_table([row], list(row)) + "\n")
    write_results(out, results, md)
    save_atomic(probe.head.state_dict(), out / "head.pth")
    results["output_dir"] = str(out)
    return results
