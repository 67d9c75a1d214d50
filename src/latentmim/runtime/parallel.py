"""Data parallelism for the training model: DDP by default, FSDP (``env.fsdp=True``) for big ViTs.

:class:`ParallelModel` keeps the plain module (for EMA updates, the encoder, state dicts) next to
the object that runs the forward pass, and hides the three places where the two engines differ:
skipping gradient synchronisation during accumulation, gathering full state dicts on rank 0,
and making the parameters whole for evaluation outside the training forward.

Checkpoints are always *full* state dicts with the plain module's parameter names, so a run
trained with FSDP loads in a single process, in DDP, in evaluation and in timm, and vice versa.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed.checkpoint.state_dict as dcp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from latentmim.runtime.distributed import DistEnv

_SHARD_BLOCKS = ("Block", "CrossBlock")  # transformer blocks: the FSDP units


def _is_block(module: nn.Module) -> bool:
    return type(module).__name__ in _SHARD_BLOCKS


class ParallelModel:
    """A training model wrapped for ``env.world_size`` processes.

    Args:
        module: the plain model (already on its device).
        env: this process's place in the job.
        device: the training device.
        fsdp: shard parameters, gradients and optimizer state (FSDP2 ``fully_shard``, one unit
            per transformer block plus the root) instead of replicating them (DDP).
        compile: ``torch.compile`` the training call.
        param_dtype: FSDP's compute and communication dtype (bf16 runs: bf16; None = fp32).
    """

    def __init__(self, module: nn.Module, env: DistEnv, device: torch.device, fsdp: bool = False,
                 compile: bool = False, param_dtype: torch.dtype | None = None) -> None:
        self.module = module
        self.env = env
        self.fsdp = fsdp and env.world_size > 1
        self.runner: nn.Module = module
        if self.fsdp:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            # bf16 runs gather parameters and reduce gradients in bf16 (fp32 reduction would move
            # twice the bytes); the sharded master weights and optimizer state stay fp32.
            policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=param_dtype)
            for block in [m for m in module.modules() if _is_block(m)]:
                fully_shard(block, mp_policy=policy)
            fully_shard(module, mp_policy=policy)
        elif env.world_size > 1:
            ids = [device.index if device.index is not None else env.local_rank] if device.type == "cuda" else None
            # No buffer the training reads carries state across steps (ConMIM's projector BatchNorm
            # normalises with batch statistics in training), so nothing needs broadcasting.
            self.runner = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
        # Only the call is compiled: parameters, state dicts and the EMA stay on the plain module,
        # so checkpoints never see torch.compile's ``_orig_mod.`` prefix. dynamic=None lets the
        # compiler mark sizes dynamic after a first recompilation (a last, smaller batch).
        self.step_fn = torch.compile(self.runner) if compile else self.runner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step_fn(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self, skip: bool) -> Iterator[None]:
        """Skip the gradient all-reduce while accumulating micro-batches (``skip=True``)."""
        if not skip or self.env.world_size == 1:
            yield
        elif self.fsdp:
            self.module.set_requires_gradient_sync(False)  # type: ignore[operator]
            try:
                yield
            finally:
                self.module.set_requires_gradient_sync(True)  # type: ignore[operator]
        else:
            with self.runner.no_sync():  # type: ignore[operator]
                yield

    @contextlib.contextmanager
    def whole(self) -> Iterator[None]:
        """Make the root's parameters whole, e.g. for the NN monitor's ``forward_patches``.

        Under FSDP the blocks gather their own shards when called; the root's parameters (patch
        embedding, tokens, final norm) are only gathered in the root's forward, so methods other
        than ``forward`` need this. A no-op otherwise.
        """
        if not self.fsdp:
            yield
            return
        self.module.unshard()  # type: ignore[operator]
        try:
            yield
        finally:
            self.module.reshard()  # type: ignore[operator]

    # ------------------------------------------------------------------ state dicts
    def model_state_dict(self) -> dict[str, torch.Tensor]:
        """The full state dict (a collective under FSDP: call on every rank; rank 0 gets it)."""
        if not self.fsdp:
            return self.module.state_dict()
        return dcp.get_model_state_dict(self.module, options=dcp.StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_model_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a full state dict (every rank passes the same dict)."""
        if not self.fsdp:
            self.module.load_state_dict(state)
            return
        dcp.set_model_state_dict(self.module, state, options=dcp.StateDictOptions(full_state_dict=True))

    def optimizer_state_dict(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Optimizer state: torch's own format (DDP) or keyed by parameter name (FSDP, full)."""
        if not self.fsdp:
            return optimizer.state_dict()
        opts = dcp.StateDictOptions(full_state_dict=True, cpu_offload=True)
        return dcp.get_optimizer_state_dict(self.module, optimizer, options=opts)

    def load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Load either format into either engine."""
        keyed_by_name = any(isinstance(k, str) for k in state.get("state", {})) or any(
            isinstance(p, str) for g in state.get("param_groups", []) for p in g["params"]
        )
        if not keyed_by_name and not self.fsdp:
            optimizer.load_state_dict(state)
            return
        if not keyed_by_name:
            state = _index_to_names(self.module, optimizer, state)
        opts = dcp.StateDictOptions(full_state_dict=True)
        dcp.set_optimizer_state_dict(self.module, optimizer, state, options=opts)


def _index_to_names(module: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> dict[str, Any]:
    """Re-key torch's index-based optimizer state by parameter name.

    Indices count the parameters of ``optimizer.param_groups`` in order; names come from the
    module (FSDP keeps the plain module's names and parameter order).
    """
    name_of = {id(p): n for n, p in module.named_parameters()}
    names = [name_of[id(p)] for g in optimizer.param_groups for p in g["params"]]
    groups = []
    for g in state["param_groups"]:
        groups.append({**g, "params": [names[i] for i in g["params"]]})
    return {"state": {names[i]: s for i, s in state["state"].items()}, "param_groups": groups}
