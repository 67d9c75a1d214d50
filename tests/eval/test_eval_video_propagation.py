"""Label propagation: hand-checked steps, a naive-loop reference, and an oracle feature that
must reproduce the ground truth (a real check of the whole propagation path)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import latentmim.eval.dense.video_propagation as vp
from latentmim.data.synthetic_video import SyntheticVideos
from latentmim.eval.dense.video import segment_sequence
from latentmim.eval.dense.video_propagation import (
    Propagation,
    labels_to_soft,
    neighbourhood,
    propagate_step,
    soft_to_labels,
)
from latentmim.eval.dense.vos_metrics import sequence_scores, summarize


def test_neighbourhood_matches_a_loop():
    h, w, r = 4, 5, 1
    got = neighbourhood(h, w, r)
    for s in range(h * w):
        for t in range(h * w):
            near = abs(s // w - t // w) <= r and abs(s % w - t % w) <= r
            assert bool(got[s, t]) == near
    assert got[0].sum() == 4 and got[w + 1].sum() == 9  # corner and interior
    assert neighbourhood(2, 2, None).all()


def test_labels_to_soft_area_fractions():
    labels = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 0, 0], [2, 2, 0, 0]])
    soft = labels_to_soft(labels, 3, 2, 2)  # 2x2 grid of 2x2-pixel patches
    expected = torch.tensor([[3 / 4, 1 / 4, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    torch.testing.assert_close(soft, expected)


def test_soft_to_labels_upsamples_then_argmax():
    soft = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # 2x2 checker of 2 labels
    out = soft_to_labels(soft, (2, 2), 4, 4)
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    assert torch.equal(out, expected)


def test_propagate_step_hand_computed():
    # One context frame of 3 patches in a row (grid 1x3), one target patch at position 0.
    target = torch.tensor([[1.0, 0.0]])
    feats = [F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [1.0, 0.1]]), dim=1)]
    labels = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])]
    allowed = neighbourhood(1, 3, 1)[:, :1].expand(3, 1)  # sources within 1 patch of target 0
    full = torch.ones(3, 1, dtype=torch.bool)
    # radius 1: sources 0 (sim 1) and 1 (sim 0.6); source 2 (sim 0.995) is too far away.
    out = propagate_step(target, feats, labels, allowed, topk=2, temperature=0.1)
    w0 = 1 / (1 + math.exp((0.6 - 1.0) / 0.1))
    torch.testing.assert_close(out, torch.tensor([[w0, 1 - w0]]))
    # without the neighbourhood: top-2 = sources 0 and 2
    s2 = 1.0 / math.hypot(1.0, 0.1)
    out = propagate_step(target, feats, labels, full, topk=2, temperature=0.1)
    w0 = 1 / (1 + math.exp((s2 - 1.0) / 0.1))
    torch.testing.assert_close(out, torch.tensor([[w0 + 0.5 * (1 - w0), 0.5 * (1 - w0)]]))


def _naive_step(target, feats, labels, allowed, topk, temperature):
    out = []
    for j in range(target.shape[0]):
        cands = []
        for f, lab in zip(feats, labels, strict=True):
            for i in range(f.shape[0]):
                if allowed[i, j]:
                    cands.append((float(target[j] @ f[i]), lab[i]))
        cands.sort(key=lambda c: -c[0])
        top = cands[:topk]
        w = torch.softmax(torch.tensor([c[0] for c in top]) / temperature, dim=0)
        out.append(sum(wi * c[1] for wi, c in zip(w, top, strict=True)))
    return torch.stack(out)


def test_propagate_step_equals_naive_loop_with_chunking(monkeypatch):
    monkeypatch.setattr(vp, "_BLOCK_ELEMENTS", 50)  # force many target chunks
    g = torch.Generator().manual_seed(0)
    h, w, d, c = 3, 4, 8, 3
    target = F.normalize(torch.randn(h * w, d, generator=g), dim=1)
    feats = [F.normalize(torch.randn(h * w, d, generator=g), dim=1) for _ in range(3)]
    labels = [torch.softmax(torch.randn(h * w, c, generator=g), dim=1) for _ in range(3)]
    allowed = neighbourhood(h, w, 1)
    got = propagate_step(target, feats, labels, allowed, topk=5, temperature=0.1)
    torch.testing.assert_close(got, _naive_step(target, feats, labels, allowed, 5, 0.1))


def test_context_is_first_frame_plus_last_n(monkeypatch):
    seen = []
    real = vp.propagate_step

    def spy(target, feats, labels, allowed, topk, temperature):
        seen.append(len(feats))
        return real(target, feats, labels, allowed, topk, temperature)

    monkeypatch.setattr(vp, "propagate_step", spy)
    feats = [torch.randn(4, 3) for _ in range(6)]
    list(vp.propagate(feats, torch.ones(4, 1), (2, 2), Propagation(n_last_frames=2)))
    assert seen == [1, 2, 3, 3, 3]  # first frame + up to 2 previous frames


@pytest.mark.parametrize("index", [0, 1, 3])
def test_oracle_features_reproduce_the_ground_truth(index):
    """Features = one-hot of the true labels per patch: propagation must recover the masks."""
    video = SyntheticVideos(4, num_frames=10, image_size=96, seed=0)[index]
    patch = 4
    num = int(video.masks.max()) + 1
    truth = iter(video.masks)

    def oracle(x):  # ignores the pixels; frames arrive in order
        soft = labels_to_soft(torch.from_numpy(next(truth)), num, 24, 24)  # (N, C)
        return soft.reshape(24, 24, num) + 1e-3  # never all-zero rows

    pred = segment_sequence(list(video.frames), video.masks[0], oracle, patch, (0.5,) * 3, (0.25,) * 3)
    ids = [int(i) for i in np.unique(video.masks[0]) if i]
    scores = summarize({str(o): s for o, s in sequence_scores(pred, video.masks, ids).items()})
    assert scores["J&F"] > 0.9, scores
    np.testing.assert_array_equal(pred[0], video.masks[0])  # the given frame is kept as given
