"""Which process writes a run's records: rank 0 writes, the other ranks only keep them in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from latentmim.runtime.logger import MetricsLogger


class RunLogger(Protocol):
    """What the training loop needs from a logger."""

    history: list[dict[str, Any]]
    evals: list[dict[str, Any]]

    def log(self, record: dict[str, Any], kind: str = "train") -> None: ...

    def plot_curves(self) -> Path | None: ...

    def close(self) -> None: ...


class MemoryLogger:
    """The logger of ranks other than 0: same records (all-reduced), nothing written."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []

    def log(self, record: dict[str, Any], kind: str = "train") -> None:
        (self.history if kind == "train" else self.evals).append(record)

    def plot_curves(self) -> Path | None:
        return None

    def close(self) -> None:
        pass


def build_run_logger(
    run_dir: str | Path,
    resume_step: int,
    tensorboard: bool,
    main_process: bool,
    wandb: dict[str, Any] | None = None,
) -> RunLogger:
    """The run's logger: JSONL/TensorBoard/PNG on rank 0 (plus W&B if asked), memory elsewhere.

    Args:
        run_dir: the run's folder.
        resume_step: optimizer step the run resumes from (0 for a new run).
        tensorboard: also write TensorBoard events.
        main_process: this is rank 0.
        wandb: keyword arguments of :class:`latentmim.runtime.wandb_mirror.WandbMirror` (project,
            entity, name, config), or None for no W&B.
    """
    if not main_process:
        return MemoryLogger()
    logger = MetricsLogger(run_dir, resume_step, tensorboard)
    if wandb is None:
        return logger
    from latentmim.runtime.wandb_mirror import WandbMirror

    return WandbMirror(logger, run_dir, **wandb)
