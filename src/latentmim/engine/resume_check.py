"""A resumed run must be the run it resumes: compare the stored configuration with the new one.

A changed ``batch_size``, ``accum_iter``, world size or dataset would silently shift the data
offset and the learning rate. Keys that only change how a run is watched or how fast it goes
(:data:`RUNTIME_KEYS`) may differ; any other difference is refused in one line unless the user
names the key in ``resume_allow=[...]``. Accepted changes are appended to
``<run_dir>/config_changes.jsonl``; ``config.yaml`` keeps the configuration the run started with.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig

# Dotted prefixes of keys that never change what a run computes. The process layout (batch_size
# per process, env.ngpu, env.world_size) is compared through the global micro-batch instead.
RUNTIME_KEYS = ("resume", "resume_allow", "env.workers", "env.threads", "env.device", "env.slurm", "env.cluster",
                "env.fsdp", "env.distributed", "env.backend", "env.ngpu", "env.world_size", "batch_size",
                "env.mem_gb", "env.nodelist", "env.exclude", "log.", "eval_freq", "save_freq",
                "ckpt_steps", "nn_train_images", "nn_val_images", "knn_k", "knn_t", "baselines", "collapse.",
                "output_dir", "job_name", "init_from")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def config_differences(saved: dict[str, Any], cfg: PretrainConfig, saved_world: int | None = None,
                       world: int = 1) -> dict[str, tuple[Any, Any]]:
    """Keys (dotted) whose value differs between the checkpoint's config and ``cfg``, runtime keys aside."""
    old, new = _flat(saved), _flat(OmegaConf.to_container(OmegaConf.structured(cfg)))
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and not k.startswith(RUNTIME_KEYS)}
    # The data offset and the lr follow the global micro-batch (per-process batch x processes).
    old_global = int(saved.get("batch_size", cfg.batch_size)) * (saved_world or 1)
    if old_global != cfg.batch_size * world:
        diff["batch_size"] = (f"{saved.get('batch_size')} x {saved_world or 1} processes",
                              f"{cfg.batch_size} x {world} processes")
    return diff


def check_resume(saved: dict[str, Any], cfg: PretrainConfig, run_dir: Path, saved_world: int | None,
                 world: int) -> None:
    """Refuse a resume with changed keys not in ``cfg.resume_allow``; log the allowed ones.

    Raises:
        ConfigError: one line naming every differing key, old -> new.
    """
    diff = config_differences(saved, cfg, saved_world, world)
    refused = {k: v for k, v in sorted(diff.items()) if k not in cfg.resume_allow}
    if refused:
        shown = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(f"resume: the run in '{run_dir}' was started with other settings: {shown}; "
                          f"pass resume_allow=[{','.join(refused)}] to continue it anyway")
    if diff:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "changed": {k: list(v) for k, v in diff.items()}}
        with (run_dir / "config_changes.jsonl").open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")
