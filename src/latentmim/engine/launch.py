"""Start the processes of one pre-training run: here, on local GPUs/CPUs, or (see slurm.py) on Slurm.

Every process runs :func:`run_process`: join the process group the launcher described, train,
leave. A user mistake found inside a process (a :class:`ConfigError`, :class:`DataError` or
:class:`NonFiniteLoss`) travels back to the launching process as a value and is raised there, so
the command line still prints one line and exits 2 (or 1 for a non-finite loss).
"""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path
from typing import Any

import torch

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.data.errors import DataError
from latentmim.engine.pretrain import pretrain
from latentmim.runtime.distributed import cleanup, launch_local, launched_world_size
from latentmim.training.errors import NonFiniteLoss

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
    except Exception as err:  # a crash: its traceback goes to a file in the run folder, not the terminal
        rank = os.environ.get("RANK", "?")
        log = Path(cfg.run_dir) / f"rank{rank}_error.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            where = f"traceback in {log}"
        except OSError:
            where = "no traceback file: the run folder is not writable"
        return {"error": "ConfigError", "message": f"process {rank} of the local launch failed: "
                f"{type(err).__name__}: {err} ({where})"}


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
        ConfigError, DataError, NonFiniteLoss: as raised by rank 0 (or the first failing rank);
            a process that crashed or died is a one-line ConfigError naming it (traceback in
            ``<run_dir>/rank<R>_error.log`` for a crash).
    """
    check_local_layout(cfg)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchelastic logs a dead process as a multi-line error with a traceback of its own
    # machinery; the one line below says what happened, so its loggers stay quiet meanwhile.
    elastic_log = logging.getLogger("torch.distributed.elastic")
    level = elastic_log.level
    elastic_log.setLevel(logging.CRITICAL)
    try:
        outcomes = launch_local(_child, cfg.env.ngpu, (cfg,))
    except ChildFailedError as err:  # a process died without returning (killed, out of memory, ...)
        rank, failure = err.get_first_failure()
        how = (f"killed by signal {-failure.exitcode} ({failure.signal_name()})" if failure.exitcode < 0
               else f"exit code {failure.exitcode}")
        raise ConfigError(f"env.ngpu: process {rank} of {cfg.env.ngpu} (pid {failure.pid}) died: {how}; the other "
                          f"processes were stopped; the last checkpoint in {cfg.run_dir} is intact "
                          "(resume=True continues)") from None
    finally:
        elastic_log.setLevel(level)
    for rank in sorted(outcomes):
        out = outcomes[rank]
        if "error" in out:
            raise _ERRORS[out["error"]](out["message"])
    return outcomes[0]["result"]
