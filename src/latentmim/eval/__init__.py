"""Evaluation protocols, one room each, with the helpers they share beside them.

* ``knn/``: leave-one-out 1-NN (the paper's NN) and weighted k-NN on frozen features;
* ``linear/``: the linear probe (LARS, augmented or on cached features);
* ``finetune/``: MAE-style fine-tuning on timm's ViT;
* ``fewshot/``: logistic regression on k labelled shots per class;
* ``dense/``: segmentation by clustering patch features, and DAVIS video propagation;
* shared: ``data`` (datasets at the evaluation resolution), ``session``, ``report``,
  ``train_loop``, and ``compare`` (``eval all``).

Feature extraction and the nearest-neighbour math sit one level down, in
:mod:`latentmim.probing.features` and :mod:`latentmim.probing.knn`, because the NN monitor of
pre-training uses them too. :data:`~latentmim.eval.suites.SUITES` lists the suites, each with its
configuration class and its runner (which imports the suite's module, and so its dependencies,
when called)::

    from latentmim.config.eval_load import parse_eval_config
    from latentmim.eval import SUITES

    knn = SUITES["knn"]
    results = knn.run(parse_eval_config(knn.config, ["checkpoint=run/checkpoint_latest.pth", "k=10"]))
"""

from latentmim.eval.suites import SUITES, Suite

__all__ = ["SUITES", "Suite"]
