"""The one module that owns the torch.distributed process group.

Everything else in latentmim is single-process code that asks this module who it is
(:func:`get_rank`, :func:`get_world_size`, :func:`is_main_process`) and, where numbers from all
processes are needed, calls one of its collectives. Three ways to start processes are supported,
all through PyTorch's own machinery:

* ``torchrun`` (single or multi-node): it exports ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
  ``MASTER_ADDR``/``MASTER_PORT``; :func:`init_distributed` reads them (``env://``).
* submitit on Slurm: :func:`export_submitit_env` turns the job's task layout into the same
  variables (``submitit.helpers.TorchDistributedEnvironment``), then as above.
* ``latentmim pretrain env.distributed=True env.ngpu=N`` on one machine:
  :func:`launch_local` starts N processes with torchrun's engine (``elastic_launch``).

Without any of these (``WORLD_SIZE`` unset or 1) nothing is initialised and every collective is
the identity, so tests and notebooks need no process group.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

BACKENDS = ("auto", "nccl", "gloo")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job.

    Attributes:
        rank: global rank in [0, world_size).
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        backend: ``nccl``, ``gloo``, or ``none`` for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def launched_world_size() -> int:
    """``WORLD_SIZE`` exported by torchrun / submitit (1 when not launched)."""
    return _env_int("WORLD_SIZE", 1)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 writes logs, checkpoints and progress bars; the others stay quiet."""
    return get_rank() == 0


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` = NCCL for CUDA devices, gloo for CPU."""
    if backend != "auto":
        return backend
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device, backend: str = "auto", timeout_min: float = 30.0) -> DistEnv:
    """Join the process group described by the environment (``env://``), if any.

    Reuses a group that is already initialised (e.g. by a caller that spawned the processes).
    On CUDA the process is pinned to ``cuda:LOCAL_RANK``.

    Args:
        device: the device type this run trains on (selects NCCL or gloo under ``auto``).
        backend: ``auto`` | ``nccl`` | ``gloo``.
        timeout_min: collective timeout; long enough for a rank-0-only NN monitor pass.

    Returns:
        The process's :class:`DistEnv` (rank 0 of 1 when not launched).
    """
    local_rank = _env_int("LOCAL_RANK", 0)
    if device.type == "cuda" and torch.cuda.is_available() and launched_world_size() > 1:
        torch.cuda.set_device(local_rank)
    if is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    world = launched_world_size()
    if world <= 1:
        return DistEnv()
    name = resolve_backend(backend, device)
    dist.init_process_group(
        backend=name,
        init_method="env://",
        rank=_env_int("RANK", 0),
        world_size=world,
        timeout=datetime.timedelta(minutes=timeout_min),
        device_id=torch.device("cuda", local_rank) if name == "nccl" else None,
    )
    return DistEnv(dist.get_rank(), world, local_rank, name)


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def _comm_device() -> torch.device:
    # NCCL moves CUDA tensors only; gloo moves CPU tensors.
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over all ranks (a new tensor on ``x``'s device; ``x`` itself is untouched)."""
    if not is_initialized():
        return x.clone()
    y = x.detach().to(_comm_device(), copy=True)
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y.to(x.device)


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over all ranks (equal-sized local batches make it the global mean)."""
    return all_reduce_sum(x) / get_world_size()


def mean_over_ranks_tensor(x: Tensor) -> Tensor:
    """``x`` averaged over ranks (itself without a group), on the CPU: one collective, one transfer."""
    return (all_reduce_mean(x) if is_initialized() else x).cpu()


def sum_over_ranks_tensor(x: Tensor) -> Tensor:
    """``x`` summed over ranks (itself without a group), on the CPU."""
    return (all_reduce_sum(x) if is_initialized() else x).cpu()


def mean_over_ranks(values: dict[str, float | Tensor]) -> dict[str, float]:
    """Average scalar metrics over ranks in one collective (plain floats without a group).

    With equal local batch sizes, the mean of per-rank batch means is the global batch mean,
    so logged numbers equal those of a single process with the same global batch.

    Args:
        values: scalar floats or 0-d tensors; every rank passes the same keys.

    Returns:
        ``{key: mean over ranks}`` as Python floats (identical on every rank).
    """
    keys = sorted(values)
    if not is_initialized():
        return {k: float(values[k]) for k in keys}
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    reduced = all_reduce_mean(packed).tolist()
    return dict(zip(keys, reduced, strict=True))


def all_gather_ordered(x: Tensor, total: int) -> Tensor:
    """Reassemble a tensor sharded row-wise by a strided sampler.

    Rank ``r`` holds rows ``r, r + W, r + 2W, ...`` of the full (padded) tensor, which is how
    :class:`latentmim.data.loader.EpochSampler` shards an epoch. Every rank must hold the same
    number of rows (the sampler pads by repeating the head); the padding is cut off.

    Args:
        x: (n_local, ...) this rank's rows.
        total: number of rows of the unpadded full tensor.

    Returns:
        (total, ...) the full tensor in the original order, on ``x``'s device, on every rank.
    """
    world = get_world_size()
    if world == 1:
        return x[:total]
    local = x.detach().to(_comm_device()).contiguous()
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    stacked = torch.stack(parts, dim=1)  # (n_local, W, ...): row j of rank r is global row j*W + r
    return stacked.reshape(-1, *local.shape[1:])[:total].to(x.device)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send a picklable object from ``src`` to every rank (identity without a group)."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def export_submitit_env() -> DistEnv:
    """Inside a submitit job, export RANK/WORLD_SIZE/MASTER_* for ``env://`` initialisation.

    Uses ``submitit.helpers.TorchDistributedEnvironment`` (master = first host of the job,
    port derived from the job id), without narrowing ``CUDA_VISIBLE_DEVICES``: the process
    selects ``cuda:LOCAL_RANK`` itself, as under torchrun.
    """
    import submitit

    env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return DistEnv(env.rank, env.world_size, env.local_rank, "none")


def launch_local(entry: Callable[..., Any], nprocs: int, args: tuple, run_id: str | None = None) -> dict[int, Any]:
    """Run ``entry(*args)`` in ``nprocs`` local processes with torchrun's engine.

    The processes find each other through a c10d rendezvous on a free local port and get the
    usual torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_*``).

    Args:
        entry: a picklable module-level function.
        nprocs: processes to start (one per GPU, or CPU processes with gloo).
        args: its arguments (picklable).
        run_id: rendezvous id (random by default).

    Returns:
        ``{rank: return value}``.

    Raises:
        torch.distributed.elastic.multiprocessing.errors.ChildFailedError: a process failed.
    """
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=run_id or uuid.uuid4().hex[:12],
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    return elastic_launch(config, entry)(*args)
