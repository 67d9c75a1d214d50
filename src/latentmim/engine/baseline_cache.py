"""The NN baselines of a run (random-init encoder, raw pixels), cached in its folder.

Each baseline costs a full feature pass over the monitor's images, as much as one NN
evaluation. They are computed once, before the first step, and written to
``<run_dir>/baselines.json`` with the key of everything they depend on; a run restarted in that
folder before its first checkpoint (which also stores them), or started again with the same data
and initialisation, reads them back instead of recomputing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from latentmim.config.schema import PretrainConfig
from latentmim.models.vit import ViTEncoder
from latentmim.probing.nn_monitor import encoder_nn_scores, raw_pixel_nn_scores
from latentmim.runtime.checkpoint import write_text_atomic

FILE_NAME = "baselines.json"


def state_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, bytes), in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def baseline_key(cfg: PretrainConfig, encoder: torch.nn.Module) -> dict[str, Any]:
    """What the baselines depend on: the monitor's images, the protocol, and the initial encoder.

    The raw-pixel floor depends on the data part only; the random-init row also on the encoder's
    initial weights (hashed, so architecture and seed are both covered) and the forward precision.
    """
    return {
        "data": {
            "dataset": cfg.dataset,
            "data_path": cfg.data_path,
            "synthetic": dataclasses.asdict(cfg.synthetic),
            "data_seed": cfg.data_seed,
            "nn_train_images": cfg.nn_train_images,
            "nn_val_images": cfg.nn_val_images,
            "eval_size": cfg.eval_size,
        },
        "knn": {"k": cfg.knn_k, "temperature": cfg.knn_t},
        "precision": cfg.env.precision,
        "encoder_init_sha256": state_digest(encoder),
    }


def load_baselines(run_dir: Path, key: dict[str, Any]) -> dict[str, dict[str, float]] | None:
    """The cached baselines when ``run_dir`` holds them for exactly this key, else None.

    An unreadable or foreign file is ignored (and later replaced): a cache never stops a run.
    """
    path = Path(run_dir) / FILE_NAME
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    rows = stored.get("baselines")
    return rows if isinstance(rows, dict) and {"random_init", "raw_pixels"} <= rows.keys() else None


def save_baselines(run_dir: Path, key: dict[str, Any], baselines: dict[str, dict[str, float]]) -> None:
    """Write ``baselines.json`` atomically (a kill leaves the old file or the new one)."""
    write_text_atomic(Path(run_dir) / FILE_NAME, json.dumps({"key": key, "baselines": baselines}, indent=2) + "\n")


def measure_baselines(encoder: ViTEncoder, monitor_args: tuple, precision: str) -> dict[str, dict[str, float]]:
    """NN of the encoder at initialisation and of raw pixels, before any step.

    Args:
        encoder: the run's encoder before training (not sharded: under FSDP this runs before the
            model is wrapped, since its blocks cannot run before the root's first forward).
        monitor_args: the NN monitor's ``(bank loader, val loader, classes, device, k, T, progress)``.
        precision: autocast of the encoder's forward.
    """
    init = encoder_nn_scores(encoder, *monitor_args, precision=precision)
    return {"random_init": init, "raw_pixels": raw_pixel_nn_scores(*monitor_args)}
