"""``latentmim eval video checkpoint=PATH [davis_root=PATH] [key=value ...]``.

Semi-supervised video object segmentation by label propagation, scored with J&F as on
DAVIS-2017; see :mod:`latentmim.eval.dense.video`. Keys: the common evaluation keys (``output_dir``,
``device``, ``seed`` ...) and the fields of :class:`~latentmim.eval.video.VideoOptions`.
Without ``davis_root`` procedural videos are generated (``dataset=synthetic_video``). Examples::

    latentmim eval video checkpoint=ckpt.pth davis_root=/data/DAVIS output_dir=out/davis
    latentmim eval video checkpoint=ckpt.pth dataset=synthetic_video num_videos=8
"""

from __future__ import annotations

from pathlib import Path

from latentmim.config.eval_load import parse_eval_config
from latentmim.eval.dense.video import VideoEvalConfig, run_video_eval, validate_video


def run(args: list[str]) -> int:
    cfg = parse_eval_config(VideoEvalConfig, args)
    validate_video(cfg)
    results = run_video_eval(cfg)
    out = Path(results["output_dir"])
    print((out / "results.md").read_text().rstrip())
    print(f"masks, figures and results.json in {out}")
    return 0
