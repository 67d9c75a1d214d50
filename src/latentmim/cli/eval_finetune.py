"""``latentmim eval finetune checkpoint=PATH [key=value ...]``: MAE fine-tuning on timm's ViT.

Keys: see :class:`latentmim.config.eval_schema.FinetuneEvalConfig` (epochs, blr, layer_decay,
drop_path, mixup, cutmix, smoothing, aa, reprob, token_drop, token_drop_after, precision,
dataset, data_path, train_images, val_images, output_dir, resume, device, ...).
"""

from __future__ import annotations

import sys

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import FinetuneEvalConfig


def run(args: list[str]) -> int:
    from latentmim.eval.finetune.suite import run_finetune_eval
    from latentmim.eval.report import print_summary
    from latentmim.training.errors import NonFiniteLoss

    cfg = parse_eval_config(FinetuneEvalConfig, args)
    try:
        results = run_finetune_eval(cfg)
    except NonFiniteLoss as err:
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 1
    print_summary(results["output_dir"])
    return 0
