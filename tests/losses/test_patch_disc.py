"""PatchDisc equals a naive per-image, per-token loop."""

import math

import torch

from latentmim.losses import build_latent_loss
from latentmim.losses.patch_disc import patch_disc_loss
from latentmim.losses.regression import regression_loss
from latentmim.losses.similarity import avg_similarity


def naive_patch_disc(pred, target, tau):
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        p = pred[b].double()
        mean = p.mean(0)
        std = p.std(0)  # unbiased, over tokens
        p = (p - mean) / (std + 1e-4)
        t = target[b].double()
        for k in range(p.shape[0]):
            pk = p[k] / p[k].norm()
            logits = [float(pk @ (t[j] / t[j].norm())) / tau for j in range(t.shape[0])]
            m = max(logits)
            lse = m + math.log(sum(math.exp(x - m) for x in logits))
            total += lse - logits[k]
            count += 1
    return 2 * tau * total / count


def test_patch_disc_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 7, 5, generator=g), torch.randn(3, 7, 5, generator=g)
    for tau in (0.2, 1.0):
        assert abs(patch_disc_loss(pred, target, tau).item() - naive_patch_disc(pred, target, tau)) < 1e-5


def test_negatives_come_only_from_the_same_image():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    loss = patch_disc_loss(pred, target)
    target2 = target.clone()
    target2[1] = torch.randn(6, 8, generator=g)  # changing image 1 leaves image 0's term alone
    per0 = patch_disc_loss(pred[:1], target[:1])
    assert torch.allclose(patch_disc_loss(pred[:1], target2[:1]), per0)
    assert torch.allclose(loss, (per0 + patch_disc_loss(pred[1:], target[1:])) / 2)


def test_perfect_prediction_gives_low_loss():
    target = torch.nn.functional.normalize(torch.randn(2, 10, 64), dim=-1)
    perfect = patch_disc_loss(target * 5, target, tau=0.05).item()
    shuffled = patch_disc_loss(target[:, torch.randperm(10)] * 5, target, tau=0.05).item()
    assert perfect < 0.01 < shuffled


def test_regression_losses_by_hand():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])
    target = torch.tensor([[[0.0, 0.0], [0.0, 3.0]]])
    assert regression_loss(pred, target, "mse").item() == (1 + 4 + 0 + 9) / 4
    assert regression_loss(pred, target, "l1").item() == (1 + 2 + 0 + 3) / 4
    # huber(delta=1): |d|<=1 -> d^2/2, else |d| - 1/2
    assert regression_loss(pred, target, "huber").item() == (0.5 + 1.5 + 0 + 2.5) / 4
    # norm_l2 standardises targets per token: [0,0] -> [0,0]; [0,3] -> [-1,1]
    expected = ((1 - 0) ** 2 + (2 - 0) ** 2 + (0 + 1) ** 2 + (0 - 1) ** 2) / 4
    assert abs(regression_loss(pred, target, "norm_l2").item() - expected) < 1e-4
    # the built losses are the reference functions, with tau / huber_delta forwarded
    g = torch.Generator().manual_seed(0)
    p, t = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    for tau in (0.1, 0.5):
        assert torch.equal(build_latent_loss("infonce_patches", tau=tau)(p, t), patch_disc_loss(p, t, tau=tau))
    assert build_latent_loss("infonce_patches", tau=0.1)(p, t) != build_latent_loss("infonce_patches", tau=0.5)(p, t)
    for kind in ("mse", "l1", "huber", "norm_l2"):
        assert torch.equal(build_latent_loss(kind, huber_delta=0.3)(p, t), regression_loss(p, t, kind, huber_delta=0.3))
    # huber_delta=2 by hand (d = 1, 2, 0, -3): d^2/2 for |d| <= 2, else 2 * (|d| - 1)
    assert build_latent_loss("huber", huber_delta=2.0)(pred, target).item() == (0.5 + 2.0 + 0 + 4.0) / 4


def test_avg_similarity_matches_pairwise_mean():
    x = torch.randn(3, 9, 4)
    u = torch.nn.functional.normalize(x, dim=-1)
    naive = (u @ u.transpose(1, 2)).mean()
    assert torch.allclose(avg_similarity(x), naive, atol=1e-6)
    collapsed = torch.randn(1, 1, 4).expand(2, 9, 4)
    assert torch.allclose(avg_similarity(collapsed), torch.tensor(1.0))
