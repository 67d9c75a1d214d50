"""``latentmim eval linear checkpoint=PATH [mode=augment|cached] [key=value ...]``: linear probe.

Keys: see :class:`latentmim.config.eval_schema.LinearEvalConfig` (mode, feature, epochs,
warmup_epochs, batch_size, blr, lr, dataset, data_path, train_images, val_images, output_dir,
resume, device, ...).
"""

from __future__ import annotations

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import LinearEvalConfig


def run(args: list[str]) -> int:
    from latentmim.eval.linear.suite import run_linear_eval
    from latentmim.eval.report import print_summary

    cfg = parse_eval_config(LinearEvalConfig, args)
    print_summary(run_linear_eval(cfg)["output_dir"])
    return 0
