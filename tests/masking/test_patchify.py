"""Gapped patchify: every patch lies in its cell; gap 0 is plain patchify."""

import torch

from latentmim.masking.patchify import all_ids, gather_patches, patch_pixel_index, patchify
from latentmim.masking.views import sample_views


def test_gap_zero_equals_plain_patchify():
    imgs = torch.randn(2, 3, 4 * 5, 4 * 5)
    ids = all_ids(2, 4)
    ours = gather_patches(imgs, ids, None, grid_size=4, patch_size=5, patch_gap=0)
    assert torch.equal(ours, patchify(imgs, 5))
    # and plain patchify matches a naive loop in (row, col, channel) order
    naive = torch.stack([imgs[:, :, r * 5:(r + 1) * 5, c * 5:(c + 1) * 5].permute(0, 2, 3, 1).reshape(2, -1)
                         for r in range(4) for c in range(4)], dim=1)
    assert torch.equal(ours, naive)


def test_gapped_patches_lie_in_their_cells_and_match_naive_crop():
    g, p, gap, b = 3, 4, 3, 5
    side = g * (p + gap)
    imgs = torch.arange(b * 2 * side * side, dtype=torch.float32).reshape(b, 2, side, side)
    views = sample_views(b, g, 2, gap, torch.Generator().manual_seed(0))
    ids = views.perm
    out = gather_patches(imgs, ids, views.offsets, g, p, gap)
    pix = patch_pixel_index(ids, views.offsets, g, p, gap)  # (B, K, P, P)
    rows, cols = pix // side, pix % side
    cell = p + gap
    assert torch.equal(rows // cell, (ids // g)[..., None, None].expand_as(rows))
    assert torch.equal(cols // cell, (ids % g)[..., None, None].expand_as(cols))
    for i in range(b):
        for k in range(g * g):
            n = ids[i, k].item()
            dy, dx = views.offsets[i, n].tolist()
            r0, c0 = (n // g) * cell + dy, (n % g) * cell + dx
            crop = imgs[i, :, r0:r0 + p, c0:c0 + p].permute(1, 2, 0).reshape(-1)
            assert torch.equal(out[i, k], crop)


def test_offsets_cover_range_and_vary_per_patch_and_image():
    views = sample_views(64, 14, 20, 4, torch.Generator().manual_seed(1))
    off = views.offsets
    assert off.min() == 0 and off.max() == 3
    assert not torch.equal(off[0], off[1])  # per image
    assert len(set(map(tuple, off[0].tolist()))) > 1  # per patch
