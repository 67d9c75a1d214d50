"""Nearest-neighbour evaluation of frozen features.

Two protocols:

* **Leave-one-out 1-NN** (the Latent MIM paper's "NN" number): every sample of one set is
  classified by the label of its most cosine-similar *other* sample of the same set.
* **Weighted k-NN** (InstDisc / DINO): a query is classified by the top-``k`` most similar
  samples of a labelled train bank, each voting for its class with weight ``exp(sim / T)``.

Both work on L2-normalised features, so dot products are cosine similarities. Queries are
processed ``chunk_size`` rows at a time and only the best neighbours of each chunk are kept,
so memory is ``O(chunk_size * N)`` rather than ``O(N^2)``.

Where a bf16 matmul is faster than fp32 (GPUs, CPUs with bf16 units), the neighbours are found
in two stages with the same result as an fp32 search: a bf16 similarity pass keeps the best
``k + 32`` candidates of every query, their fp32 similarities are recomputed exactly, and a
query is accepted only when its ``k``-th exact similarity beats the best possible fp32 score of
any non-candidate (its bf16 score plus the bf16 error bound, :data:`BF16_SIM_ERROR`); the few
queries that fail the check are searched again in fp32. See :func:`top_similar`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from latentmim.config.eval_load import SEARCH_MODES
from latentmim.runtime.timing import median_seconds

__all__ = [
    "BF16_SIM_ERROR",
    "l2_normalize",
    "loo_1nn_accuracy",
    "loo_1nn_predict",
    "top_similar",
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


# Bound on |bf16 similarity - fp32 similarity| for unit vectors: rounding both inputs to bf16
# (unit roundoff 2^-9 each) moves a dot product by at most (2^-8 + 2^-18) |q| |b| (Cauchy-Schwarz),
# rounding the output by 2^-9 |s| <= 2^-9, fp32 accumulation over D <= 4096 terms by < 2.5e-4:
# 0.0061 in all, taken with a margin for norms that are 1 only up to fp32 rounding.
BF16_SIM_ERROR = 0.008
# Candidates kept by the bf16 pass beyond the k asked for (measured in benchmarks/eval_speed.py:
# on real features nearly every query is certified with 32 extra).
EXTRA_CANDIDATES = 32
# Query rows per bf16 pass: its (256, N) bf16 block stays in the caches through the matmul, the
# top-k and the re-ranking (weighted 20-NN, 10k x 60k x 384 on 2 cores: 1.45 s at 256 rows,
# 2.0 s at 1024; the fp32 pass is fastest at 1024: 4.05 s vs 5.06 s).
BF16_CHUNK = 256
_bf16_is_faster: dict[str, bool] = {}


def bf16_matmul_is_faster(device: torch.device) -> bool:
    """Whether a bf16 similarity matmul beats fp32 on this device (timed once per process on CPU).

    CUDA: always (tensor cores). CPU: only with bf16 units (``avx512_bf16``/AMX); on AVX2-only
    hosts a bf16 matmul is several times slower than fp32, so the search stays in fp32 there.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    if "cpu" not in _bf16_is_faster:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(256, 384, generator=g), torch.randn(4096, 384, generator=g)
        seconds = {dtype: median_seconds(lambda x=a.to(dtype), y=b.to(dtype): x @ y.T, 3, device)
                   for dtype in (torch.float32, torch.bfloat16)}
        # a clear margin: the two-stage search also pays for the top-k, the re-ranking and the checks
        _bf16_is_faster["cpu"] = seconds[torch.bfloat16] < 0.6 * seconds[torch.float32]
    return _bf16_is_faster["cpu"]


def top_similar(
    queries: Tensor,
    bank: Tensor,
    k: int,
    chunk_size: int = 1024,
    exclude_self: bool = False,
    search: str = "auto",
) -> tuple[Tensor, Tensor]:
    """The ``k`` most similar bank rows of every query, with their similarities.

    Args:
        queries: (Nq, D) L2-normalised queries, same dtype and device as ``bank``.
        bank: (N, D) L2-normalised bank.
        k: neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``).
        chunk_size: query rows whose (chunk_size, N) similarity block is held at once.
        exclude_self: the queries are the bank itself (row i of both is one sample): each
            query's own row is left out (leave-one-out).
        search: ``exact`` (one pass in the bank's dtype), ``bf16`` (two stages, module
            docstring) or ``auto`` (two stages where :func:`bf16_matmul_is_faster`).

    Returns:
        ``(sims, index)``, both (Nq, k): similarities in descending order and bank row indices.
        The two-stage search returns the exact pass's neighbours and fp32 similarities (up to
        fp32 rounding of near-ties: its similarities are summed in another order).
    """
    num_queries, n = queries.shape[0], bank.shape[0]
    num_candidates = k + EXTRA_CANDIDATES
    bank_bf16 = _search_bank(bank, search) if num_candidates < n - exclude_self else None
    top_sims = torch.empty(num_queries, k, dtype=bank.dtype, device=bank.device)
    top_index = torch.empty(num_queries, k, dtype=torch.long, device=bank.device)
    redo = []  # queries whose candidates could not be certified

    def mask_self(sims: Tensor, query_rows: Tensor) -> None:
        if exclude_self:  # the query's own column, and nothing else, leaves the race
            sims[torch.arange(len(query_rows), device=bank.device), query_rows] = float("-inf")

    step = chunk_size if bank_bf16 is None else min(chunk_size, BF16_CHUNK)
    for start in range(0, num_queries, step):
        rows = torch.arange(start, min(start + step, num_queries), device=bank.device)
        chunk = queries[rows]
        if bank_bf16 is None:
            sims = chunk @ bank.T  # (m, N)
            mask_self(sims, rows)
            top_sims[rows], top_index[rows] = sims.topk(k, dim=1)
            continue
        coarse = _bf16_similarities(chunk, bank_bf16)  # (m, N), within BF16_SIM_ERROR of exact
        mask_self(coarse, rows)
        coarse_top, candidates = coarse.topk(num_candidates, dim=1, sorted=False)  # (m, c), any order
        del coarse
        # exact similarities of the candidates: (m, c, D) x (m, D, 1) -> (m, c)
        cand_feats = bank.index_select(0, candidates.reshape(-1)).view(len(rows), num_candidates, -1)
        sims = torch.bmm(cand_feats, chunk[:, :, None]).squeeze(2)
        chunk_sims, pos = sims.topk(k, dim=1)
        top_sims[rows], top_index[rows] = chunk_sims, candidates.gather(1, pos)
        # A non-candidate's bf16 score is <= the last candidate's, so its exact one is at most
        # that + the error bound: a k-th similarity above it cannot be displaced.
        ceiling = coarse_top.min(dim=1).values.to(sims.dtype) + BF16_SIM_ERROR
        redo.append(rows[chunk_sims[:, -1] <= ceiling])
    if redo and (redo_rows := torch.cat(redo)).numel():  # one exact pass for all of them
        for start in range(0, len(redo_rows), chunk_size):
            rows = redo_rows[start:start + chunk_size]
            sims = queries[rows] @ bank.T
            mask_self(sims, rows)
            top_sims[rows], top_index[rows] = sims.topk(k, dim=1)
    return top_sims, top_index


