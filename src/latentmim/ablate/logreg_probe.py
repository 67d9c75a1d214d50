"""A minimal linear probe on cached features: scikit-learn logistic regression.

This is the "fast variant on cached features" of docs/method.md#linear-probe (no augmentation, frozen features
extracted once), used by the ablation tables. It is *not* the MAE linear-probing protocol
(BatchNorm + linear head trained with LARS for 90 epochs on augmented crops); numbers from the
two are not interchangeable, and the tables name the column "LP (logreg)".
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


def logreg_probe_accuracy(
    train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, c: float = 1.0, max_iter: int = 1000
) -> float:
    """Top-1 accuracy (%) of a multinomial logistic regression on standardised features.

    Args:
        train_x: (N, D) train features; train_y: (N,) labels.
        val_x: (M, D) validation features; val_y: (M,) labels.
        c: inverse L2 regularisation strength (scikit-learn's ``C``).
        max_iter: L-BFGS iterations.

    Returns:
        accuracy on the validation set in percent.
    """
    # scikit-learn (the [eval] extra) is imported when a probe is fitted.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardising first makes one C fit encoders whose features have very different scales.
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    clf.fit(train_x.double().numpy(), train_y.numpy())
    pred = clf.predict(val_x.double().numpy())
    return float(100.0 * np.mean(pred == val_y.numpy()))
