"""A resumable epoch/step loop for the supervised evaluations (linear probe, fine-tuning).

Like pre-training, everything random is a function of (seed, epoch, index) or (seed, step) and
every schedule a function of the step, so a run killed at any point and restarted with
``resume=True`` continues from its last checkpoint and ends where an uninterrupted run ends.
Checkpoints are written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentmim.config.errors import ConfigError
from latentmim.runtime.checkpoint import load_checkpoint, save_atomic
from latentmim.runtime.logger import MetricsLogger, pyplot
from latentmim.runtime.progress import live_bars

LATEST = "checkpoint_latest.pth"


def check_can_start(out_dir: Path, resume: bool) -> None:
    """Refuse to overwrite a run in ``out_dir`` unless resuming (call before expensive setup)."""
    if (Path(out_dir) / LATEST).exists() and not resume:
        raise ConfigError(
            f"output_dir: '{out_dir}' already holds a run ({LATEST}); pass resume=True to "
            "continue it, or choose another output_dir"
        )


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k logits, for each k (k <= C only).

    Args:
        logits: (N, C).
        labels: (N,) int64.
    """
    ks = tuple(k for k in ks if k <= logits.shape[1])
    ranked = logits.topk(max(ks), dim=1).indices  # (N, max k)
    hits = ranked == labels[:, None]
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}


class SupervisedLoop(ABC):
    """Run ``epochs`` epochs of :meth:`train_step` with checkpoints and periodic evaluation.

    Subclasses supply the batches of an epoch, one optimisation step, the evaluation, and the
    state to checkpoint.

    Args:
        out_dir: where ``checkpoint_latest.pth``, ``metrics.jsonl``, ``eval.jsonl`` and
            ``curves.png`` go.
        epochs: epochs to train.
        eval_freq: epochs between evaluations (the last epoch is always evaluated).
        resume: continue from ``out_dir/checkpoint_latest.pth``; without it an existing
            checkpoint is an error (never overwrite a run silently).
        progress: tqdm bar per epoch.
        desc: bar label.
        ckpt_steps: also checkpoint every N steps inside an epoch (0 = epoch ends only).
    """

    def __init__(self, out_dir: Path, epochs: int, eval_freq: int, resume: bool, progress: bool,
                 desc: str, ckpt_steps: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.epochs = epochs
        self.eval_freq = eval_freq
        self.resume = resume
        self.progress = progress
        self.desc = desc
        self.ckpt_steps = ckpt_steps
        self.epoch = 0
        self.batch = 0
        self.evals: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ to implement
    @property
    @abstractmethod
    def steps_per_epoch(self) -> int: ...

    @abstractmethod
    def epoch_batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of ``epoch`` from batch index ``start`` on (a pure function of both)."""

    @abstractmethod
    def train_step(self, batch: Any, step: int, epoch_frac: float) -> dict[str, float]:
        """One optimisation step; returns scalars to log (``loss``, ``lr``, ...)."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Validation metrics (``top1``, ``top5`` in %)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Model and optimizer tensors to checkpoint."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    def can_checkpoint(self, step: int) -> bool:
        """Whether the state after ``step`` is complete (not mid gradient accumulation)."""
        return True

    def extra_checkpoint(self) -> dict[str, Any]:
        """Plain values stored next to the state (e.g. the configuration)."""
        return {}

    # ------------------------------------------------------------------ the loop
    @property
    def step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.batch

    def save(self) -> None:
        save_atomic({"state": self.state(), "epoch": self.epoch, "batch": self.batch,
                     "evals": self.evals, **self.extra_checkpoint()}, self.out_dir / LATEST)

    def _maybe_resume(self) -> None:
        latest = self.out_dir / LATEST
        check_can_start(self.out_dir, self.resume)
        if not latest.exists():
            return
        ckpt = load_checkpoint(latest)
        try:
            self.load_state(ckpt["state"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(f"checkpoint '{latest}' does not match this run: {str(err).splitlines()[0]}") from None
        self.epoch, self.batch, self.evals = ckpt["epoch"], ckpt["batch"], list(ckpt["evals"])
        print(f"resumed from {latest} at epoch {self.epoch}, batch {self.batch}")

    def run(self, stop_at_step: int | None = None) -> dict[str, Any]:
        """Train to the end (or resume and finish); returns the final evaluation.

        Args:
            stop_at_step: tests only: return right after step ``stop_at_step`` as if killed.

        Returns:
            ``{"status": "done"|"interrupted", "final": {...}, "evals": [...], "train_time_s",
            "train_img_per_s"}``.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._maybe_resume()
        logger = MetricsLogger(self.out_dir, self.step, tensorboard=False)
        start_time, images = time.time(), 0
        while self.epoch < self.epochs:
            bar = tqdm(total=self.steps_per_epoch, initial=self.batch, unit="step", dynamic_ncols=True,
                       desc=f"{self.desc} epoch {self.epoch + 1}/{self.epochs}", disable=not live_bars(self.progress))
            for batch in self.epoch_batches(self.epoch, self.batch):
                step = self.step
                out = self.train_step(batch, step, step / self.steps_per_epoch)
                self.batch += 1
                images += int(out.pop("images", 0))
                logger.log({"step": step + 1, "epoch": (step + 1) / self.steps_per_epoch, **out})
                bar.set_postfix({k: f"{v:.4g}" for k, v in out.items()})
                bar.update(1)
                if stop_at_step is not None and step >= stop_at_step:
                    bar.close()
                    logger.close()
                    return {"status": "interrupted", "epoch": self.epoch, "batch": self.batch}
                if (self.ckpt_steps and (step + 1) % self.ckpt_steps == 0 and self.batch < self.steps_per_epoch
                        and self.can_checkpoint(step)):
                    self.save()
            bar.close()
            self.epoch, self.batch = self.epoch + 1, 0
            if self.epoch % self.eval_freq == 0 or self.epoch == self.epochs:
                scores = {"epoch": self.epoch, **self.evaluate()}
                self.evals.append(scores)
                logger.log({"step": self.step, **scores}, kind="eval")
                print(f"{self.desc} epoch {self.epoch}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in scores.items() if k != "epoch"))
            self.save()
            self._plot(logger)
        elapsed = time.time() - start_time
        logger.close()
        return {"status": "done", "final": self.evals[-1] if self.evals else {}, "evals": self.evals,
                "train_time_s": round(elapsed, 2), "train_img_per_s": round(images / max(elapsed, 1e-9), 2)}

    def _plot(self, logger: MetricsLogger) -> None:
        """``curves.png``: training loss, learning rate, val top-1 per epoch."""
        hist = logger.history
        if not hist:
            return
        plt = pyplot()
        fig, axes = plt.subplots(1, 3, figsize=(9.6, 3))
        for ax, key in zip(axes[:2], ("loss", "lr"), strict=True):
            ax.plot([r["epoch"] for r in hist], [r.get(key, float("nan")) for r in hist], lw=1)
            ax.set_title(key)
            ax.set_xlabel("epoch")
        ax = axes[2]
        for key in ("top1", "top5"):
            pts = [(r["epoch"], r[key]) for r in self.evals if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=key)
        ax.set_title("val accuracy (%)")
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.out_dir / "curves.png", dpi=110)
        plt.close(fig)
