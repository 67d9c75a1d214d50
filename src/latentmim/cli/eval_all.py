"""``latentmim eval all checkpoint=A,B,C [names=a,b,c] [suites=auto|knn,linear,...] [key=value ...]``.

Runs the suites that fit the data on every checkpoint and writes one comparison report
(``results.json``, ``results.md``, ``comparison.png``, ``fewshot.png``). Common keys (dataset,
data_path, train_images, val_images, device, output_dir, ...) apply to every suite; suite keys
are prefixed: ``knn.k=10``, ``linear.epochs=20``, ``fewshot.shots=1,5``, ``finetune.epochs=5``,
``segment.num_images=4``, ``video.davis_root=/data/DAVIS``.
"""

from __future__ import annotations

import sys

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import AllEvalConfig


def run(args: list[str]) -> int:
    from latentmim.eval.compare import run_all_eval, split_suite_args
    from latentmim.eval.report import print_summary

    main, optional = split_suite_args(list(args))
    cfg = parse_eval_config(AllEvalConfig, main)
    results = run_all_eval(cfg, optional)
    print_summary(results["output_dir"])
    if results["failed"]:  # diverged runs: one line, the rest of the report stands
        first, why = next(iter(results["failed"].items()))
        more = f" (and {len(results['failed']) - 1} more)" if len(results["failed"]) > 1 else ""
        print(f"latentmim: error: eval all: {first} failed{more}: {why}; the other results are in "
              f"{results['output_dir']}", file=sys.stderr)
        return 2
    return 0
