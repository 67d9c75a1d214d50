"""Optional Weights & Biases logging next to the JSONL/TensorBoard record (``log.wandb=True``).

wandb is imported only when asked for. The W&B run id is kept in ``<run_dir>/wandb/runid.txt``,
so a resumed or requeued run keeps appending to the same W&B run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.runtime.logger import MetricsLogger

RUN_ID_FILE = "wandb/runid.txt"


def require_wandb() -> Any:
    """Import wandb or fail with one line naming the key that asked for it."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "config key 'log.wandb': wandb is not installed (pip install wandb, or "
            "pip install 'latentmim[wandb]'); or set log.wandb=False"
        ) from None
    return wandb


def wandb_options(cfg: PretrainConfig) -> dict[str, Any] | None:
    """:class:`WandbMirror` arguments from a run's config (None when ``log.wandb`` is off)."""
    log = cfg.log
    if not log.wandb:
        return None
    return {"project": log.wandb_project, "entity": log.wandb_entity, "name": cfg.job_name,
            "config": OmegaConf.to_container(OmegaConf.structured(cfg))}


def run_id(run_dir: str | Path, new_id: str) -> str:
    """The run's W&B id: the stored one, else ``new_id`` (stored for later resumes)."""
    path = Path(run_dir) / RUN_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new_id)
    return new_id


class WandbMirror:
    """A :class:`MetricsLogger` whose records are also sent to W&B.

    Args:
        inner: the run's file logger (the record of truth).
        run_dir: the run's folder (W&B files go to ``run_dir/wandb``).
        project, entity, name: W&B destination (entity None = the user's default).
        config: the run's configuration as a plain dict.
    """

    def __init__(self, inner: MetricsLogger, run_dir: str | Path, project: str, entity: str | None,
                 name: str, config: dict[str, Any]) -> None:
        wandb = require_wandb()
        self.inner = inner
        rid = run_id(run_dir, wandb.util.generate_id())
        self.run = wandb.init(project=project, entity=entity or None, name=name, id=rid, resume="allow",
                              dir=str(Path(run_dir) / "wandb"), config=config)

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.inner.history

    @property
    def evals(self) -> list[dict[str, Any]]:
        return self.inner.evals

    def log(self, record: dict[str, Any], kind: str = "train") -> None:
        self.inner.log(record, kind)
        values = {f"{kind}/{k}": v for k, v in record.items()
                  if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)}
        self.run.log(values, step=int(record["step"]))

    def plot_curves(self) -> Path | None:
        return self.inner.plot_curves()

    def close(self) -> None:
        self.inner.close()
        self.run.finish()
