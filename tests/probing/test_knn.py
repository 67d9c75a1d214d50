"""Tests for latentmim.probing.knn: hand-checked toy banks plus naive-loop references."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from latentmim.probing.features import extract_features, raw_pixel_features
from latentmim.probing.knn import (
    BF16_SIM_ERROR,
    EXTRA_CANDIDATES,
    l2_normalize,
    loo_1nn_accuracy,
    loo_1nn_predict,
    top_similar,
    weighted_knn_accuracy,
    weighted_knn_predict,
)


def circle(degrees: list[float], radius: list[float] | None = None) -> Tensor:
    """(N, 2) points on a circle at the given angles (optionally with per-point radius)."""
    theta = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180.0
    pts = torch.stack([theta.cos(), theta.sin()], dim=1)
    if radius is not None:
        pts = pts * torch.tensor(radius, dtype=torch.float64)[:, None]
    return pts.float()


# --------------------------------------------------------------------------- l2_normalize


def test_l2_normalize_unit_rows_and_zero_row_stays_finite() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0]])
    y = l2_normalize(x)
    torch.testing.assert_close(y, torch.tensor([[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]]))
    assert torch.isfinite(y).all()


# ------------------------------------------------------------------------ leave-one-out 1-NN


def test_loo_never_matches_the_query_itself() -> None:
    # Three tight pairs 10 degrees apart, pairs 90+ degrees from each other; the two
    # members of each pair carry different labels, so every leave-one-out prediction is
    # wrong while matching a point with itself would be right every time.
    feats = circle([0, 10, 100, 110, 200, 210])
    labels = torch.tensor([0, 1, 0, 1, 0, 1])

    pred = loo_1nn_predict(feats, labels)
    assert pred.tolist() == [1, 0, 1, 0, 1, 0]
    assert loo_1nn_accuracy(feats, labels) == 0.0

    naive_self_match = labels[(feats @ feats.T).argmax(dim=1)]
    assert (naive_self_match == labels).all()  # what a non-LOO version would score: 100%


def test_loo_hand_built_predictions_and_scale_invariance() -> None:
    # Angles 0, 30, 45, 170, 180: nearest others are 30->45, 0->30, 45->30, 170<->180.
    # Radii differ to check that the distance is cosine, not Euclidean.
    feats = circle([0, 30, 45, 170, 180], radius=[1.0, 5.0, 0.2, 3.0, 0.5])
    labels = torch.tensor([0, 1, 1, 2, 2])
    assert loo_1nn_predict(feats, labels).tolist() == [1, 1, 1, 2, 2]
    assert loo_1nn_accuracy(feats, labels) == pytest.approx(80.0)


def test_loo_duplicates_are_legitimate_neighbours() -> None:
    # Points 0 and 1 are the same direction (one rescaled): each is the other's neighbour
    # with similarity 1, and only the query's own index is excluded.
    feats = circle([0, 0, 90, 100], radius=[1.0, 3.0, 1.0, 1.0])
    labels = torch.tensor([0, 1, 2, 3])
    assert loo_1nn_predict(feats, labels).tolist() == [1, 0, 3, 2]

    # Exact duplicates with the same label are correctly classified by each other.
    feats = torch.tensor([[1.0, 2.0], [1.0, 2.0], [-1.0, 0.5], [-1.0, 0.5]])
    labels = torch.tensor([4, 4, 7, 7])
    assert loo_1nn_accuracy(feats, labels) == 100.0


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 4096])
def test_loo_chunked_equals_unchunked(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(53, 16, generator=gen)
    labels = torch.randint(0, 5, (53,), generator=gen)
    ref = loo_1nn_predict(feats, labels, chunk_size=10_000)
    assert torch.equal(loo_1nn_predict(feats, labels, chunk_size=chunk_size), ref)
    assert loo_1nn_accuracy(feats, labels, chunk_size=chunk_size) == loo_1nn_accuracy(
        feats, labels, chunk_size=10_000
    )


def test_loo_matches_naive_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(40, 8, generator=gen)
    labels = torch.randint(0, 3, (40,), generator=gen)
    unit = feats / feats.norm(dim=1, keepdim=True)
    expected = []
    for i in range(len(unit)):
        others = [j for j in range(len(unit)) if j != i]
        sims = torch.stack([unit[i] @ unit[j] for j in others])
        expected.append(labels[others[int(sims.argmax())]].item())
    assert loo_1nn_predict(feats, labels, chunk_size=7).tolist() == expected


def test_loo_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        loo_1nn_predict(torch.ones(1, 3), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError):
        loo_1nn_predict(torch.ones(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError):
        loo_1nn_predict(torch.ones(4, 3), torch.zeros(4, dtype=torch.long), chunk_size=0)


# ------------------------------------------------------------------------------ weighted k-NN


def test_weighted_vote_overrides_single_nearest_neighbour() -> None:
    # Query at 0 degrees. Bank: one class-0 point exactly on it (sim 1), two class-1 points
    # at +-10 degrees (sim cos 10 = 0.985), a class-2 point opposite (sim -1).
    bank = circle([0, 10, -10, 180])
    bank_labels = torch.tensor([0, 1, 1, 2])
    query = circle([0])
    t = 0.07
    c10 = math.cos(math.radians(10))

    # k=1: plain nearest neighbour -> class 0.
    scores = weighted_knn_predict(bank, bank_labels, query, num_classes=3, k=1, temperature=t)
    torch.testing.assert_close(scores, torch.tensor([[math.exp(1 / t), 0.0, 0.0]]))
    assert scores.argmax(dim=1).item() == 0

    # k=3: 2 * exp(0.985 / 0.07) > exp(1 / 0.07), so the two class-1 votes win.
    scores = weighted_knn_predict(bank, bank_labels, query, num_classes=3, k=3, temperature=t)
    expected = torch.tensor([[math.exp(1 / t), 2 * math.exp(c10 / t), 0.0]])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=0.0)
    assert scores.argmax(dim=1).item() == 1

    # A colder temperature makes the single exact match dominate again.
    scores = weighted_knn_predict(bank, bank_labels, query, num_classes=3, k=3, temperature=0.01)
    assert scores.argmax(dim=1).item() == 0

    # k=4 reaches the opposite point, which adds only exp(-1 / T) to class 2.
    scores = weighted_knn_predict(bank, bank_labels, query, num_classes=3, k=4, temperature=t)
    assert scores[0, 2].item() == pytest.approx(math.exp(-1 / t), rel=1e-5)

    acc = weighted_knn_accuracy(
        bank, bank_labels, query, torch.tensor([1]), num_classes=3, k=3, temperature=t
    )
    assert acc == {"top1": 100.0}  # 3 classes: no top5 entry


def naive_weighted_knn(
    bank: Tensor, bank_labels: Tensor, queries: Tensor, num_classes: int, k: int, t: float
) -> Tensor:
    """Per-query, per-neighbour Python reference for weighted_knn_predict."""
    bank = bank / bank.norm(dim=1, keepdim=True)
    queries = queries / queries.norm(dim=1, keepdim=True)
    out = torch.zeros(len(queries), num_classes)
    for q in range(len(queries)):
        sims = [float(queries[q] @ bank[j]) for j in range(len(bank))]
        order = sorted(range(len(bank)), key=lambda j: -sims[j])[:k]
        for j in order:
            out[q, int(bank_labels[j])] += math.exp(sims[j] / t)
    return out


@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_weighted_knn_matches_naive_loop(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(2)
    bank = torch.randn(60, 12, generator=gen)
    bank_labels = torch.randint(0, 4, (60,), generator=gen)
    queries = torch.randn(17, 12, generator=gen)
    scores = weighted_knn_predict(
        bank, bank_labels, queries, num_classes=4, k=7, temperature=0.1, chunk_size=chunk_size
    )
    expected = naive_weighted_knn(bank, bank_labels, queries, num_classes=4, k=7, t=0.1)
    assert scores.shape == (17, 4)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=0.0)


def test_weighted_knn_k_is_clamped_to_bank_size() -> None:
    gen = torch.Generator().manual_seed(3)
    bank = torch.randn(5, 4, generator=gen)
    bank_labels = torch.tensor([0, 1, 2, 1, 0])
    queries = torch.randn(6, 4, generator=gen)
    big = weighted_knn_predict(bank, bank_labels, queries, num_classes=3, k=100)
    full = weighted_knn_predict(bank, bank_labels, queries, num_classes=3, k=5)
    torch.testing.assert_close(big, full)
    acc = weighted_knn_accuracy(bank, bank_labels, queries, torch.zeros(6).long(), 3, k=100)
    assert set(acc) == {"top1"}


def test_weighted_knn_top1_and_top5() -> None:
    # Six classes, one bank point each at 0, 60, ..., 300 degrees; with k=6 every class gets
    # a score that decreases with angular distance from the query.
    bank = circle([0, 60, 120, 180, 240, 300])
    bank_labels = torch.arange(6)
    queries = circle([5, 25, 2])
    # Query 0 (5 deg, label 0): rank 1. Query 1 (25 deg, label 1): 0 deg is closer, so
    # rank 2. Query 2 (2 deg, label 3): 180 deg is the farthest point, rank 6.
    query_labels = torch.tensor([0, 1, 3])
    acc = weighted_knn_accuracy(bank, bank_labels, queries, query_labels, num_classes=6, k=6)
    assert acc.keys() == {"top1", "top5"}
    assert acc["top1"] == pytest.approx(100 / 3)
    assert acc["top5"] == pytest.approx(200 / 3)

    acc = weighted_knn_accuracy(
        bank, bank_labels, queries, query_labels, num_classes=6, k=6, topk=(1, 2, 6)
    )
    assert acc == pytest.approx({"top1": 100 / 3, "top2": 200 / 3, "top6": 100.0})


def test_weighted_knn_rejects_bad_arguments() -> None:
    bank, labels, q = torch.randn(4, 3), torch.zeros(4).long(), torch.randn(2, 3)
    with pytest.raises(ValueError):
        weighted_knn_predict(bank, labels, q, num_classes=2, k=0)
    with pytest.raises(ValueError):
        weighted_knn_predict(bank, labels, q, num_classes=2, temperature=0.0)
    with pytest.raises(ValueError):
        weighted_knn_predict(bank, labels, torch.randn(2, 5), num_classes=2)


# ------------------------------------------------------------- two-stage (bf16 + exact) search


def clustered(n: int, dim: int, gen: torch.Generator, centres: int = 8) -> Tensor:
    """(n, dim) unit rows around a few centres: dense neighbourhoods, like real features."""
    c = torch.randn(centres, dim, generator=gen)
    return l2_normalize(c[torch.randint(0, centres, (n,), generator=gen)] + 0.4 * torch.randn(n, dim, generator=gen))


def test_bf16_similarity_error_is_within_the_stated_bound() -> None:
    gen = torch.Generator().manual_seed(5)
    for dim in (16, 384, 4096):
        a, b = clustered(300, dim, gen), clustered(2000, dim, gen)
        exact = a.double() @ b.double().T
        coarse = (a.bfloat16() @ b.bfloat16().T).double()
        err = (coarse - exact).abs().max().item()
        assert 1e-4 < err < BF16_SIM_ERROR  # bf16 does move similarities, but never past the bound


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_two_stage_search_returns_the_exact_neighbours(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(6)
    bank, queries = clustered(3000, 48, gen), clustered(200, 48, gen)
    sims, index = top_similar(queries, bank, 20, chunk_size=chunk_size, search="exact")
    sims2, index2 = top_similar(queries, bank, 20, chunk_size=chunk_size, search="bf16")
    assert torch.equal(index2, index)
    torch.testing.assert_close(sims2, sims, rtol=0, atol=1e-6)
    labels = torch.randint(0, 5, (3000,), generator=gen)
    torch.testing.assert_close(weighted_knn_predict(bank, labels, queries, 5, search="bf16"),
                               weighted_knn_predict(bank, labels, queries, 5, search="exact"), rtol=1e-5, atol=0)


def test_two_stage_search_redoes_queries_whose_neighbours_bf16_cannot_rank() -> None:
    # 200 bank rows closer to the query than bf16 can resolve (similarities 1 - 1e-5 * j), shuffled
    # among far rows: the bf16 pass keeps an arbitrary 52 of them, so only the certification
    # check (and its exact re-search) recovers the true 20 nearest, in order.
    gen = torch.Generator().manual_seed(7)
    dim = 32
    query = l2_normalize(torch.randn(1, dim, generator=gen))
    ortho = l2_normalize(torch.randn(200, dim, generator=gen) - (torch.randn(200, dim, generator=gen) @ query.T) * query)
    ortho = l2_normalize(ortho - (ortho @ query.T) * query)
    angle = torch.sqrt(2e-5 * torch.arange(1, 201, dtype=torch.float32))[:, None]  # cos ~ 1 - 1e-5 j
    near = l2_normalize(query * torch.cos(angle) + ortho * torch.sin(angle))
    bank = torch.cat([near, clustered(3000, dim, gen)])
    order = torch.randperm(len(bank), generator=gen)
    bank = bank[order]
    sims, index = top_similar(query, bank, 20, search="exact")
    assert EXTRA_CANDIDATES + 20 < 200
    sims2, index2 = top_similar(query, bank, 20, search="bf16")
    assert torch.equal(index2, index)
    assert torch.equal(order[index[0]], torch.arange(20))  # the 20 nearest near-rows, in order
    torch.testing.assert_close(sims2, sims, rtol=0, atol=1e-6)


def test_two_stage_loo_excludes_the_query_itself() -> None:
    gen = torch.Generator().manual_seed(8)
    feats = clustered(1500, 24, gen)
    feats = torch.cat([feats, feats[:10]])  # exact duplicates: legitimate neighbours, selves are not
    labels = torch.randint(0, 4, (1500,), generator=gen)
    labels = torch.cat([labels, labels[:10]])  # a tie between two copies is then no ambiguity
    exact = loo_1nn_predict(feats, labels, chunk_size=100, search="exact")
    assert torch.equal(loo_1nn_predict(feats, labels, chunk_size=100, search="bf16"), exact)
    _, index = top_similar(feats, feats, 3, exclude_self=True, search="bf16")
    assert not (index == torch.arange(len(feats))[:, None]).any()
    assert torch.equal(index[:10, 0], torch.arange(1500, 1510)) and torch.equal(index[1500:, 0], torch.arange(10))


def test_search_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="search must be one of"):
        weighted_knn_predict(torch.randn(100, 3), torch.zeros(100).long(), torch.randn(2, 3), 2, k=2, search="fast")


# ---------------------------------------------------------------------- feature extraction


def test_extract_features_concatenates_batches_and_ignores_extra_items() -> None:
    gen = torch.Generator().manual_seed(4)
    images = torch.randn(7, 3, 4, 4, generator=gen)
    labels = torch.arange(7)
    # Batches of 3, 3, 1 with an extra "index" item, as a dataset wrapper might yield.
    loader = [
        (images[i : i + 3], labels[i : i + 3], torch.arange(i, min(i + 3, 7)))
        for i in range(0, 7, 3)
    ]

    def encode(x: Tensor) -> Tensor:
        assert not torch.is_grad_enabled()
        return (x.flatten(1)[:, :5] * 2).double()

    feats, labs, _ = extract_features(encode, loader, device="cpu", progress=True, desc="test")
    assert feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert feats.shape == (7, 5)
    torch.testing.assert_close(feats, images.flatten(1)[:, :5] * 2)
    assert labs.tolist() == list(range(7))


def test_raw_pixel_features_flattens() -> None:
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2)
    feats = raw_pixel_features(images)
    assert feats.shape == (2, 12) and feats.dtype == torch.float32
    assert feats[1].tolist() == list(range(12, 24))
    # Works as an ``encode`` callable for the raw-pixel baseline.
    feats2, _, _ = extract_features(raw_pixel_features, [(images, torch.tensor([0, 1]))])
    torch.testing.assert_close(feats2, feats)
