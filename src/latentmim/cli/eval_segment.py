"""``latentmim eval segment checkpoint=PATH [key=value ...]``.

Unsupervised segmentation by hierarchical clustering of patch features, with t-SNE figures;
see :mod:`latentmim.eval.dense.segment`. Keys: the common evaluation keys (``output_dir``,
``dataset``, ``device``, ``seed`` ...) and the fields of
:class:`~latentmim.eval.segment.SegmentOptions`. Examples::

    latentmim eval segment checkpoint=outputs/demo/checkpoint_latest.pth num_images=8
    latentmim eval segment checkpoint=ckpt.pth images=a.jpg,b.png clusters=3,4,5 input_size=448
"""

from __future__ import annotations

from pathlib import Path

from latentmim.config.eval_load import parse_eval_config
from latentmim.eval.dense.segment import SegmentEvalConfig, run_segment_eval, validate_segment


def run(args: list[str]) -> int:
    cfg = parse_eval_config(SegmentEvalConfig, args)
    validate_segment(cfg)
    results = run_segment_eval(cfg)
    out = Path(results["output_dir"])
    print((out / "results.md").read_text().rstrip())
    print(f"figures and results.json in {out}")
    return 0
