"""I-JEPA: multi-block mask statistics, views, gradients, EMA and the loss against a naive loop."""

import math

import pytest
import torch

from latentmim.masking.multiblock import BlockViews, MultiBlockMasker
from latentmim.masking.patchify import gather_patches
from latentmim.methods.ijepa import IJEPA, linear_momentum
from latentmim.models.predictor import JEPAPredictor
from latentmim.models.vit import ViTEncoder


def block_shape(ids: torch.Tensor, grid: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the bounding box of ``ids``; asserts they fill it (a rectangle)."""
    rows, cols = ids // grid, ids % grid
    top, left = int(rows.min()), int(cols.min())
    h, w = int(rows.max()) - top + 1, int(cols.max()) - left + 1
    assert ids.numel() == h * w and ids.unique().numel() == h * w
    return top, left, h, w


def formula_sizes(masker: MultiBlockMasker, scale, aspect) -> set[tuple[int, int]]:
    """Every (h, w) the block-size rule yields over a fine grid of its uniform number r."""
    sizes = set()
    for r in torch.linspace(0, 1 - 1e-9, 20001).tolist():
        k = int(masker.grid_size**2 * (scale[0] + r * (scale[1] - scale[0])))
        a = aspect[0] + r * (aspect[1] - aspect[0])
        limit = masker.grid_size if masker.reach_edges else masker.grid_size - 1
        sizes.add((min(max(round(math.sqrt(k * a)), 1), limit), min(max(round(math.sqrt(k / a)), 1), limit)))
    return sizes


def draw(masker: MultiBlockMasker, batches: int, batch: int, seed: int = 0, gap: int = 0) -> list[BlockViews]:
    g = torch.Generator().manual_seed(seed)
    return [masker.sample(batch, g, gap) for _ in range(batches)]


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("grid", [14, 16])
def test_target_blocks_match_the_paper(grid):
    # Paper (and the authors' configs): 4 target blocks per image, each a rectangle covering
    # 15-20% of the grid (before rounding to whole patches) with aspect h/w in 0.75-1.5, one size
    # per batch, placed independently per image.
    masker = MultiBlockMasker(grid)
    seen, areas, aspects = set(), [], []
    for views in draw(masker, 150, 8):
        b, m, kt = views.trg_ids.shape
        assert m == 4
        shapes = [block_shape(views.trg_ids[i, j], grid) for i in range(b) for j in range(m)]
        assert len({(h, w) for _, _, h, w in shapes}) == 1  # same size in the whole batch
        assert len({(t, lft) for t, lft, _, _ in shapes}) > 1  # positions per image and block
        _, _, h, w = shapes[0]
        seen.add((h, w))
        areas.append(h * w / grid**2)
        aspects.append(h / w)
    expected = formula_sizes(masker, (0.15, 0.2), (0.75, 1.5))
    assert seen <= expected and len(seen) >= len(expected) - 1  # the rarest size may go undrawn
    # rounding to whole patches widens the ranges by about one patch row
    assert 0.13 <= min(areas) and max(areas) <= 0.215
    assert 0.15 <= sum(areas) / len(areas) <= 0.2
    assert 0.75 * 0.8 <= min(aspects) and max(aspects) <= 1.5 * 1.15


@pytest.mark.parametrize("grid,reach_edges,min_keep", [(14, False, 10), (14, True, 10), (8, True, 4), (4, True, 2)])
def test_context_is_one_square_block_minus_the_targets(grid, reach_edges, min_keep):
    masker = MultiBlockMasker(grid, min_keep=min_keep, reach_edges=reach_edges)
    sizes = formula_sizes(masker, (0.85, 1.0), (1.0, 1.0))
    last_line, overlaps = False, 0
    for views in draw(masker, 100, 8):
        ctx = views.ctx_ids
        assert ctx.shape[1] > min_keep  # min_keep holds after the cut to the batch's smallest
        assert torch.equal(ctx, ctx.sort(dim=1).values) and all(row.unique().numel() == ctx.shape[1] for row in ctx)
        rows, cols = ctx // grid, ctx % grid
        span = torch.maximum(rows.max(1).values - rows.min(1).values, cols.max(1).values - cols.min(1).values) + 1
        side = max(s for s, _ in sizes)
        assert int(span.max()) <= side  # inside one square context block (scale 0.85-1.0)
        assert all(s == t for s, t in sizes) and min(s * s for s, _ in sizes) / grid**2 >= 0.7
        # targets are cut out of the context (allow_overlap=False), unless that leaves min_keep
        # patches or fewer 20 times in a row (then the last target block may overlap)
        for i in range(ctx.shape[0]):
            overlaps += bool(set(ctx[i].tolist()) & set(views.trg_ids[i].flatten().tolist()))
        last_line |= bool((rows == grid - 1).any() or (cols == grid - 1).any())
        last_line |= bool((views.trg_ids // grid == grid - 1).any() or (views.trg_ids % grid == grid - 1).any())
    assert overlaps <= (8 if grid == 4 else 0)  # of 800 images
    # the authors' released bounds never put the last row or column in a block
    assert last_line == reach_edges


def test_authors_bounds_put_the_context_in_the_top_left_corner():
    # 14x14: the context side rounds to 13 or 14, clipped to G-1 = 13, and its corner is drawn
    # from [0, 14 - 13) = {0}: every context lies in the top-left 13x13 block.
    for views in draw(MultiBlockMasker(14), 20, 8):
        assert int((views.ctx_ids // 14).max()) <= 12 and int((views.ctx_ids % 14).max()) <= 12


def test_context_is_cut_to_the_smallest_of_the_batch():
    # Drawn alone, each image keeps its whole context; in a batch the first (raster order)
    # Kc = min over the batch of them.
    masker = MultiBlockMasker(8, min_keep=4, reach_edges=True)
    counts, cut = [], []
    for views in draw(masker, 60, 16, seed=3):
        cut.append(views.ctx_ids.shape[1])
    for views in draw(masker, 60 * 16, 1, seed=3):
        counts.append(views.ctx_ids.shape[1])
    assert sum(cut) / len(cut) < sum(counts) / len(counts)  # the cut shrinks contexts
    assert min(counts) > 4


def test_min_keep_and_overlap_fallback():
    # Targets covering the whole grid: the context is found only once every target block stops
    # being cut out (20 failures each, the last block first), as the authors' sampler does.
    masker = MultiBlockMasker(4, trg_scale=(1.0, 1.0), aspect=(1.0, 1.0), num_targets=2, min_keep=3,
                              reach_edges=True)
    views = masker.sample(3, torch.Generator().manual_seed(0))
    assert views.trg_ids.shape == (3, 2, 16) and views.ctx_ids.shape == (3, 16)
    # overlap allowed: the context is the whole block whatever the targets
    both = MultiBlockMasker(4, allow_overlap=True, reach_edges=True, min_keep=3)
    assert both.sample(2, torch.Generator().manual_seed(0)).ctx_ids.shape == (2, 16)
    with pytest.raises(ValueError, match="min_keep"):
        MultiBlockMasker(4, min_keep=16)
    with pytest.raises(ValueError, match="never keep"):
        MultiBlockMasker(4, ctx_scale=(0.2, 0.2), min_keep=5)


def test_views_are_a_function_of_the_generator_and_slice_by_rows():
    masker = MultiBlockMasker(6, min_keep=3, reach_edges=True)
    a = masker.sample(6, torch.Generator().manual_seed(5), patch_gap=3)
    b = masker.sample(6, torch.Generator().manual_seed(5), patch_gap=3)
    c = masker.sample(6, torch.Generator().manual_seed(6), patch_gap=3)
    assert torch.equal(a.ctx_ids, b.ctx_ids) and torch.equal(a.trg_ids, b.trg_ids) and torch.equal(a.offsets, b.offsets)
    assert not (torch.equal(a.trg_ids, c.trg_ids) and torch.equal(a.ctx_ids, c.ctx_ids))
    assert a.offsets.shape == (6, 36, 2) and int(a.offsets.min()) >= 0 and int(a.offsets.max()) <= 2
    r = a.rows(slice(1, None, 2))  # rank 1 of 2
    assert torch.equal(r.ctx_ids, a.ctx_ids[1::2]) and torch.equal(r.trg_ids, a.trg_ids[1::2])
    assert torch.equal(r.offsets, a.offsets[1::2]) and r.num_targets == 4
    moved = a.to("meta")
    assert moved.ctx_ids.device.type == moved.trg_ids.device.type == moved.offsets.device.type == "meta"
    assert masker.sample(2, torch.Generator(), patch_gap=0).offsets is None


# --------------------------------------------------------------------------- the method


def tiny_model(seed: int = 0, gap: int = 0, use_cls: bool = False) -> IJEPA:
    torch.manual_seed(seed)
    encoder = ViTEncoder(grid_size=4, patch_size=2, in_chans=1, embed_dim=16, depth=2, num_heads=2)
    predictor = JEPAPredictor(16, 4, pred_dim=8, depth=1, num_heads=2)
    masker = MultiBlockMasker(4, min_keep=2, reach_edges=True)
    return IJEPA(encoder, predictor, masker, patch_gap=gap, use_cls=use_cls, seed=seed)


@pytest.fixture
def setup():
    model = tiny_model()
    with torch.no_grad():  # a target encoder that is not a copy of the context encoder
        for p in model.target_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(3, 1, 8, 8, generator=g)
    return model, imgs, model.sample_views(3, g)


def naive_loss(model: IJEPA, imgs: torch.Tensor, views: BlockViews) -> torch.Tensor:
    """Per image and per target block, written out: encoders run token by token lists, explicit
    layer norm and smooth L1 (beta 1), mean over a block's elements, then over blocks and images."""
    enc, tgt, pred = model.encoder, model.target_encoder, model.predictor
    losses = []
    for i in range(imgs.shape[0]):
        ids = torch.arange(16)
        patches = gather_patches(imgs[i : i + 1], ids[None], None, 4, 2, 0)[0]  # (16, 4)
        # target: whole image, final norm, then a plain layer norm over features
        x = tgt.embed_patches(patches[None], ids[None], cls=False)
        for blk in tgt.blocks:
            x = blk(x)
        h = tgt.norm(x)[0]
        h = (h - h.mean(-1, keepdim=True)) / (h.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        c_ids = views.ctx_ids[i]
        z = enc.forward_patches(patches[c_ids][None], c_ids[None], cls=False)[0]  # (Kc, D)
        for j in range(views.num_targets):
            t_ids = views.trg_ids[i, j]
            seq = torch.cat([pred.predictor_embed(z) + pred.pos_embed[c_ids],
                             pred.mask_token[0] + pred.pos_embed[t_ids]])
            out = pred.predictor_proj(pred.predictor_norm(pred.predictor_blocks(seq[None])))[0, len(c_ids):]
            d = (out - h[t_ids]).abs()
            losses.append(torch.where(d < 1.0, 0.5 * d**2, d - 0.5).mean())
    return torch.stack(losses).mean()


def test_loss_equals_a_naive_loop_over_images_and_blocks(setup):
    model, imgs, views = setup
    loss, metrics = model(imgs, views)
    assert loss.item() == pytest.approx(naive_loss(model, imgs, views).item(), rel=1e-5)
    assert set(metrics) == {"loss_pred", "avg_sim_pred", "avg_sim_vis", "avg_sim_trg"}
    assert all(not v.requires_grad and v.ndim == 0 for v in metrics.values())


def test_gradients_reach_context_encoder_and_predictor_only(setup):
    model, imgs, views = setup
    model(imgs, views)[0].backward()
    for name, p in model.encoder.named_parameters():
        if name in ("cls_token", "pos_embed"):  # unused (no cls token) and fixed
            assert not p.requires_grad and p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictor.parameters())
    assert all(not p.requires_grad and p.grad is None for p in model.target_encoder.parameters())


def test_target_encoder_sees_the_whole_image(setup):
    model, imgs, views = setup
    ids = torch.arange(16).expand(3, -1)
    patches = gather_patches(imgs, ids, None, 4, 2, 0)
    # change one patch in neither the context nor any target block of image 0 (or any patch)
    outside = sorted(set(range(16)) - set(views.ctx_ids[0].tolist()) - set(views.trg_ids[0].flatten().tolist()))
    k = outside[0] if outside else int(views.ctx_ids[0, 0])
    changed = patches.clone()
    changed[0, k] += 1.0
    assert not torch.allclose(model.targets(patches, views.trg_ids)[0], model.targets(changed, views.trg_ids)[0])


def test_ema_update_and_linear_momentum(setup):
    model, _, _ = setup
    before = {n: p.clone() for n, p in model.target_encoder.named_parameters()}
    online = dict(model.encoder.named_parameters())
    model.update_target(0.9)
    for n, p in model.target_encoder.named_parameters():
        assert torch.allclose(p, 0.9 * before[n] + 0.1 * online[n], atol=1e-6), n
    # the paper's schedule: 0.996 -> 1.0 linearly over the run
    assert model.momentum_at(0.996, 0.0) == 0.996
    assert model.momentum_at(0.996, 0.5) == pytest.approx(0.998)
    assert model.momentum_at(0.996, 1.0) == pytest.approx(1.0)
    assert linear_momentum(0.99, 2.0, end=0.999) == pytest.approx(0.999)


def test_target_encoder_stays_in_eval_mode():
    model = tiny_model().train()
    assert model.encoder.training and model.predictor.training and not model.target_encoder.training


def test_forward_without_views_is_seeded_and_gap_views_work():
    imgs = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a, b = tiny_model(seed=4), tiny_model(seed=4)
    assert a(imgs)[0].item() == b(imgs)[0].item()
    gapped = tiny_model(gap=1)
    loss, _ = gapped(torch.randn(2, 1, 12, 12))
    assert torch.isfinite(loss)
    with_cls = tiny_model(use_cls=True)
    with_cls(imgs)[0].backward()
    assert with_cls.encoder.cls_token.grad is not None
