"""Video object segmentation metrics of the DAVIS benchmark: region similarity J and contour
accuracy F, per object and frame.

Definitions (Perazzi et al., CVPR 2016; DAVIS-2017 evaluation protocol):

- **J** is the intersection-over-union of the predicted and ground-truth masks of one object;
  when both are empty the frame scores 1.
- **F** is the F-measure of boundary precision and recall. A mask's boundary is the set of its
  pixels that differ from their right, lower or lower-right neighbour (neighbours outside the
  image are not compared), a one-pixel-thin map. A predicted boundary pixel counts as correct
  when a ground-truth boundary pixel lies within a disk of radius
  ``ceil(bound_th * image diagonal)`` around it (``bound_th = 0.008``, i.e. 8 px at 480p), and
  symmetrically for recall. An empty boundary on both sides gives P = R = 1; an empty prediction
  against a non-empty truth gives P = 1, R = 0; the reverse P = 0, R = 1.
- Void pixels (label 255 in DAVIS annotations), when given, are ignored by both.

Per object the frame scores are averaged ("Mean") and thresholded at 0.5 ("Recall"); the
benchmark averages J and F over all objects of all sequences and reports J&F = (J + F) / 2.
The first frame (given) and the last frame are excluded, as in the DAVIS-2017 evaluation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from latentmim.config.eval_schema import BOUND_TH  # declared with the video options it defaults


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: IoU of two binary masks (1.0 when both are empty).

    Args:
        pred: (H, W) bool predicted mask of one object.
        gt: (H, W) bool ground-truth mask of the same object.
        void: optional (H, W) bool pixels to ignore.
    """
    pred, gt = pred.astype(bool), gt.astype(bool)
    if void is not None:
        keep = ~void.astype(bool)
        pred, gt = pred & keep, gt & keep
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-thin boundary of a binary mask.

    A pixel is a boundary pixel when its value differs from its right, lower or lower-right
    neighbour; neighbours outside the image are not compared, so an object touching the image
    border has no boundary along that border.

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool boundary map.
    """
    m = mask.astype(bool)
    b = np.zeros_like(m)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]  # right neighbour
    b[:-1, :] |= m[:-1, :] != m[1:, :]  # lower neighbour
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]  # lower-right neighbour
    return b


def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) bool disk: offsets (dy, dx) with dy^2 + dx^2 <= r^2."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def boundary_tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Tolerance radius in pixels: ``bound_th`` of the diagonal, rounded up (>= 1 px when
    ``bound_th`` < 1); a ``bound_th`` >= 1 is taken as pixels directly."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(height, width)))


def contour_accuracy(
    pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None, bound_th: float = BOUND_TH
) -> float:
    """F: boundary F-measure with a disk tolerance.

    Args:
        pred: (H, W) bool predicted mask of one object.
        gt: (H, W) bool ground-truth mask.
        void: optional (H, W) bool pixels to ignore (removed from both boundaries).
        bound_th: tolerance as a fraction of the diagonal (or pixels if >= 1).

    Returns:
        F in [0, 1].
    """
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    if void is not None:
        keep = ~void.astype(bool)
        pred_b, gt_b = pred_b & keep, gt_b & keep
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # (P, R) = (1, 0) or (0, 1): F = 0
    structure = disk(boundary_tolerance(*pred.shape, bound_th=bound_th))
    gt_zone = ndimage.binary_dilation(gt_b, structure=structure)
    pred_zone = ndimage.binary_dilation(pred_b, structure=structure)
    precision = np.count_nonzero(pred_b & gt_zone) / n_pred
    recall = np.count_nonzero(gt_b & pred_zone) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def sequence_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    object_ids: list[int],
    void_label: int | None = 255,
    bound_th: float = BOUND_TH,
    skip_first_last: bool = True,
) -> dict[int, dict[str, np.ndarray]]:
    """Frame-wise J and F of every object of one sequence.

    Args:
        pred: (T, H, W) integer label maps (0 = background, k = object k).
        gt: (T, H, W) integer ground truth, same ids (``void_label`` marks ignored pixels).
        object_ids: the objects to score (the ids in the first ground-truth frame).
        void_label: label of ignored pixels in ``gt``, or None.
        bound_th: F tolerance.
        skip_first_last: drop the first (given) and last frame, as DAVIS-2017 does; a sequence
            of 1-2 frames then has nothing left and keeps all its frames instead.

    Returns:
        ``{object_id: {"J": (T',) array, "F": (T',) array}}``.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    frames = range(1, len(gt) - 1) if skip_first_last and len(gt) > 2 else range(len(gt))
    out = {}
    for obj in object_ids:
        js, fs = [], []
        for t in frames:
            void = (gt[t] == void_label) if void_label is not None else None
            js.append(region_similarity(pred[t] == obj, gt[t] == obj, void))
            fs.append(contour_accuracy(pred[t] == obj, gt[t] == obj, void, bound_th))
        out[obj] = {"J": np.asarray(js, dtype=np.float64), "F": np.asarray(fs, dtype=np.float64)}
    return out


def summarize(per_object: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Benchmark summary over objects (keys like ``"seq_1"``): Mean and Recall of J and F,
    and J&F = (J-Mean + F-Mean) / 2. Every object weighs the same, as in DAVIS."""
    if not per_object:
        raise ValueError("no objects to summarize")
    jm = [float(v["J"].mean()) for v in per_object.values()]
    fm = [float(v["F"].mean()) for v in per_object.values()]
    jr = [float((v["J"] > 0.5).mean()) for v in per_object.values()]
    fr = [float((v["F"] > 0.5).mean()) for v in per_object.values()]
    j_mean, f_mean = float(np.mean(jm)), float(np.mean(fm))
    return {
        "J&F": (j_mean + f_mean) / 2,
        "J_mean": j_mean,
        "J_recall": float(np.mean(jr)),
        "F_mean": f_mean,
        "F_recall": float(np.mean(fr)),
    }
