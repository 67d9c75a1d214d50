"""``latentmim eval fewshot checkpoint=PATH [datasets=a,b shots=1,2,4,8,16 seeds=1,2,3 ...]``.

k-shot transfer with frozen features and logistic regression. Keys: see
:class:`latentmim.config.eval_schema.FewshotEvalConfig` (datasets, transfer_root, shots, seeds,
feature, C, max_iter, val_images (test-set cap), batch_size, output_dir, device, ...).
"""

from __future__ import annotations

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import FewshotEvalConfig


def run(args: list[str]) -> int:
    from latentmim.eval.fewshot.suite import run_fewshot_eval
    from latentmim.eval.report import print_summary

    cfg = parse_eval_config(FewshotEvalConfig, args)
    print_summary(run_fewshot_eval(cfg)["output_dir"])
    return 0
