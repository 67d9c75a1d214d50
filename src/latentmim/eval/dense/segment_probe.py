"""Linear segmentation probe on frozen patch tokens (a supervised complement to the clustering).

The clustering protocol of :mod:`latentmim.eval.dense.segment` asks whether an image's patch
tokens *group* by region; on flat-colour shapes colour alone already groups them. This probe asks
what each token *knows* about the pixels it covers: a logistic regression is fitted on the patch
tokens of training images, each labelled with the majority ground-truth class of its patch, and
predicts the patches of the validation images; the patch predictions are upsampled to pixels
(nearest patch, as the clustering maps) and scored by mIoU against the pixel masks. Two tasks:

- ``semantic``: background and the object classes (``synthetic``: 1 + 10 shapes);
- ``foreground``: object against background (two classes).

mIoU is computed over the whole validation set (one confusion matrix, as semantic-segmentation
benchmarks do) and averaged over the classes that occur in the ground truth or the prediction.
The features are standardised with the training tokens' mean and std before the fit. Patch-level
predictions cap the score below 100: on a coarse grid (4 x 4 patches at the demo's 32 px) even the
true majority class of every patch misses the small objects' pixels.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from latentmim.eval.dense.features import FeatureFn, image_to_tensor
from latentmim.eval.dense.segment_cluster import upsample_labels

PROBE_TASKS = ("semantic", "foreground")


def patch_majority_labels(mask: np.ndarray, patch: int) -> np.ndarray:
    """Majority class of each patch of a pixel mask (ties -> the lowest class id).

    Args:
        mask: (H, W) non-negative integer class ids, H and W multiples of ``patch``.
        patch: patch side P.

    Returns:
        (H/P, W/P) int64 labels.
    """
    h, w = mask.shape[0] // patch, mask.shape[1] // patch
    cells = mask[: h * patch, : w * patch].reshape(h, patch, w, patch).transpose(0, 2, 1, 3)
    cells = cells.reshape(h * w, patch * patch).astype(np.int64)
    counts = np.zeros((h * w, int(cells.max()) + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(h * w), patch * patch), cells.ravel()), 1)
    return counts.argmax(axis=1).reshape(h, w)  # argmax takes the first maximum: the lowest id


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) pixel counts, rows = ground truth, columns = prediction."""
    idx = gt.ravel().astype(np.int64) * num_classes + pred.ravel().astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou_from_confusion(conf: np.ndarray) -> float:
    """Mean IoU over the classes present in the ground truth or the prediction."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


def _tokens(fn: FeatureFn, images: list[np.ndarray], mean: tuple[float, ...], std: tuple[float, ...],
            device: torch.device | str) -> np.ndarray:  # fmt: skip
    """(N, h, w, D) float32 features of N images of one size."""
    with torch.no_grad():
        return np.stack([fn(image_to_tensor(im, mean, std).to(device)).float().cpu().numpy() for im in images])


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray) -> np.ndarray:
    """Standardise, fit a multinomial logistic regression, predict (N_val,) labels."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    if np.unique(y_train).size == 1:  # nothing to separate: predict the only class
        return np.full(len(x_val), y_train[0], dtype=np.int64)
    clf = LogisticRegression(C=1.0, max_iter=1000)
    with warnings.catch_warnings():
        # A few hundred lbfgs steps reach the optimum's accuracy; a late stop is not an error.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit((x_train - mu) / sd, y_train)
    return clf.predict((x_val - mu) / sd).astype(np.int64)


def linear_probe_segmentation(
    feature_fns: dict[str, FeatureFn],
    train: list[tuple[np.ndarray, np.ndarray]],
    val: list[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    patch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """Fit and score the probe for every feature source.

    Args:
        feature_fns: ``{name: (1, C, H, W) -> (h, w, D)}``.
        train, val: ``(image (H, W[, C]) uint8, class mask (H, W) int)`` pairs, all of one size
            that is a multiple of ``patch_size``; class 0 is the background.
        num_classes: number of classes of the masks (background included).
        patch_size: P.
        mean, std: normalisation of the images.

    Returns:
        ``{source: {"semantic": mIoU, "foreground": mIoU}}`` (fractions in [0, 1]).
    """
    y_train = np.stack([patch_majority_labels(m, patch_size) for _, m in train]).ravel()
    gt_val = np.stack([m for _, m in val]).astype(np.int64)  # (N, H, W)
    out: dict[str, dict[str, float]] = {}
    for source, fn in feature_fns.items():
        f_train = _tokens(fn, [im for im, _ in train], mean, std, device)  # (N, h, w, D)
        f_val = _tokens(fn, [im for im, _ in val], mean, std, device)
        n, h, w, dim = f_val.shape
        scores = {}
        for task in PROBE_TASKS:
            binary = task == "foreground"
            labels = (y_train > 0).astype(np.int64) if binary else y_train
            pred = _fit_predict(f_train.reshape(-1, dim), labels, f_val.reshape(-1, dim)).reshape(n, h, w)
            pixels = np.stack([upsample_labels(p, *gt_val.shape[1:]) for p in pred])
            truth = (gt_val > 0).astype(np.int64) if binary else gt_val
            scores[task] = miou_from_confusion(confusion(pixels, truth, 2 if binary else num_classes))
        out[source] = scores
    return out
