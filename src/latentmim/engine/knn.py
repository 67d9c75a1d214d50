"""Nearest-neighbour evaluation of frozen features.

Two protocols:

* **Leave-one-out 1-NN** (the Latent MIM paper's "NN" number): every sample of one set is
  classified by the label of its most cosine-similar *other* sample of the same set.
* **Weighted k-NN** (InstDisc / DINO): a query is classified by the top-``k`` most similar
  samples of a labelled train bank, each voting for its class with weight ``exp(sim / T)``.

Both work on L2-normalised features, so dot products are cosine similarities. Queries are
processed ``chunk_size`` rows at a time and only the best neighbours of each chunk are kept,
so memory is ``O(chunk_size * N)`` rather than ``O(N^2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "l2_normalize",
    "loo_1nn_accuracy",
    "loo_1nn_predict",
    "weighted_knn_accuracy",
    "weighted_knn_predict",
]


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Scale every row to unit L2 norm.

    Args:
        x: (..., D) features.
        eps: lower bound on the norm, so all-zero rows stay zero instead of becoming NaN.

    Returns:
        (..., D) rows of norm 1 (or 0 for all-zero rows), same dtype as ``x``.
    """
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


def _prepare_features(x: Tensor, name: str) -> Tensor:
    """Validate a (N, D) feature matrix, upcast it to a safe float type and L2-normalise it."""
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(x.shape)}")
    # Half precision (or integer pixels) is not enough here: similarities are divided by a
    # small temperature and exponentiated, which amplifies rounding errors ~1/T times, and
    # near-ties between neighbours must be resolved consistently.
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return l2_normalize(x)


