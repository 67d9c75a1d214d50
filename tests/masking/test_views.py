import torch

from latentmim.masking.views import num_visible, sample_views


def test_visible_and_target_disjoint_and_cover_grid():
    v = sample_views(16, 14, 20, 4, torch.Generator().manual_seed(0))
    assert v.vis_ids.shape == (16, 20) and v.trg_ids.shape == (16, 176)
    for i in range(16):
        vis, trg = set(v.vis_ids[i].tolist()), set(v.trg_ids[i].tolist())
        assert not vis & trg
        assert vis | trg == set(range(196))


def test_views_are_a_function_of_the_generator_seed():
    a = sample_views(4, 8, 6, 2, torch.Generator().manual_seed(3))
    b = sample_views(4, 8, 6, 2, torch.Generator().manual_seed(3))
    c = sample_views(4, 8, 6, 2, torch.Generator().manual_seed(4))
    assert torch.equal(a.perm, b.perm) and torch.equal(a.offsets, b.offsets)
    assert not torch.equal(a.perm, c.perm)


def test_every_patch_is_visible_equally_often():
    v = sample_views(4000, 4, 4, 0, torch.Generator().manual_seed(0))
    counts = torch.bincount(v.vis_ids.reshape(-1), minlength=16).float()
    assert v.offsets is None
    # each patch is visible in an image with p = 4/16: Binomial(4000, 1/4), mean 1000, std ~27.4;
    # 4.5 std bounds all 16 counts with probability > 0.9999 (a biased sampler at 1.1x fails it)
    std = (4000 * 0.25 * 0.75) ** 0.5
    assert (counts - 1000).abs().max() < 4.5 * std


def test_num_visible_from_mask_ratio():
    assert num_visible(196, 20, None) == 20
    assert num_visible(196, 20, 0.75) == 49
    assert num_visible(196, 20, 0.9) == 20
