"""Evaluation protocols, one room each, with the helpers they share beside them.

* ``knn/``: leave-one-out 1-NN (the paper's NN) and weighted k-NN on frozen features;
* ``linear/``: the linear probe (LARS, augmented or on cached features);
* ``finetune/``: MAE-style fine-tuning on timm's ViT;
* ``fewshot/``: logistic regression on k labelled shots per class;
* ``dense/``: segmentation by clustering patch features, and DAVIS video propagation;
* shared: ``data`` (datasets at the evaluation resolution), ``encoders`` (loading any
  checkpoint), ``session``, ``report``, ``train_loop``, and ``compare`` (``eval all``).

Feature extraction and the nearest-neighbour math sit one level down, in
:mod:`latentmim.probing.features` and :mod:`latentmim.probing.knn`, because the NN monitor of
pre-training uses them too. Each suite's entry point is importable from here::

    from latentmim.eval import run_knn_eval, run_linear_eval
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_ENTRY_POINTS = {
    "run_knn_eval": "latentmim.eval.knn.suite",
    "run_linear_eval": "latentmim.eval.linear.suite",
    "run_finetune_eval": "latentmim.eval.finetune.suite",
    "run_fewshot_eval": "latentmim.eval.fewshot.suite",
    "run_segment_eval": "latentmim.eval.dense.segment",
    "run_video_eval": "latentmim.eval.dense.video",
    "run_all_eval": "latentmim.eval.compare",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    # Imported on first use: each suite pulls in its own dependencies (timm, scikit-learn, ...).
    if name in _ENTRY_POINTS:
        return getattr(import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module 'latentmim.eval' has no attribute {name!r}")
