"""J (region IoU) and F (boundary F-measure) on hand-made masks with hand-computed values."""

import numpy as np
import pytest

from latentmim.eval.dense.vos_metrics import (
    boundary_map,
    boundary_tolerance,
    contour_accuracy,
    disk,
    region_similarity,
    sequence_scores,
    summarize,
)


def block(shape, rows, cols):
    m = np.zeros(shape, dtype=bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


def test_region_similarity_hand_values():
    gt = block((4, 4), (0, 2), (0, 3))  # 6 px
    pred = block((4, 4), (0, 2), (0, 2))  # 4 px, inside gt
    assert region_similarity(pred, gt) == pytest.approx(4 / 6)
    assert region_similarity(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # both empty
    assert region_similarity(np.zeros((4, 4)), gt) == 0.0
    void = block((4, 4), (0, 4), (2, 4))  # ignore columns 2-3: gt becomes the 4 px of pred
    assert region_similarity(pred, gt, void) == 1.0


def test_boundary_map_hand_case():
    m = block((5, 5), (1, 3), (1, 3))  # 2x2 square at rows 1-2, cols 1-2
    expected = np.zeros((5, 5), dtype=bool)
    # pixels differing from their right, lower or lower-right neighbour (worked out by hand)
    for r, c in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]:
        expected[r, c] = True
    np.testing.assert_array_equal(boundary_map(m), expected)
    # an object touching the image border has no boundary along it
    assert not boundary_map(np.ones((4, 4), dtype=bool)).any()


def test_disk_and_tolerance():
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert disk(2).sum() == 13  # 1 + 4 + 4 + 4 lattice points with x^2 + y^2 <= 4
    assert boundary_tolerance(480, 854) == 8  # ceil(0.008 * 979.7) = 8: DAVIS 480p
    assert boundary_tolerance(10, 10) == 1  # ceil(0.113)
    assert boundary_tolerance(10, 10, bound_th=3) == 3  # >= 1 means pixels


def test_contour_accuracy_where_the_tolerance_matters():
    gt = block((10, 10), (0, 10), (0, 5))  # left half: boundary = column 4, 10 px
    # A staircase: columns 0-6 in rows 0-4, columns 0-4 in rows 5-9. Its boundary (12 px):
    # (0..4, 6), (4, 4), (4, 5), (5..9, 4).
    pred = gt.copy()
    pred[0:5, 5:7] = True
    assert boundary_map(pred).sum() == 12
    # 1-px tolerance (the default on a 10x10 image): precision 7/12 ((4,4), (4,5), (5..9,4)),
    # recall 7/10 ((3..9, 4)); F = 2PR / (P + R) = 7/11.
    assert contour_accuracy(pred, gt) == pytest.approx(7 / 11)
    assert contour_accuracy(pred, gt, bound_th=1) == pytest.approx(7 / 11)
    # 2-px tolerance: every boundary pixel has a partner -> F = 1; J is unaffected (50/60).
    assert contour_accuracy(pred, gt, bound_th=2) == pytest.approx(1.0)
    assert region_similarity(pred, gt) == pytest.approx(5 / 6)


def test_contour_accuracy_shift_beyond_and_within_tolerance():
    gt = block((10, 10), (0, 10), (0, 5))
    shifted = block((10, 10), (0, 10), (0, 7))  # boundary 2 columns to the right
    assert contour_accuracy(shifted, gt, bound_th=1) == 0.0  # P = R = 0
    assert contour_accuracy(shifted, gt, bound_th=2) == 1.0
    assert contour_accuracy(gt, gt) == 1.0


def test_contour_accuracy_empty_cases():
    gt = block((10, 10), (2, 6), (2, 6))
    empty = np.zeros((10, 10), dtype=bool)
    assert contour_accuracy(empty, empty) == 1.0
    assert contour_accuracy(empty, gt) == 0.0  # P = 1, R = 0
    assert contour_accuracy(gt, empty) == 0.0  # P = 0, R = 1


def test_sequence_scores_skip_first_and_last_frame_and_summary():
    gt = np.zeros((4, 6, 6), dtype=np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt[:, 4:6, 4:6] = 2
    pred = gt.copy()
    pred[1][pred[1] == 1] = 0  # object 1 lost in frame 1
    pred[3] = 0  # the last frame is never scored
    scores = sequence_scores(pred, gt, [1, 2])
    np.testing.assert_allclose(scores[1]["J"], [0.0, 1.0])  # frames 1 and 2
    np.testing.assert_allclose(scores[1]["F"], [0.0, 1.0])
    np.testing.assert_allclose(scores[2]["J"], [1.0, 1.0])
    s = summarize({"seq_1": scores[1], "seq_2": scores[2]})
    assert s["J_mean"] == pytest.approx(0.75) and s["F_mean"] == pytest.approx(0.75)
    assert s["J&F"] == pytest.approx(0.75)
    assert s["J_recall"] == pytest.approx(0.75)  # 3 of 4 (object, frame) pairs above 0.5
    # void pixels (255) are ignored: mark object 1's lost area void in frame 1
    gt_void = gt.copy()
    gt_void[1][gt[1] == 1] = 255
    assert sequence_scores(pred, gt_void, [1])[1]["J"][0] == 1.0  # nothing left to find
