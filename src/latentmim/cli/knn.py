"""``latentmim knn checkpoint=PATH [key=value ...]``: NN accuracy of a checkpoint's encoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from latentmim.config.errors import ConfigError
from latentmim.config.load import config_from_checkpoint
from latentmim.engine.checkpoint import load_checkpoint
from latentmim.engine.data import build_pretrain_data
from latentmim.engine.precision import resolve_device
from latentmim.eval.monitor import encoder_nn_scores
from latentmim.methods.factory import encoder_from_config


def knn_command(args: list[str]) -> int:
    ckpt_args = [a for a in args if a.startswith("checkpoint=")]
    if not ckpt_args:
        raise ConfigError("missing checkpoint=PATH")
    path = Path(ckpt_args[-1].split("=", 1)[1])
    overrides = [a for a in args if not a.startswith("checkpoint=")]
    ckpt = load_checkpoint(path)
    if "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"checkpoint '{path}' is not a latentmim pre-training checkpoint")
    cfg = config_from_checkpoint(ckpt["config"], overrides)
    device = resolve_device(cfg.env.device)
    data = build_pretrain_data(cfg, device)
    encoder = encoder_from_config(cfg, data.info.in_chans)
    state = {k[len("encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    encoder.load_state_dict(state)
    encoder.to(device)
    with torch.no_grad():
        scores = encoder_nn_scores(encoder, data.nn_train, data.nn_val, data.info.num_classes, device,
                                   cfg.knn_k, cfg.knn_t, cfg.log.progress)
    print(json.dumps({"checkpoint": str(path), "dataset": cfg.dataset, **scores}, indent=2))
    return 0
