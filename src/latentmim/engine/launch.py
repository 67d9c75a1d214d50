"""Start the processes of one pre-training run: here, on local GPUs/CPUs, or (see slurm.py) on Slurm.

Every process runs :func:`run_process`: join the process group the launcher described, train,
leave. A user mistake found inside a process (a :class:`ConfigError`, :class:`DataError` or
:class:`NonFiniteLoss`) travels back to the launching process as a value and is raised there, so
the command line still prints one line and exits 2 (or 1 for a non-finite loss).
"""

from __future__ import annotations

from typing import Any

import torch

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.data.errors import DataError
from latentmim.engine.distributed import cleanup, launch_local, launched_world_size
from latentmim.engine.pretrain import NonFiniteLoss, pretrain

_ERRORS: dict[str, type[Exception]] = {"ConfigError": ConfigError, "DataError": DataError,
                                       "NonFiniteLoss": NonFiniteLoss}


def run_process(cfg: PretrainConfig) -> dict[str, Any]:
    """One process of a run (rank and world size come from the environment): train, then leave."""
    try:
        return pretrain(cfg)
    finally:
        cleanup()


def _child(cfg: PretrainConfig) -> dict[str, Any]:
    # Runs in each spawned process: errors come back as values (tracebacks stay out of the CLI).
    try:
        return {"result": run_process(cfg)}
    except tuple(_ERRORS.values()) as err:
        return {"error": type(err).__name__, "message": str(err)}


def needs_local_launch(cfg: PretrainConfig) -> bool:
    """``env.distributed=True env.ngpu>1`` outside torchrun/Slurm: start the processes here."""
    return cfg.env.distributed and cfg.env.ngpu > 1 and not cfg.env.slurm and launched_world_size() == 1


def check_local_layout(cfg: PretrainConfig) -> None:
    """Processes and devices must match before anything starts. Raises :class:`ConfigError`."""
    if cfg.env.world_size > 1:
        raise ConfigError(
            f"config key 'env.world_size': {cfg.env.world_size} nodes need a multi-node launcher: "
            "env.slurm=True, or torchrun --nnodes N --nproc_per_node G -m latentmim.cli.main pretrain ..."
        )
    n, device = cfg.env.ngpu, cfg.env.device
    if device == "cpu":
        return  # n gloo processes on CPU
    visible = torch.cuda.device_count()
    if device.startswith("cuda:"):
        raise ConfigError(f"config key 'env.device': {device!r} pins one GPU; env.ngpu={n} processes use cuda:0..{n - 1}")
    if visible < n:
        raise ConfigError(
            f"config key 'env.ngpu': {n} processes need {n} GPUs, {visible} visible "
            "(env.device=cpu runs them as gloo processes on CPU)"
        )


def launch_local_run(cfg: PretrainConfig) -> dict[str, Any]:
    """Train with ``env.ngpu`` local processes (torchrun's engine); rank 0's result.

    Raises:
        ConfigError, DataError, NonFiniteLoss: as raised by rank 0 (or the first failing rank).
    """
    check_local_layout(cfg)
    outcomes = launch_local(_child, cfg.env.ngpu, (cfg,))
    for rank in sorted(outcomes):
        out = outcomes[rank]
        if "error" in out:
            raise _ERRORS[out["error"]](out["message"])
    return outcomes[0]["result"]
