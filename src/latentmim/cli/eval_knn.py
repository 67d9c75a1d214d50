"""``latentmim eval knn checkpoint=PATH [key=value ...]``: LOO 1-NN and weighted k-NN.

Keys: see :class:`latentmim.config.eval_schema.KnnEvalConfig` (k, temperature, feature,
protocol, dataset, data_path, train_images, val_images, batch_size, output_dir, device, ...).
"""

from __future__ import annotations

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import KnnEvalConfig


def run(args: list[str]) -> int:
    from latentmim.eval.knn.suite import run_knn_eval
    from latentmim.eval.report import print_summary

    cfg = parse_eval_config(KnnEvalConfig, args)
    print_summary(run_knn_eval(cfg)["output_dir"])
    return 0
