"""SimMIM: its block masks, the mask token before the positions, and the L1 loss on hidden pixels."""

import itertools
import math

import pytest
import torch
from scipy.stats import chi2

from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import gather_patches
from latentmim.masking.simmim_masks import SimMIMMaskGenerator, SimMIMViews, num_masked_cells
from latentmim.methods.simmim import SimMIM, simmim_loss
from latentmim.models.vit import ViTEncoder


def _model(grid=4, patch=2, chans=1, gap=0, mask_patch=2, mask_ratio=0.5, seed=0) -> SimMIM:
    torch.manual_seed(seed)
    enc = ViTEncoder(grid_size=grid, patch_size=patch, in_chans=chans, embed_dim=8, depth=1, num_heads=2,
                     freeze_pe=False)
    return SimMIM(enc, mask_patch, mask_ratio, patch_gap=gap, seed=seed)


# --- masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "k", "ratio", "hidden_cells"),
    [(14, 2, 0.6, 30), (4, 2, 0.6, 3), (4, 1, 0.6, 10), (6, 2, 0.6, 6), (6, 3, 0.5, 2), (8, 2, 0.75, 12)],
)
def test_every_image_hides_exactly_ceil_cells_times_ratio_aligned_blocks(grid, k, ratio, hidden_cells):
    gen = SimMIMMaskGenerator(grid, k, ratio)
    assert gen.masked_cells == hidden_cells == math.ceil((grid // k) ** 2 * ratio)
    views = gen(500, 0, torch.Generator().manual_seed(0))
    n = grid * grid
    assert views.mask.shape == (500, n) and views.mask.dtype == torch.bool and views.offsets is None
    assert views.num_masked == hidden_cells * k * k
    # the exact masked fraction, in every image
    assert (views.mask.sum(1) == hidden_cells * k * k).all()
    assert views.mask.float().mean(1).eq(hidden_cells * k * k / n).all()
    # a union of aligned k x k blocks: constant inside every block
    blocks = views.mask.reshape(500, grid // k, k, grid // k, k)
    assert (blocks == blocks[:, :, :1, :, :1]).all()


def test_the_hidden_cells_are_a_uniform_subset():
    # 3x3 cells, 6 hidden: each of the C(9, 6) = 84 subsets equally likely, every cell hidden 2/3 of the time
    gen = SimMIMMaskGenerator(6, 2, 0.6)
    draws = 20_000
    cells = gen.cell_mask(draws, torch.Generator().manual_seed(1)).reshape(draws, 9)
    freq = cells.float().mean(0)
    se = math.sqrt((2 / 3) * (1 / 3) / draws)
    assert ((freq - 2 / 3).abs() < 5 * se).all(), freq
    subsets = {s: i for i, s in enumerate(itertools.combinations(range(9), 6))}
    codes = torch.tensor([subsets[tuple(row.nonzero().flatten().tolist())] for row in cells])
    counts = torch.bincount(codes, minlength=84).double()
    assert counts.min() > 0
    expected = draws / 84
    stat = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2.sf(stat, df=83) > 1e-3, stat


def test_views_are_a_pure_function_of_the_generator_and_offsets_are_drawn_with_a_gap():
    gen = SimMIMMaskGenerator(4, 2, 0.5)
    a = gen(16, 3, torch.Generator().manual_seed(7))
    b = gen(16, 3, torch.Generator().manual_seed(7))
    c = gen(16, 3, torch.Generator().manual_seed(8))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.offsets, b.offsets)
    assert not (torch.equal(a.mask, c.mask) and torch.equal(a.offsets, c.offsets))
    assert a.offsets.shape == (16, 16, 2) and a.offsets.dtype == torch.int64
    assert a.offsets.min() == 0 and a.offsets.max() == 2  # uniform in [0, gap)
    # the method draws the same views from the same generator
    model = _model(gap=3)
    m = model.sample_views(16, torch.Generator().manual_seed(7))
    assert torch.equal(m.mask, a.mask) and torch.equal(m.offsets, a.offsets)


def test_rows_to_and_ids_of_the_view_type():
    views = SimMIMMaskGenerator(4, 2, 0.5)(6, 2, torch.Generator().manual_seed(0))
    sub = views.rows(slice(1, None, 2))
    assert isinstance(sub, SimMIMViews) and sub.num_masked == views.num_masked == 8
    assert torch.equal(sub.mask, views.mask[1::2]) and torch.equal(sub.offsets, views.offsets[1::2])
    moved = views.to("meta")
    assert moved.mask.device.type == "meta" and moved.offsets.device.type == "meta"
    assert moved.num_masked == 8
    assert views.to("cpu").mask.device.type == "cpu"
    no_gap = SimMIMMaskGenerator(4, 2, 0.5)(2, 0, torch.Generator().manual_seed(0))
    assert no_gap.rows(slice(0, 1)).offsets is None and no_gap.to("cpu").offsets is None
    # visible ids first, then the hidden ones, each ascending
    for row in range(6):
        hidden = views.mask[row].nonzero().flatten()
        visible = (~views.mask[row]).nonzero().flatten()
        assert torch.equal(views.trg_ids[row], hidden) and torch.equal(views.vis_ids[row], visible)


@pytest.mark.parametrize(("grid", "k", "ratio"), [(4, 3, 0.5), (4, 2, 0.8), (4, 2, 0.0), (4, 0, 0.5)])
def test_bad_mask_settings_are_refused(grid, k, ratio):
    with pytest.raises(ValueError):
        SimMIMMaskGenerator(grid, k, ratio)


def test_the_count_is_the_authors_ceil():
    assert num_masked_cells(49, 0.6) == 30  # ViT-B at 224 px: 7x7 cells of 32 px
    assert num_masked_cells(4, 0.6) == 3
    assert num_masked_cells(36, 0.6) == 22  # Swin at 192 px: 6x6 cells


# --- loss -------------------------------------------------------------------------------------


def test_loss_by_hand():
    # 2 tokens of 1 pixel x 2 channels; token 0 hidden: |1| + |-2| over 1 hidden pixel, / 2 channels
    target = torch.tensor([[[1.0, -2.0], [3.0, 4.0]]])
    mask = torch.tensor([[True, False]])
    got = simmim_loss(torch.zeros_like(target), target, mask, in_chans=2)
    assert got.item() == pytest.approx(3.0 / (1 + 1e-5) / 2, rel=1e-7)
    # 2x2-pixel tokens, 1 channel, both hidden: mean absolute error over 8 pixels
    target = torch.arange(8.0).reshape(1, 2, 4)
    got = simmim_loss(torch.ones_like(target), target, torch.tensor([[True, True]]), in_chans=1)
    assert got.item() == pytest.approx(sum(abs(v - 1) for v in range(8)) / (8 + 1e-5), rel=1e-7)


def test_loss_ignores_the_visible_tokens():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 12, generator=g), torch.randn(2, 4, 12, generator=g)
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    base = simmim_loss(pred, target, mask, in_chans=3)
    noise = torch.randn(2, 4, 12, generator=g) * 100 * (~mask)[..., None]
    assert simmim_loss(pred, target + noise, mask, 3).item() == pytest.approx(base.item(), rel=1e-6)
    assert simmim_loss(pred + noise, target, mask, 3).item() == pytest.approx(base.item(), rel=1e-6)
    hidden_noise = torch.randn(2, 4, 12, generator=g) * mask[..., None]
    assert simmim_loss(pred, target + hidden_noise, mask, 3).item() != pytest.approx(base.item(), rel=1e-3)


@pytest.mark.parametrize(("chans", "gap"), [(1, 0), (3, 2)])
def test_forward_loss_equals_a_per_pixel_loop(chans, gap):
    grid, patch = 4, 2
    model = _model(grid, patch, chans, gap)
    side = grid * (patch + gap)
    imgs = torch.randn(2, chans, side, side, generator=torch.Generator().manual_seed(3))
    views = model.sample_views(2, torch.Generator().manual_seed(4))
    loss, _ = model(imgs, views)

    # the prediction of every token, from the encoder's tokens
    cell = patch + gap
    with torch.no_grad():
        patches = torch.zeros(2, grid * grid, patch * patch * chans)
        for b, t, i, j, c in itertools.product(range(2), range(grid * grid), range(patch), range(patch), range(chans)):
            dy, dx = views.offsets[b, t].tolist() if gap else (0, 0)
            y, x = (t // grid) * cell + dy + i, (t % grid) * cell + dx + j
            patches[b, t, (i * patch + j) * chans + c] = imgs[b, c, y, x]
        pred = model.head(model.encoder.forward_masked(patches, views.mask, model.mask_token)[:, 1:])
    # the authors' loss, pixel by pixel: sum |x - x_rec| over hidden pixels and channels,
    # / (hidden pixels + 1e-5) / channels
    total, hidden_pixels = 0.0, 0
    for b, t in itertools.product(range(2), range(grid * grid)):
        if not views.mask[b, t]:
            continue
        for i, j in itertools.product(range(patch), range(patch)):
            hidden_pixels += 1
            for c in range(chans):
                total += abs(pred[b, t, (i * patch + j) * chans + c].item() - patches[b, t, (i * patch + j) * chans + c].item())
    assert hidden_pixels == 2 * views.num_masked * patch * patch
    assert loss.item() == pytest.approx(total / (hidden_pixels + 1e-5) / chans, rel=1e-5)


# --- the model --------------------------------------------------------------------------------


def test_hidden_tokens_enter_the_blocks_as_mask_token_plus_position():
    model = _model(chans=3).eval()
    seen = {}
    model.encoder.blocks[0].register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    imgs = torch.randn(2, 3, 8, 8)
    views = model.sample_views(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.mask_token.normal_()  # not the near-zero init: the check must see it
        model(imgs, views)
    x, pos = seen["x"], model.encoder.pos_embed[0]
    for b, t in itertools.product(range(2), range(16)):
        if views.mask[b, t]:
            assert torch.allclose(x[b, 1 + t], model.mask_token[0, 0] + pos[1 + t], atol=1e-6)
        else:
            assert not torch.allclose(x[b, 1 + t], model.mask_token[0, 0] + pos[1 + t], atol=1e-3)
    assert torch.allclose(x[:, 0], model.encoder.cls_token[0, 0] + pos[0], atol=1e-6)


def test_the_encoder_never_sees_the_hidden_pixels():
    model = _model(chans=3, gap=2).eval()
    views = model.sample_views(2, torch.Generator().manual_seed(0))
    imgs = torch.randn(2, 3, 16, 16)
    changed = imgs.clone()
    for b, t in itertools.product(range(2), range(16)):
        if views.mask[b, t]:  # scramble the whole grid cell of every hidden token
            r, c = divmod(t, 4)
            changed[b, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = torch.randn(3, 4, 4)
    with torch.no_grad():
        ids = torch.arange(16).expand(2, -1)
        before = model.encoder.forward_masked(gather_patches(imgs, ids, views.offsets, 4, 2, 2), views.mask, model.mask_token)
        after = model.encoder.forward_masked(gather_patches(changed, ids, views.offsets, 4, 2, 2), views.mask, model.mask_token)
        assert torch.allclose(before, after, atol=1e-6)
        assert model(imgs, views)[0].item() != pytest.approx(model(changed, views)[0].item(), rel=1e-3)


def test_gradient_reaches_the_mask_token_the_head_and_the_encoder():
    model = _model(chans=3)
    loss, metrics = model(torch.randn(4, 3, 8, 8))
    loss.backward()
    for name in ("mask_token", "head.weight", "head.bias", "encoder.patch_embed.proj.weight",
                 "encoder.cls_token", "encoder.pos_embed", "encoder.blocks.0.attn.qkv.weight", "encoder.norm.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert not any(v.requires_grad for v in metrics.values())


def test_forward_without_views_draws_them_and_reports_the_metrics():
    model = _model(chans=3, gap=1)
    imgs = torch.randn(3, 3, 12, 12)
    loss, metrics = model(imgs)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"loss_pred", "avg_sim_vis"}
    assert metrics["loss_pred"].item() == pytest.approx(loss.item())
    loss2, _ = model(imgs)  # the method's generator moves on: other views, another loss
    assert loss2.item() != pytest.approx(loss.item(), rel=1e-6)
    # avg_sim_vis: S of the encoder tokens at the visible positions
    views = model.sample_views(3, torch.Generator().manual_seed(5))
    _, metrics = model(imgs, views)
    with torch.no_grad():
        patches = gather_patches(imgs, torch.arange(16).expand(3, -1), views.offsets, 4, 2, 1)
        tokens = model.encoder.forward_masked(patches, views.mask, model.mask_token)[:, 1:]
    vis = tokens[~views.mask].reshape(3, views.num_vis, -1)
    assert metrics["avg_sim_vis"].item() == pytest.approx(avg_similarity(vis).item(), rel=1e-5)


def test_base_contract_and_init():
    model = _model(grid=4, mask_patch=2, mask_ratio=0.6)
    assert model.num_vis == 4 and model.masks.num_masked == 12  # 3 of 4 cells of 2x2 tokens
    assert model.head.in_features == 8 and model.head.out_features == 4  # P*P*C pixels
    assert model.mask_token.shape == (1, 1, 8) and model.mask_token.abs().max() <= 0.02
    assert model.mask_token.abs().sum() > 0
    # no target network: update_target changes nothing
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.update_target(0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError):
        _model(grid=4, mask_patch=3)


def test_bf16_autocast_forward_keeps_an_fp32_loss():
    model = _model(chans=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model(torch.randn(2, 3, 8, 8))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.mask_token.grad is not None
