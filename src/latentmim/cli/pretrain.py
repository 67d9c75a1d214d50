"""``latentmim pretrain``: here, on ``env.ngpu`` local processes, or submitted to Slurm."""

from __future__ import annotations

import sys
from typing import Any

from latentmim.config.errors import ConfigError
from latentmim.config.extras import require
from latentmim.config.load import compose_config, to_yaml
from latentmim.config.schema import PretrainConfig

# Logging outputs on by default whose package comes with an extra: key -> (import name, extra).
OPTIONAL_OUTPUTS = {"log.tensorboard": ("tensorboard", "tensorboard"), "log.curves": ("matplotlib", "viz")}
TRUE_WORDS = ("true", "yes", "on", "1")


def check_logging(overrides: list[str]) -> None:
    """Fail before training when the command line turns on an output whose package is missing.

    ``log.tensorboard`` and ``log.curves`` are on by default; left at their default, a missing
    package is one notice during the run (:mod:`latentmim.runtime.logger`). Asked for by name
    (``log.tensorboard=true``, or among a sweep's values) it is an error, before anything runs.

    Raises:
        ConfigError: e.g. ``log.tensorboard=true needs TensorBoard: pip install 'latentmim[tensorboard]'``.
    """
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key in OPTIONAL_OUTPUTS and any(v.strip().lower() in TRUE_WORDS for v in value.split(",")):
            module, extra = OPTIONAL_OUTPUTS[key]
            require(module, extra, f"{key}=true")


def preflight(cfg: PretrainConfig) -> None:
    """Check what can be checked before starting processes or a job: data paths and W&B.

    Raises:
        DataError: a missing or unusable dataset (named by its path).
        ConfigError: ``log.wandb=True`` without wandb installed.
    """
    from latentmim.data.registry import build_dataset

    for split in ("train", "val"):
        build_dataset(cfg.dataset, split, cfg.data_path, download=cfg.download,
                      synthetic_size=cfg.synthetic.image_size, synthetic_num=1, seed=cfg.data_seed)
    if cfg.log.wandb:
        from latentmim.runtime.wandb_mirror import require_wandb

        require_wandb()


def train_here(cfg: PretrainConfig) -> dict[str, Any]:
    """Train one validated config on this machine (one process, or ``env.ngpu`` local ones)."""
    from latentmim.engine.launch import launch_local_run, needs_local_launch, run_process

    if needs_local_launch(cfg):
        preflight(cfg)
        return launch_local_run(cfg)
    return run_process(cfg)


def pretrain_command(config_name: str, overrides: list[str], cfg_mode: str | None = None,
                     multirun: bool = False) -> int:
    """``latentmim pretrain``: one run, ``--cfg job`` (print, no training) or ``-m`` (a sweep)."""
    from latentmim.training.errors import NonFiniteLoss

    if not cfg_mode:  # printing the config needs no logging package
        check_logging(overrides)
    if multirun:
        if cfg_mode:
            raise ConfigError("--cfg: print one point's configuration without -m (e.g. with its values)")
        from latentmim.cli.sweep import run_sweep

        if any(o.startswith("env.slurm=") and o.split("=", 1)[1].lower() == "true" for o in overrides):
            raise ConfigError("config key 'env.slurm': -m sweeps run here, one point after another")
        return run_sweep(config_name, overrides, train_here)
    cfg = compose_config(overrides, config_name)
    if cfg_mode:
        print(to_yaml(cfg), end="")
        return 0
    if cfg.env.slurm:
        from latentmim.engine.slurm import submit

        preflight(cfg)
        print(submit(cfg).message)
        return 0
    try:
        result = train_here(cfg)
    except NonFiniteLoss as err:
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 1
    return 0 if result.get("status") != "interrupted" else 3