def _check_labels(labels: Tensor, n: int, name: str) -> None:
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must be ({n},), got shape {tuple(labels.shape)}")


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def loo_1nn_predict(features: Tensor, labels: Tensor, chunk_size: int = 1024) -> Tensor:
    """Leave-one-out 1-nearest-neighbour predictions within one set.

    Each sample is matched to the most cosine-similar sample among all *other* indices of
    the same set. Exact duplicates of a sample at other indices are legitimate neighbours;
    only the sample itself is excluded.

    Args:
        features: (N, D) features (normalised here; any scale is fine).
        labels: (N,) integer labels.
        chunk_size: number of query rows whose (chunk_size, N) similarity block is held in
            memory at once.

    Returns:
        (N,) predicted labels (the label of each sample's nearest other sample), on the
        device of ``features``.
    """
    _check_chunk_size(chunk_size)
    feats = _prepare_features(features, "features")
    n = feats.shape[0]
    _check_labels(labels, n, "labels")
    if n < 2:
        raise ValueError(f"leave-one-out 1-NN needs at least 2 samples, got {n}")
    labels = labels.to(feats.device)

    nn_index = torch.empty(n, dtype=torch.long, device=feats.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims = feats[start:stop] @ feats.T  # (m, N) cosine similarities
        rows = torch.arange(stop - start, device=feats.device)
        # The query's own column sits at global index start + row: masking it (and nothing
        # else) is what makes this leave-one-out rather than a trivial self-match.
        sims[rows, start + rows] = float("-inf")
        nn_index[start:stop] = sims.argmax(dim=1)
    return labels[nn_index]


def loo_1nn_accuracy(features: Tensor, labels: Tensor, chunk_size: int = 1024) -> float:
    """Leave-one-out 1-NN accuracy (the Latent MIM "NN" protocol).

    Args:
        features: (N, D) features (normalised here).
        labels: (N,) integer labels.
        chunk_size: query rows processed at once (see :func:`loo_1nn_predict`).

    Returns:
        Accuracy in percent (0-100).
    """
    pred = loo_1nn_predict(features, labels, chunk_size=chunk_size)
    correct = (pred == labels.to(pred.device)).sum().item()
    return 100.0 * correct / labels.shape[0]


def weighted_knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> Tensor:
    """Temperature-weighted k-NN class scores (InstDisc / DINO protocol).

    For every query the ``k`` most cosine-similar train samples are retrieved; neighbour
    ``j`` with similarity ``s_j`` adds ``exp(s_j / temperature)`` to the score of its class.

    Args:
        train_features: (Nt, D) bank features (normalised here).
        train_labels: (Nt,) integer labels in ``[0, num_classes)``.
        query_features: (Nq, D) query features (normalised here).
        num_classes: number of classes C.
        k: neighbours per query; clamped to Nt when the bank is smaller.
        temperature: softness of the vote; small values approach 1-NN, large values a
            plain majority vote among the k neighbours.
        chunk_size: query rows whose (chunk_size, Nt) similarity block is held at once.

    Returns:
        (Nq, C) non-negative class scores, on the device of ``train_features``.
    """
    _check_chunk_size(chunk_size)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    bank = _prepare_features(train_features, "train_features")
    queries = _prepare_features(query_features, "query_features")
    num_train = bank.shape[0]
    _check_labels(train_labels, num_train, "train_labels")
    if num_train == 0:
        raise ValueError("the train bank is empty")
    if queries.shape[1] != bank.shape[1]:
        raise ValueError(
            f"feature widths differ: train {bank.shape[1]} vs query {queries.shape[1]}"
        )
    # Compare in one dtype; float64 wins if either side already uses it.
    dtype = torch.promote_types(bank.dtype, queries.dtype)
    bank = bank.to(dtype)
    bank_labels = train_labels.to(device=bank.device, dtype=torch.long)
    k = min(k, num_train)

    num_queries = queries.shape[0]
    scores = torch.zeros(num_queries, num_classes, dtype=dtype, device=bank.device)
    for start in range(0, num_queries, chunk_size):
        stop = min(start + chunk_size, num_queries)
        chunk = queries[start:stop].to(device=bank.device, dtype=dtype)
        sims = chunk @ bank.T  # (m, Nt); only its top-k survive the iteration
        top_sims, top_index = sims.topk(k, dim=1)  # (m, k) each
        weights = (top_sims / temperature).exp()  # (m, k)
        neighbour_labels = bank_labels[top_index]  # (m, k)
        # Sum the weights per class; scatter_add handles several neighbours of one class.
        scores[start:stop].scatter_add_(1, neighbour_labels, weights)
    return scores


def weighted_knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    query_labels: Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    topk: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Top-k accuracies of the weighted k-NN classifier.

    Args:
        train_features: (Nt, D) bank features.
        train_labels: (Nt,) bank labels.
        query_features: (Nq, D) features to classify.
        query_labels: (Nq,) ground-truth labels of the queries.
        num_classes: number of classes C.
        k: neighbours per query (clamped to Nt).
        temperature: vote temperature (see :func:`weighted_knn_predict`).
        chunk_size: query rows processed at once.
        topk: which top-n accuracies to report; entries larger than C are skipped
            (top-5 is meaningless with fewer than 5 classes).

    Returns:
        ``{"top1": ..., "top5": ...}`` (keys ``f"top{n}"``) in percent (0-100).
    """
    _check_labels(query_labels, query_features.shape[0], "query_labels")
    if query_labels.shape[0] == 0:
        raise ValueError("no queries to evaluate")
    scores = weighted_knn_predict(
        train_features,
        train_labels,
        query_features,
        num_classes=num_classes,
        k=k,
        temperature=temperature,
        chunk_size=chunk_size,
    )
    wanted = sorted({n for n in topk if 1 <= n <= num_classes})
    if not wanted:
        return {}
    target = query_labels.to(device=scores.device, dtype=torch.long)
    ranked = scores.topk(max(wanted), dim=1).indices  # (Nq, max n), best class first
    hits = ranked == target[:, None]  # (Nq, max n); at most one True per row
    num_queries = target.shape[0]
    # Count hits as integers so the percentage is not rounded through a float32 mean.
    return {f"top{n}": 100.0 * hits[:, :n].any(dim=1).sum().item() / num_queries for n in wanted}
