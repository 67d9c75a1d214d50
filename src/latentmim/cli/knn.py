"""``latentmim knn checkpoint=PATH [key=value ...]``: the pre-training NN monitor on a checkpoint."""

from __future__ import annotations

import json

import torch

from latentmim.config.errors import ConfigError
from latentmim.engine.data import build_pretrain_data
from latentmim.interop.load import load_pretrained
from latentmim.probing.nn_monitor import encoder_nn_scores
from latentmim.training.precision import resolve_device


def knn_command(args: list[str]) -> int:
    ckpt_args = [a for a in args if a.startswith("checkpoint=")]
    if not ckpt_args:
        raise ConfigError("missing checkpoint=PATH")
    path = ckpt_args[-1].split("=", 1)[1]
    loaded = load_pretrained(path, [a for a in args if not a.startswith("checkpoint=")])
    encoder, cfg = loaded.encoder, loaded.config
    device = resolve_device(cfg.env.device)
    data = build_pretrain_data(cfg, device)
    encoder.to(device)
    with torch.no_grad():
        scores = encoder_nn_scores(encoder, data.nn_train, data.nn_val, data.info.num_classes, device,
                                   cfg.knn_k, cfg.knn_t, cfg.log.progress, precision=cfg.env.precision)
    print(json.dumps({"checkpoint": str(path), "dataset": cfg.dataset, **scores}, indent=2))
    return 0
