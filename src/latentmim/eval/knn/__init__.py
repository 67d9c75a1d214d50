"""Nearest-neighbour evaluation: ``suite`` runs ``latentmim eval knn``.

The protocols themselves (leave-one-out 1-NN, weighted k-NN) live in
:mod:`latentmim.probing.knn`, shared with the NN monitor; they are re-exported here so that
``from latentmim.eval.knn import weighted_knn_accuracy`` keeps working.
"""

from latentmim.probing.features import extract_features, raw_pixel_features
from latentmim.probing.knn import (
    l2_normalize,
    loo_1nn_accuracy,
    loo_1nn_predict,
    weighted_knn_accuracy,
    weighted_knn_predict,
)

__all__ = [
    "extract_features",
    "l2_normalize",
    "loo_1nn_accuracy",
    "loo_1nn_predict",
    "raw_pixel_features",
    "weighted_knn_accuracy",
    "weighted_knn_predict",
]
