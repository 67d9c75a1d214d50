"""The pre-training loop: resumable at any optimizer step, with the NN monitor.

Everything random is a function of (seed, epoch, index) or (seed, step), and every schedule a
function of the step, so a run killed at any moment and resumed with ``resume=True`` continues
exactly where its last checkpoint was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset
from tqdm import tqdm

from latentmim.config.errors import ConfigError
from latentmim.config.load import to_yaml
from latentmim.config.schema import PretrainConfig
from latentmim.engine.baseline_cache import (
    baseline_key,
    load_baselines,
    measure_baselines,
    save_baselines,
)
from latentmim.engine.collapse import WATCHED, CollapseGuard, likely_cause
from latentmim.engine.data import CUSTOM, PretrainData, build_pretrain_data
from latentmim.engine.resume_check import check_resume
from latentmim.engine.run_folder import (
    LATEST,
    RESULTS,
    check_run_folder,
    nn_table,
    write_run_outputs,
)
from latentmim.engine.step_window import Flushed, StepWindow
from latentmim.engine.stop_signal import StopSignal
from latentmim.interop.init_from import init_weights
from latentmim.methods.factory import build_model, target_momentum
from latentmim.probing.nn_monitor import encoder_nn_scores
from latentmim.runtime.checkpoint import (
    load_checkpoint,
    remove_stale_temps,
    rng_state,
    save_atomic,
    set_rng_state,
    write_text_atomic,
)
from latentmim.runtime.distributed import (
    init_distributed,
    mean_over_ranks_tensor,
    sum_over_ranks_tensor,
)
from latentmim.runtime.global_batch import rank_views, use_global_batch_drop_path
from latentmim.runtime.parallel import ParallelModel
from latentmim.runtime.progress import live_bars, plain_line
from latentmim.runtime.run_lock import RunLock
from latentmim.runtime.run_logger import RunLogger, build_run_logger
from latentmim.runtime.wandb_mirror import require_wandb, wandb_options
from latentmim.training.errors import NonFiniteLoss
from latentmim.training.grad_check import nonfinite_tensors
from latentmim.training.optim import build_adamw, set_lr
from latentmim.training.precision import (
    DTYPES,
    autocast,
    grad_scaler,
    resolve_device,
    resolve_precision,
    use_tf32,
)
from latentmim.training.schedules import effective_lr, lr_at


@dataclass
class Progress:
    """Where the run is: ``epoch`` and micro-batches already done inside it."""

    epoch: int = 0
    batch: int = 0
    skipped_images: int = 0
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    train_time_s: float = 0.0  # training time up to the last checkpoint, over every resume


def _view_generator(seed: int, step: int) -> torch.Generator:
    # One generator per micro-batch, seeded by (seed, step): views never depend on history.
    return torch.Generator().manual_seed((seed * 0x9E3779B1 + step) % (2**63))


class Pretrainer:
    """Owns the model, optimizer and data of one pre-training run.

    Args:
        cfg: a validated configuration.
        dataset: a map-style dataset of images to pre-train on instead of ``cfg.dataset``
            (:func:`pretrain`); the run then records ``dataset: custom``.
    """

    def __init__(self, cfg: PretrainConfig, dataset: Dataset | None = None) -> None:
        if dataset is not None:
            cfg = dataclasses.replace(cfg, dataset=CUSTOM)
        self.cfg = cfg
        self.device = resolve_device(cfg.env.device)
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)  # env.device=cuda:N: kernels, seeds and RNG state on N
        self.precision = resolve_precision(cfg.env.precision, self.device)  # auto: bf16 on GPUs, fp32 on CPU
        use_tf32(self.device, cfg.env.tf32)
        self.dist = init_distributed(self.device, cfg.env.backend)  # rank 0 of 1 unless launched
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())  # cuda:LOCAL_RANK
        self.main = self.dist.is_main  # rank 0 alone logs, prints and writes checkpoints
        if cfg.log.wandb and self.main:
            require_wandb()  # fail before any work when W&B is asked for but missing
        if cfg.env.threads > 0:
            torch.set_num_threads(cfg.env.threads)
        self.run_dir = Path(cfg.run_dir)
        if self.dist.is_main:  # before any measurement; rank 0 alone touches the folder
            check_run_folder(self.run_dir, cfg.resume)
        self.data: PretrainData = build_pretrain_data(cfg, self.device, rank=self.dist.rank,
                                                      world_size=self.dist.world_size, dataset=dataset)
        self.monitor_on = self.data.nn_val is not None
        torch.manual_seed(cfg.env.seed)  # parameter initialisation (identical on every rank)
        self.model = build_model(cfg, self.data.info.in_chans, self.data.info.num_classes).to(self.device)
        if cfg.init_from:  # foreign or own weights; a resumed checkpoint overrides them in run()
            self._say(init_weights(self.model, cfg.init_from))
        use_global_batch_drop_path(self.model, self.dist.rank, self.dist.world_size)
        # The baselines score the initial encoder: before sharding, since under FSDP its blocks
        # cannot run before the root's first forward (and its tensors are shards after).
        self._initial = self._initial_baselines()
        self.parallel = ParallelModel(self.model, self.dist, self.device, cfg.env.fsdp, cfg.env.compile,
                                      DTYPES[self.precision] if self.precision == "bf16" else None)
        self.batches_per_epoch = (len(self.data.loader) // cfg.accum_iter) * cfg.accum_iter
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"config key 'batch_size': {cfg.batch_size} x accum_iter {cfg.accum_iter} exceeds "
                f"the {len(self.data.train)} training images" + (f" shared by {self.dist.world_size} processes"
                                                               if self.dist.world_size > 1 else "")
            )
        # Schedules relative to the run: the EMA start and the warm-up (target_tau_frac, warmup_frac).
        self.total_steps = self.batches_per_epoch * cfg.epochs // cfg.accum_iter
        self.target_mom0 = target_momentum(cfg, self.total_steps)
        self.warmup_epochs = cfg.warmup_epochs if cfg.warmup_frac is None else cfg.warmup_frac * cfg.epochs
        self.base_lr = effective_lr(cfg.blr, cfg.batch_size, cfg.accum_iter, self.dist.world_size, cfg.lr)
        self.optimizer = build_adamw(self.model, self.base_lr, cfg.weight_decay)
        self.scaler = grad_scaler(self.precision, self.device)
        self.progress = Progress()
        self.guard = _collapse_guard(cfg)
        self._segment_start: float | None = None  # when this process started training

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "model": self.parallel.model_state_dict(),
            "optimizer": self.parallel.optimizer_state_dict(self.optimizer),
            "scaler": self.scaler.state_dict(),
            # every rank's RNG streams are identical: rank 0's device stands for all
            "rng": rng_state(self.device),
            "world_size": self.dist.world_size,
            "epoch": p.epoch,
            "batch": p.batch,
            "skipped_images": p.skipped_images,
            "baselines": p.baselines,
            "train_time_s": p.train_time_s + (time.time() - self._segment_start if self._segment_start else 0.0),
            "config": OmegaConf.to_container(OmegaConf.structured(self.cfg)),
        }

    def save(self, name: str = LATEST) -> None:
        self._check_weights()
        # Under FSDP gathering the full state is a collective: every rank takes part, rank 0 writes.
        state = self.state_dict() if self.main or self.parallel.fsdp else None
        if self.main:
            save_atomic(state, self.run_dir / name)

    def load(self, path: Path) -> None:
        # Everything to the CPU first: RNG states must be CPU tensors, and each part is placed by
        # what loads it (a full state is never materialised on every GPU of an FSDP run).
        ckpt = load_checkpoint(path, "cpu")
        if "config" in ckpt:  # the run being resumed must be this run (or the user says which keys changed)
            check_resume(ckpt["config"], self.cfg, self.run_dir, ckpt.get("world_size"), self.dist.world_size)
        try:
            self.parallel.load_model_state_dict(ckpt["model"])
            self.parallel.load_optimizer_state_dict(self.optimizer, ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(f"checkpoint '{path}' does not match this config: {str(err).splitlines()[0]}") from None
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], self.device)
        self.progress = Progress(ckpt["epoch"], ckpt["batch"], ckpt["skipped_images"], ckpt["baselines"],
                                 ckpt.get("train_time_s", 0.0))

    def _check_weights(self) -> None:
        """Refuse to save non-finite weights: a NaN/inf step (bf16 and fp32 have no loss scaler to
        skip one) must never reach a checkpoint. One norm over the parameters, one sync per save."""
        if sum_over_ranks_tensor(nonfinite_tensors(self.model.parameters())).item() > 0:
            raise NonFiniteLoss(
                f"non-finite weights at epoch {self.progress.epoch} batch {self.progress.batch} (a step with "
                f"non-finite gradients); nothing was saved and the last good checkpoint in {self.run_dir} is "
                "intact (try a lower lr, clip_grad or env.precision=fp32)"
            )

    @property
    def global_batch(self) -> int:
        return self.progress.epoch * self.batches_per_epoch + self.progress.batch

    # ---------------------------------------------------------------- evaluation
    def nn_monitor(self) -> dict[str, float]:
        cfg, d = self.cfg, self.data
        args = (d.nn_train, d.nn_val, d.nn_classes, self.device, cfg.knn_k, cfg.knn_t, cfg.log.progress)
        with self.parallel.whole():
            return encoder_nn_scores(self.model.encoder, *args, precision=self.precision, compile=cfg.env.compile)

    def _initial_baselines(self) -> tuple[dict[str, Any], dict[str, dict[str, float]], bool] | None:
        """(cache key, baselines, freshly measured) of a run that starts now, else None."""
        cfg, d = self.cfg, self.data
        if not (cfg.baselines and self.monitor_on) or (cfg.resume and (self.run_dir / LATEST).exists()):
            return None  # off, or a resumed run: its checkpoint holds them
        key = baseline_key(cfg, self.model.encoder)
        cached = load_baselines(self.run_dir, key)
        if cached is not None:
            return key, cached, False
        args = (d.nn_train, d.nn_val, d.nn_classes, self.device, cfg.knn_k, cfg.knn_t, cfg.log.progress)
        return key, measure_baselines(self.model.encoder, args, self.precision), True

    # ---------------------------------------------------------------- training
    def train_step(self, imgs: torch.Tensor, step: int, epoch_frac: float,
                   labels: torch.Tensor | None = None) -> dict[str, torch.Tensor | float]:
        """One micro-batch: schedules, EMA (at the start of an optimizer step), forward, backward.

        Nothing here waits for the device: the loss and metrics come back as device tensors,
        checked and logged in batches by :meth:`_flush`.

        Args:
            imgs: (B, C, S, S) this rank's images (B = batch_size per process).
            step: global micro-batch index.
            epoch_frac: fractional epoch.
            labels: (B,) this rank's labels; only ``method=supervised`` (the ceiling) sees them.

        Returns:
            ``loss`` and the model's metrics (detached 0-d tensors, this rank's), and ``lr``.
        """
        cfg, model, world = self.cfg, self.model, self.dist.world_size
        first_micro = step % cfg.accum_iter == 0
        lr = lr_at(epoch_frac, self.base_lr, self.base_lr * cfg.min_lr_frac, self.warmup_epochs, cfg.epochs)
        progress = epoch_frac / cfg.epochs
        model.set_progress(progress)
        if first_micro:
            set_lr(self.optimizer, lr)
            model.update_target(model.momentum_at(self.target_mom0, progress))
        # Views of the whole global batch, then this rank's rows: DDP sees the single-process views.
        views = model.sample_views(imgs.shape[0] * world, _view_generator(cfg.env.seed, step))
        views = rank_views(views, self.dist.rank, world).to(self.device)
        last_micro = (step + 1) % cfg.accum_iter == 0
        with self.parallel.no_sync(skip=not last_micro):
            with autocast(self.precision, self.device):
                extra = {"labels": labels} if model.uses_labels else {}
                loss, metrics = self.parallel(imgs, views, **extra)
            self.scaler.scale(loss / cfg.accum_iter).backward()
        if last_micro:
            if cfg.clip_grad:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            # A non-finite step is caught before anything is saved (_flush, _check_weights): bf16
            # and fp32 have no scaler to skip it, and checking here would wait on the device.
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.detach(), **metrics, "lr": lr}

    def run(self, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train to ``cfg.epochs``; returns the final results (also in ``results.json``).

        Rank 0 holds the run folder's lock (:class:`RunLock`) throughout: a second run started
        on the same folder fails at once with one line instead of overwriting this one.

        Args:
            stop_at_step: tests only: return right after micro-batch ``stop_at_step`` (as if the
                process were killed there), without writing anything more.
        """
        if not self.main:
            return self._run(stop_at_step)
        with RunLock(self.run_dir):
            for stale in remove_stale_temps(self.run_dir):  # left by a save that a kill interrupted
                self._say(f"removed {stale.name}, a temporary file of an interrupted save")
            return self._run(stop_at_step)

    def _run(self, stop_at_step: int | None) -> dict[str, Any]:
        cfg = self.cfg
        latest = self.run_dir / LATEST
        if self.main:
            check_run_folder(self.run_dir, cfg.resume, locked=True)  # again, now that the lock is held
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.resume and latest.exists():
            self.load(latest)
            finished = self.run_dir / RESULTS
            if self.progress.epoch >= cfg.epochs and finished.is_file():
                self._say(f"{self.run_dir} is a finished run ({cfg.epochs} epochs): nothing to do")
                return json.loads(finished.read_text())
            self._say(f"resumed from {latest} at epoch {self.progress.epoch}, batch {self.progress.batch}")
        if self.main and not (cfg.resume and (self.run_dir / "config.yaml").exists()):
            write_text_atomic(self.run_dir / "config.yaml", to_yaml(cfg))  # the config the run started with
        logger = build_run_logger(self.run_dir, self.global_batch // cfg.accum_iter, cfg.log.tensorboard,
                                  self.main, wandb_options(cfg))
        self._say(self.data.monitor)
        if cfg.baselines and not self.monitor_on:
            self._say("baselines (random init, raw pixels) off: the NN monitor scores them")
        if self._initial is not None and not self.progress.baselines:
            key, self.progress.baselines, fresh = self._initial
            if self.main and fresh:
                save_baselines(self.run_dir, key, self.progress.baselines)
            self._say(nn_table({"random init": self.progress.baselines["random_init"],
                              "raw pixels": self.progress.baselines["raw_pixels"]}))
        self.model.train()
        self._segment_start = time.time()
        with StopSignal() as stop:
            while self.progress.epoch < cfg.epochs:
                result = self._epoch(logger, stop, stop_at_step)
                if result["stopped"]:
                    logger.close()
                    status = "collapsed" if result.get("collapsed") else "interrupted"
                    return {"status": status, "epoch": self.progress.epoch, "batch": self.progress.batch,
                            "signal": stop.signum}
        elapsed = self.progress.train_time_s + (time.time() - self._segment_start)
        images = self.global_batch * self.cfg.batch_size * self.dist.world_size  # every image trained on
        results = self._finish(logger, elapsed, images)
        logger.close()
        return results

    def _say(self, message: str) -> None:
        if self.main:
            print(message, flush=True)  # log files (Slurm, nohup) see it at once

    def _epoch(self, logger: RunLogger, stop: StopSignal, stop_at_step: int | None) -> dict[str, Any]:
        cfg, p, d = self.cfg, self.progress, self.data
        d.train.set_epoch(p.epoch)
        d.sampler.set_epoch(p.epoch)
        d.sampler.set_start(p.batch * cfg.batch_size)
        bar = tqdm(total=self.batches_per_epoch, initial=p.batch, desc=f"epoch {p.epoch + 1}/{cfg.epochs}",
                   disable=not live_bars(cfg.log.progress and self.main), unit="batch", dynamic_ncols=True)
        window = StepWindow(time.time())
        for imgs, labels, ok in d.loader:
            if p.batch >= self.batches_per_epoch:
                break
            step = self.global_batch
            out = self.train_step(imgs.to(self.device, non_blocking=True), step, step / self.batches_per_epoch,
                                  labels.to(self.device, non_blocking=True))
            window.add(step, out, int((~ok).sum()), imgs.shape[0] * self.dist.world_size)
            p.batch += 1
            bar.update(1)
            at_boundary = (step + 1) % cfg.accum_iter == 0
            opt_step = (step + 1) // cfg.accum_iter
            saving = at_boundary and cfg.ckpt_steps and opt_step % cfg.ckpt_steps == 0 and p.batch < self.batches_per_epoch
            printing = at_boundary and (opt_step % cfg.log.print_freq == 0 or p.batch == self.batches_per_epoch)
            # One process can stop at any optimizer step; several agree on it when they flush.
            stop_here = at_boundary and stop.requested and self.dist.world_size == 1
            if printing or saving or stop_here or (stop_at_step is not None and step >= stop_at_step):
                flushed = self._flush(window, logger, bar, stop, log=printing)
                if flushed.collapsed:
                    self.save()
                    bar.close()
                    self._say(f"collapse.stop=True: run stopped, checkpoint saved at epoch {p.epoch}, batch {p.batch}")
                    return {"images": window.images_total, "stopped": True, "collapsed": True}
                stop_here = at_boundary and flushed.stop
            if stop_at_step is not None and step >= stop_at_step:
                bar.close()
                return {"images": window.images_total, "stopped": True}
            if saving:
                self.save()
            if stop_here:
                self.save()
                bar.close()
                self._say(f"stop requested: checkpoint saved at epoch {p.epoch}, batch {p.batch}; resume=True continues")
                return {"images": window.images_total, "stopped": True}
        self._flush(window, logger, bar, stop, log=False)
        bar.close()
        p.epoch, p.batch = p.epoch + 1, 0
        self.save()
        if p.epoch % cfg.save_freq == 0 or p.epoch == cfg.epochs:
            self.save(f"checkpoint_{p.epoch:04d}.pth")
        if self.monitor_on and (p.epoch % cfg.eval_freq == 0 or p.epoch == cfg.epochs):
            scores = self.nn_monitor()
            logger.log({"step": self.global_batch // cfg.accum_iter, "epoch": p.epoch, **scores}, kind="eval")
            self._say(f"epoch {p.epoch}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
            self.model.train()
        if cfg.log.curves:
            logger.plot_curves()
        return {"images": window.images_total, "stopped": False}

    def _flush(self, window: StepWindow, logger: RunLogger, bar: tqdm, stop: StopSignal, log: bool) -> Flushed:
        """Bring the steps since the last flush to the host, in one transfer and one collective.

        Checks that every loss was finite (a non-finite one stops the run before anything is
        saved), adds the skipped images, feeds the collapse guard every optimizer step, agrees
        across processes on a stop request, and with ``log`` logs the last step's record (the
        print interval's step).
        """
        cfg, p = self.cfg, self.progress
        steps, local, skipped = window.take()
        if not steps:
            return Flushed(False, False)
        keys = sorted({k for rec in local for k in rec if k != "lr"})
        rows = torch.stack([torch.stack([torch.as_tensor(rec[k], dtype=torch.float64, device=self.device)
                                         for k in keys]) for rec in local])  # (steps, keys)
        extra = torch.tensor([skipped, float(stop.requested)], dtype=torch.float64, device=self.device)
        values, extra = mean_over_ranks_tensor(rows), sum_over_ranks_tensor(extra).tolist()
        records = [dict(zip(keys, row, strict=True)) for row in values.tolist()]
        p.skipped_images += round(extra[0])
        bad = next((i for i, r in enumerate(records) if not math.isfinite(r["loss"])), None)
        if bad is not None:
            raise NonFiniteLoss(
                f"non-finite loss ({records[bad]['loss']}) at epoch {p.epoch} step {steps[bad]}; the last good "
                f"checkpoint in {self.run_dir} is intact (try a lower lr, clip_grad or env.precision=fp32)"
            )
        collapsed = False
        for step, rec in zip(steps, records, strict=True):
            if (step + 1) % cfg.accum_iter == 0 and self.guard is not None:
                collapsed = self._collapse_check((step + 1) // cfg.accum_iter, rec) or collapsed
        step, rec = steps[-1], {**records[-1], "lr": local[-1]["lr"]}
        if log:
            opt_step = (step + 1) // cfg.accum_iter
            rec = {"step": opt_step, "epoch": step / self.batches_per_epoch + 1 / self.batches_per_epoch, **rec,
                   "skipped_images": p.skipped_images, "img_per_s": window.rate()}
            logger.log(rec)
            sims = {f"s_{k[8:]}": f"{rec[k]:.2f}" for k in ("avg_sim_pred", "avg_sim_vis", "avg_sim_trg") if k in rec}
            bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{rec['lr']:.2e}", **sims, img_s=f"{rec['img_per_s']:.1f}")
            if cfg.log.progress and self.main and bar.disable:  # a log file, not a terminal: plain lines
                left = (cfg.epochs - p.epoch) * self.batches_per_epoch - p.batch  # micro-batches to go
                eta = left * cfg.batch_size * self.dist.world_size / max(rec["img_per_s"], 1e-9)
                print(plain_line(p.epoch + 1, cfg.epochs, p.batch, self.batches_per_epoch, rec, eta), flush=True)
        return Flushed(collapsed, extra[1] > 0)

    def _collapse_check(self, opt_step: int, metrics: dict[str, Any]) -> bool:
        """Feed the collapse guard; warn loudly (stderr + ``collapse.jsonl``). True = stop now."""
        events = self.guard.update(opt_step, metrics) if self.guard is not None else []
        for event in events if self.main else []:
            tqdm.write(f"\n{'!' * 100}\n{event.message}\n{'!' * 100}", file=sys.stderr)
            with (self.run_dir / "collapse.jsonl").open("a") as f:
                f.write(json.dumps(event.as_record()) + "\n")
        return bool(events) and self.cfg.collapse.stop

    def _finish(self, logger: RunLogger, elapsed: float, images: int) -> dict[str, Any]:
        final = logger.evals[-1] if logger.evals else {}
        trained = {k: v for k, v in final.items() if k.startswith(("nn_", "knn")) or k == "dropped_images"}
        results: dict[str, Any] = {
            "dataset": self.cfg.dataset,
            "epochs": self.cfg.epochs,
            "trained": trained,
            **{k: v for k, v in self.progress.baselines.items()},
            "train_time_s": round(elapsed, 1),
            "img_per_s": round(images / max(elapsed, 1e-9), 2),
            "skipped_images": self.progress.skipped_images,
        }
        full = self.parallel.model_state_dict() if self.main or self.parallel.fsdp else {}
        if not self.main:
            return results
        encoder = {k[len("encoder."):]: v.contiguous() for k, v in full.items() if k.startswith("encoder.")}
        write_run_outputs(self.run_dir, results, encoder, self.progress.baselines)
        return results


def _collapse_guard(cfg: PretrainConfig) -> CollapseGuard | None:
    """The collapse guard of a run, with the likely cause of each collapse named up front."""
    if not cfg.collapse.enabled:
        return None
    causes = {k: likely_cause(cfg.method, cfg.target_mode, cfg.loss, cfg.avg_sim_coeff, k) for k in WATCHED}
    return CollapseGuard(cfg.collapse.threshold, cfg.collapse.patience, causes)


def pretrain(cfg: PretrainConfig, dataset: Dataset | None = None, stop_at_step: int | None = None) -> dict[str, Any]:
    """Run (or resume) pre-training for ``cfg``; the run folder is ``cfg.run_dir``.

    Args:
        cfg: a validated configuration (:func:`latentmim.compose_config`).
        dataset: your own images instead of ``cfg.dataset``: any map-style ``Dataset`` whose
            items are images (PIL, (C, H, W) tensors in [0, 1] or uint8, (H, W, C) uint8 arrays)
            or tuples that start with one. They are cropped, flipped and normalised like every
            dataset (ImageNet's mean and std). The NN monitor then needs ``nn_dataset``.
        stop_at_step: tests only: return right after micro-batch ``stop_at_step`` (as if the
            process were killed there), without writing anything more.

    Returns:
        The final results (also written to ``results.json``), or the status of a stopped run.
    """
    return Pretrainer(cfg, dataset).run(stop_at_step)
