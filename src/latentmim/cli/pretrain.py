"""``latentmim pretrain``."""

from __future__ import annotations

import sys

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config


def pretrain_command(config_name: str, overrides: list[str]) -> int:
    from latentmim.engine.pretrain import NonFiniteLoss, pretrain

    cfg = compose_config(overrides, config_name)
    if cfg.env.slurm:
        raise ConfigError(
            "config key 'env.slurm': Slurm submission (submitit) is not available yet in this version; "
            "run with env.slurm=False"
        )
    try:
        result = pretrain(cfg)
    except NonFiniteLoss as err:
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 1
    return 0 if result.get("status") != "interrupted" else 3