def _bf16_similarities(queries: Tensor, bank_bf16: Tensor) -> Tensor:
    """(m, N) bf16 similarities, accumulated in fp32 (the error bound assumes it)."""
    if queries.device.type != "cuda":
        return queries.to(torch.bfloat16) @ bank_bf16.T  # CPU kernels accumulate bf16 products in fp32
    flags = torch.backends.cuda.matmul
    reduced = flags.allow_bf16_reduced_precision_reduction  # cuBLAS may otherwise reduce in bf16
    flags.allow_bf16_reduced_precision_reduction = False
    try:
        return queries.to(torch.bfloat16) @ bank_bf16.T
    finally:
        flags.allow_bf16_reduced_precision_reduction = reduced


def _search_bank(bank: Tensor, search: str) -> Tensor | None:
    """The bf16 copy of the bank for a two-stage search, or None for one exact pass."""
    if search not in SEARCH_MODES:
        raise ValueError(f"search must be one of {', '.join(SEARCH_MODES)}, got {search!r}")
    if bank.dtype != torch.float32 or search == "exact":
        return None
    if search == "auto" and not bf16_matmul_is_faster(bank.device):
        return None
    return bank.to(torch.bfloat16)


def _check_labels(labels: Tensor, n: int, name: str) -> None:
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must be ({n},), got shape {tuple(labels.shape)}")


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def loo_1nn_predict(features: Tensor, labels: Tensor, chunk_size: int = 1024, search: str = "auto") -> Tensor:
    """Leave-one-out 1-nearest-neighbour predictions within one set.

    Each sample is matched to the most cosine-similar sample among all *other* indices of
    the same set. Exact duplicates of a sample at other indices are legitimate neighbours;
    only the sample itself is excluded.

    Args:
        features: (N, D) features (normalised here; any scale is fine).
        labels: (N,) integer labels.
        chunk_size: number of query rows whose (chunk_size, N) similarity block is held in
            memory at once.
        search: ``auto`` (two stages where bf16 is faster, :func:`top_similar`), ``exact``
            (one fp32 pass) or ``bf16`` (two stages anywhere); the result is the same.

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
    # exclude_self: leave-one-out, not a trivial self-match
    _, nn_index = top_similar(feats, feats, 1, chunk_size=chunk_size, exclude_self=True, search=search)
    return labels[nn_index[:, 0]]


def loo_1nn_accuracy(features: Tensor, labels: Tensor, chunk_size: int = 1024, search: str = "auto") -> float:
    """Leave-one-out 1-NN accuracy (the Latent MIM "NN" protocol).

    Args:
        features: (N, D) features (normalised here).
        labels: (N,) integer labels.
        chunk_size: query rows processed at once (see :func:`loo_1nn_predict`).
        search: neighbour search (see :func:`loo_1nn_predict`).

    Returns:
        Accuracy in percent (0-100).
    """
    pred = loo_1nn_predict(features, labels, chunk_size=chunk_size, search=search)
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
    search: str = "auto",
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
        search: ``auto`` (two stages where bf16 is faster, :func:`top_similar`), ``exact``
            (one pass in the features' dtype) or ``bf16`` (two stages anywhere): the same
            neighbours either way.

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

    queries = queries.to(device=bank.device, dtype=dtype)
    top_sims, top_index = top_similar(queries, bank, k, chunk_size=chunk_size, search=search)  # (Nq, k)
    weights = (top_sims / temperature).exp()  # (Nq, k)
    scores = torch.zeros(queries.shape[0], num_classes, dtype=dtype, device=bank.device)
    # Sum the weights per class; scatter_add handles several neighbours of one class.
    return scores.scatter_add_(1, bank_labels[top_index], weights)


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
    search: str = "auto",
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
        search: neighbour search (see :func:`weighted_knn_predict`).

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
        search=search,
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
