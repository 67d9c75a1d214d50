"""Hierarchical cuts against scikit-learn, Hungarian mIoU against brute force and hand values."""

import itertools

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from latentmim.eval.dense.segment_cluster import (
    hierarchical_cuts,
    hungarian_miou,
    iou_matrix,
    l2_normalise,
    tsne_embedding,
    upsample_labels,
)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16)) * 3
    return np.concatenate([c + rng.normal(size=(12, 16)) for c in centres])  # (72, 16)


def test_cuts_have_exactly_k_labels_and_match_sklearn_ward(features):
    cuts = hierarchical_cuts(features, (3, 4, 5))
    for k in (3, 4, 5):
        assert sorted(np.unique(cuts[k]).tolist()) == list(range(k))
        ref = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(l2_normalise(features))
        assert adjusted_rand_score(cuts[k], ref) == pytest.approx(1.0)  # the same partition


def test_cuts_are_nested_with_consistent_labels(features):
    cuts = hierarchical_cuts(features, (2, 3, 4, 5, 6))
    for k in (2, 3, 4, 5):
        coarse, fine = cuts[k], cuts[k + 1]
        for c in range(k + 1):  # every fine cluster lies inside one coarse cluster
            assert len(np.unique(coarse[fine == c])) == 1
        changed = coarse != fine  # only the split-off part gets the new label k
        assert set(fine[changed].tolist()) == {k}


def test_cuts_reject_too_few_points():
    with pytest.raises(ValueError, match="cluster counts"):
        hierarchical_cuts(np.random.default_rng(0).normal(size=(4, 3)), (3, 4, 5))


def test_hungarian_miou_permuted_labels_is_exactly_one():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 5, size=(16, 16))
    perm = np.array([3, 0, 4, 1, 2]) + 10  # relabelled clusters
    assert hungarian_miou(perm[gt], gt) == 1.0


def test_hungarian_miou_hand_values():
    gt = np.array([0, 0, 1, 1])
    # IoU(5, 0) = 2/3, IoU(7, 1) = 1/2; the swapped matching scores 1/4 + 0
    assert hungarian_miou(np.array([5, 5, 5, 7]), gt) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # one cluster for two segments: IoU 1/2 for one segment, 0 for the unmatched one
    assert hungarian_miou(np.zeros(4, dtype=int), gt) == pytest.approx(0.25)
    iou, p_ids, g_ids = iou_matrix(np.array([5, 5, 5, 7]), gt)
    np.testing.assert_allclose(iou, [[2 / 3, 1 / 4], [0, 1 / 2]])
    assert p_ids.tolist() == [5, 7] and g_ids.tolist() == [0, 1]


def test_hungarian_miou_equals_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(20):
        gt = rng.integers(0, 3, size=30)
        pred = rng.integers(0, 4, size=30)
        iou, _, g_ids = iou_matrix(pred, gt)
        best = max(sum(iou[p, g] for g, p in enumerate(perm) if p is not None)
                   for perm in itertools.permutations(list(range(iou.shape[0])) + [None] * 3, len(g_ids)))  # fmt: skip
        assert hungarian_miou(pred, gt) == pytest.approx(best / len(g_ids))


def test_upsample_labels_nearest_patch():
    grid = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(upsample_labels(grid, 4, 4), np.kron(grid, np.ones((2, 2), dtype=int)))
    # 3 px over 2 patches: pixel centres 0.5, 1.5, 2.5 fall in patches 0, 1, 1
    np.testing.assert_array_equal(upsample_labels(grid, 3, 3), [[0, 1, 1], [2, 3, 3], [2, 3, 3]])


def test_tsne_embedding_is_seeded(features):
    a, b = tsne_embedding(features, seed=0), tsne_embedding(features, seed=0)
    assert a.shape == (72, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
