"""The numerical core of unsupervised segmentation: hierarchical clustering of an image's patch
features, cluster-to-segment matching (mIoU), and the t-SNE embedding of the same features."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import cut_tree, linkage
from scipy.optimize import linear_sum_assignment
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` (N, D) scaled to unit length."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def hierarchical_cuts(features: np.ndarray, ks: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Ward agglomerative clustering of L2-normalised features, cut at several cluster counts.

    All cuts come from one tree, so they are nested: going from k to k+1 clusters splits one
    cluster in two. Labels are made consistent across cuts for plotting: when a cluster splits,
    its larger part keeps the label and the smaller part gets the next free label (k).

    Args:
        features: (N, D) patch features, N >= max(ks).
        ks: cluster counts, each >= 1.

    Returns:
        ``{k: (N,) int64 labels in 0..k-1}`` with exactly k distinct labels.
    """
    n = features.shape[0]
    if not ks or min(ks) < 1 or max(ks) > n:
        raise ValueError(f"cluster counts {ks} must lie in [1, {n}] for {n} patches")
    x = l2_normalise(features.astype(np.float64))
    tree = linkage(x, method="ward")  # Ward on Euclidean distances of unit vectors
    order = sorted(set(ks))
    # cut_tree returns one column per requested count; Ward's merge heights are monotone,
    # so every cut has exactly the requested number of clusters.
    raw = cut_tree(tree, n_clusters=list(range(1, order[-1] + 1)))  # (N, max_k), column c: c+1 clusters
    labels = np.zeros(n, dtype=np.int64)  # the 1-cluster cut
    consistent = {1: labels}
    for k in range(2, order[-1] + 1):
        cut = raw[:, k - 1]
        new = np.empty(n, dtype=np.int64)
        for parent in range(k - 1):
            children = np.unique(cut[labels == parent])
            sizes = [np.count_nonzero((cut == c) & (labels == parent)) for c in children]
            # the split cluster's larger child keeps the parent's label
            for c in children:
                keep = c == children[int(np.argmax(sizes))]
                new[cut == c] = parent if keep else k - 1
        labels = new
        consistent[k] = labels
    return {k: consistent[k] for k in ks}


def upsample_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upsampling of an (h, w) label grid to (height, width) pixels.

    Pixel (y, x) takes the label of the patch whose area contains its centre.
    """
    h, w = labels.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every predicted cluster with every ground-truth segment.

    Args:
        pred: (H, W) or (N,) integer labels.
        gt: same shape, integer segment ids.

    Returns:
        (IoU matrix (num_pred, num_gt), predicted ids, ground-truth ids).
    """
    p_ids, p = np.unique(pred.ravel(), return_inverse=True)
    g_ids, g = np.unique(gt.ravel(), return_inverse=True)
    inter = np.zeros((len(p_ids), len(g_ids)), dtype=np.float64)
    np.add.at(inter, (p, g), 1.0)  # contingency table
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    return inter / union, p_ids, g_ids


def hungarian_miou(pred: np.ndarray, gt: np.ndarray) -> float:
    """mIoU after a one-to-one matching of clusters to ground-truth segments.

    The matching maximises the total IoU (Hungarian algorithm); the score is the mean over
    *ground-truth* segments of the IoU with their matched cluster, 0 for a segment left without
    a cluster (fewer clusters than segments). Surplus clusters are unmatched; their pixels are
    simply missing from the matched segments.
    """
    iou, _, g_ids = iou_matrix(pred, gt)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / len(g_ids))


def tsne_embedding(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of L2-normalised patch features (N, D) -> (N, 2).

    Perplexity is 30 or, for few patches, (N - 1) / 3 (t-SNE needs perplexity < N).
    """
    n = features.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                metric="euclidean")  # fmt: skip
    # One thread: for a few hundred points OpenMP's threads cost more than they save, and on
    # a busy machine they were measured 100x slower (25 s instead of 0.2 s for 64 points).
    with threadpool_limits(limits=1):
        return tsne.fit_transform(l2_normalise(features.astype(np.float64))).astype(np.float32)
