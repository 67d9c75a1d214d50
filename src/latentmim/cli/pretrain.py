"""``latentmim pretrain``: here, on ``env.ngpu`` local processes, or submitted to Slurm."""

from __future__ import annotations

import sys

from latentmim.config.load import compose_config
from latentmim.config.schema import PretrainConfig


def preflight(cfg: PretrainConfig) -> None:
    """Check what can be checked before starting processes or a job: data paths and W&B.

    Raises:
        DataError: a missing or unusable dataset (named by its path).
        ConfigError: ``log.wandb=True`` without wandb installed.
    """
    from latentmim.data.registry import build_dataset

    for split in ("train", "val"):
        build_dataset(cfg.dataset, split, cfg.data_path, download=cfg.download,
                      synthetic_size=cfg.synthetic.image_size, synthetic_num=1, seed=cfg.env.seed)
    if cfg.log.wandb:
        from latentmim.engine.wandb_mirror import require_wandb

        require_wandb()


def pretrain_command(config_name: str, overrides: list[str]) -> int:
    from latentmim.engine.launch import launch_local_run, needs_local_launch, run_process
    from latentmim.engine.pretrain import NonFiniteLoss

    cfg = compose_config(overrides, config_name)
    if cfg.env.slurm:
        from latentmim.engine.slurm import submit

        preflight(cfg)
        print(submit(cfg).message)
        return 0
    try:
        if needs_local_launch(cfg):
            preflight(cfg)
            result = launch_local_run(cfg)
        else:
            result = run_process(cfg)
    except NonFiniteLoss as err:
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 1
    return 0 if result.get("status") != "interrupted" else 3
