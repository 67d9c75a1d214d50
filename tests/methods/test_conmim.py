"""ConMIM: blockwise masks, the target branch's perturbation, the denoising-contrast loss, EMA."""

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from latentmim.data.perturbation import (
    Perturbation,
    adjust_hue,
    colour_blend,
    gaussian_blur,
    grayscale,
    perturb,
)
from latentmim.losses.similarity import avg_similarity
from latentmim.masking.block_masks import BlockMaskGenerator, BlockMaskViews, sample_block_views
from latentmim.masking.patchify import all_ids, gather_patches
from latentmim.methods.conmim import (
    ConMIM,
    ConMIMProjector,
    ConMIMViews,
    denoising_contrast_loss,
    masked_avg_similarity,
)
from latentmim.models.vit import ViTEncoder

G, P, GAP, DIM = 4, 4, 0, 16


def make_model(seed: int = 0, patch_gap: int = GAP, **kwargs) -> ConMIM:
    torch.manual_seed(seed)
    enc = ViTEncoder(grid_size=G, patch_size=P, in_chans=3, embed_dim=DIM, depth=2, num_heads=2, freeze_pe=False)
    return ConMIM(enc, ConMIMProjector(DIM, 32, 8), patch_gap=patch_gap, seed=seed, **kwargs).train()


def make_imgs(model: ConMIM, batch: int = 4, seed: int = 0) -> torch.Tensor:
    """Normalised images whose pixels lie in [0, 1], as the data's."""
    side = model.crop_size
    pixels = torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(seed))
    return (pixels - model.pixel_mean) / model.pixel_std


# --------------------------------------------------------------------------------------------
# Blockwise masks
# --------------------------------------------------------------------------------------------


def test_sizes_scale_with_the_grid():
    paper = BlockMaskGenerator.from_fractions(14)
    assert (paper.num_masked, paper.min_block, paper.max_block, paper.min_aspect) == (75, 16, 75, 0.3)
    demo = BlockMaskGenerator.from_fractions(4)
    assert (demo.num_masked, demo.min_block) == (6, 1)
    with pytest.raises(ValueError):
        BlockMaskGenerator(4, num_masked=16)


@pytest.mark.parametrize(("grid", "min_share_exact", "min_mean"), [(14, 0.55, 74.0), (4, 0.99, 5.95)])
def test_masked_count_per_image(grid, min_share_exact, min_mean):
    gen = BlockMaskGenerator.from_fractions(grid)
    counts = gen(1000, torch.Generator().manual_seed(0)).sum(dim=1).float()
    # BEiT's generator never exceeds its budget and gives up after 10 failed blocks, so an image
    # may end a few patches short: on 14x14, 75 exactly for ~2/3 of the images, 74.5 on average.
    assert counts.max() == gen.num_masked
    assert (counts == gen.num_masked).float().mean() >= min_share_exact
    assert counts.mean() >= min_mean
    assert counts.min() >= gen.num_masked - 15


@pytest.mark.parametrize("grid", [4, 14])
def test_blocks_have_the_drawn_size_and_aspect(grid):
    gen = BlockMaskGenerator.from_fractions(grid)
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        u = torch.rand(400, generator=g, dtype=torch.float64).tolist()
        blocks = []
        mask = gen.mask_one(iter(u).__next__, blocks)
        union = torch.zeros(grid, grid, dtype=torch.bool)
        budget = gen.num_masked
        for b in blocks:
            lo, hi = sorted((gen.min_block, min(budget, gen.max_block)))
            assert lo <= b.area <= hi
            assert 0.3 - 1e-12 <= b.aspect <= 1 / 0.3 + 1e-12
            assert abs(b.height - math.sqrt(b.area * b.aspect)) <= 0.5
            assert abs(b.width - math.sqrt(b.area / b.aspect)) <= 0.5
            assert 1 <= b.height < grid and 1 <= b.width < grid  # strictly smaller than the grid
            assert 0 <= b.top <= grid - b.height and 0 <= b.left <= grid - b.width
            new = ~union[b.top:b.top + b.height, b.left:b.left + b.width]
            assert 1 <= int(new.sum()) <= min(budget, gen.max_block)
            union[b.top:b.top + b.height, b.left:b.left + b.width] = True
            budget = gen.num_masked - int(union.sum())
        assert torch.equal(union.reshape(-1), mask)


@pytest.mark.parametrize("grid", [4, 14])
def test_position_frequencies(grid):
    gen = BlockMaskGenerator.from_fractions(grid)
    n_draws = 4000
    freq = gen(n_draws, torch.Generator().manual_seed(2)).float().mean(dim=0).reshape(grid, grid)
    assert freq.mean() == pytest.approx(gen.num_masked / grid**2, abs=0.01)
    # Blocks are placed uniformly among the positions where they fit, so central patches are
    # covered more often than corners (BEiT's generator: on 14x14 ~4% of corners, ~70% of
    # centres). What must hold: every patch can be hidden, and the 8 symmetries of the square
    # (flips, transpose) leave the frequencies unchanged up to sampling noise.
    assert freq.min() > 0.02
    tol = 5 * math.sqrt(0.25 / n_draws)  # 5 binomial standard errors
    for sym in (freq.flip(0), freq.flip(1), freq.T, freq.flip(0).flip(1).T):
        assert (sym - freq).abs().max() < tol * 1.5
    if grid == 4:  # 20k images of this generator: corners 0.249, edges 0.363, centre 0.525
        edges = torch.cat([freq[0, 1:3], freq[3, 1:3], freq[1:3, 0], freq[1:3, 3]])
        assert freq[[0, 0, 3, 3], [0, 3, 0, 3]].mean() == pytest.approx(0.249, abs=0.02)
        assert edges.mean() == pytest.approx(0.363, abs=0.02)
        assert freq[1:3, 1:3].mean() == pytest.approx(0.525, abs=0.02)


def test_views_are_a_function_of_the_generator_and_split_by_rows():
    model = make_model(patch_gap=2)
    a = model.sample_views(6, torch.Generator().manual_seed(3))
    b = model.sample_views(6, torch.Generator().manual_seed(3))
    c = model.sample_views(6, torch.Generator().manual_seed(4))
    for x, y in ((a.mask, b.mask), (a.offsets, b.offsets), (a.target_aug.factors, b.target_aug.factors),
                 (a.target_aug.order, b.target_aug.order), (a.target_aug.blur_sigma, b.target_aug.blur_sigma)):
        assert torch.equal(x, y)
    assert not torch.equal(a.mask, c.mask)
    assert a.online_aug is None  # the paper perturbs the momentum branch only
    assert a.mask.shape == (6, G * G) and a.mask.dtype == torch.bool
    assert a.offsets.shape == (6, G * G, 2) and 0 <= a.offsets.min() and a.offsets.max() < 2
    rows = a.rows(slice(2, 5))
    assert isinstance(rows, ConMIMViews)
    assert torch.equal(rows.mask, a.mask[2:5]) and torch.equal(rows.offsets, a.offsets[2:5])
    for name in ("jitter", "factors", "order", "gray", "blur_sigma", "solarize"):
        assert torch.equal(getattr(rows.target_aug, name), getattr(a.target_aug, name)[2:5])
    moved = a.to("cpu")
    assert torch.equal(moved.mask, a.mask) and torch.equal(moved.target_aug.factors, a.target_aug.factors)
    plain = sample_block_views(3, model.masks, 0, torch.Generator().manual_seed(0))
    assert isinstance(plain, BlockMaskViews) and plain.offsets is None
    assert torch.equal(plain.rows(slice(1, 2)).mask, plain.mask[1:2])


# --------------------------------------------------------------------------------------------
# The perturbation
# --------------------------------------------------------------------------------------------


def test_perturbation_parameters_follow_the_paper():
    p = Perturbation.draw(20000, 16, torch.Generator().manual_seed(0))
    for flag, rate in ((p.jitter, 0.8), (p.gray, 0.2), (p.blur_sigma > 0, 0.1), (p.solarize, 0.2)):
        assert flag.float().mean() == pytest.approx(rate, abs=0.015)
    lo = torch.tensor([0.6, 0.6, 0.8, -0.1])
    hi = torch.tensor([1.4, 1.4, 1.2, 0.1])
    assert (p.factors >= lo).all() and (p.factors <= hi).all()
    assert torch.equal(p.order.sort(dim=1).values, torch.arange(4).expand(20000, 4))
    sigma = p.blur_sigma[p.blur_sigma > 0]
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0  # PIL radius U(0.1, 2) at 16-px patches
    half = Perturbation.draw(20000, 8, torch.Generator().manual_seed(0)).blur_sigma
    assert torch.allclose(half, p.blur_sigma / 2)  # scaled to the patch size


def test_colour_operations_equal_torchvision_per_image():
    x = torch.rand(6, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    f = torch.tensor([0.6, 0.85, 1.0, 1.2, 1.4, 0.7])
    h = torch.tensor([-0.1, -0.03, 0.0, 0.05, 0.1, 0.5])
    ops = torch.tensor([0, 1, 2, 2, 1, 0])
    tv_ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    expected = torch.stack([tv_ops[ops[i]](x[i], f[i].item()) for i in range(6)])
    assert torch.allclose(colour_blend(x, ops, f), expected, atol=1e-6)
    expected = torch.stack([TF.adjust_hue(x[i], h[i].item()) for i in range(6)])
    assert torch.allclose(adjust_hue(x, h), expected, atol=2e-6)
    x[0, :, :3, :3] = 0.4  # grays (hue 0, saturation 0) and black
    x[1, :, :3, :3] = 0.0
    assert torch.allclose(adjust_hue(x, h), torch.stack([TF.adjust_hue(x[i], h[i].item()) for i in range(6)]), atol=2e-6)
    assert torch.allclose(grayscale(x), TF.rgb_to_grayscale(x), atol=1e-6)
    one = x[:, :1]
    expected = torch.stack([one[i] if ops[i] == 2 else tv_ops[ops[i]](one[i], f[i].item()) for i in range(6)])
    assert torch.allclose(colour_blend(one, ops, f), expected, atol=1e-6)
    assert torch.equal(adjust_hue(one, h), one)


def test_blur_equals_a_direct_convolution():
    x = torch.rand(3, 2, 7, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigma = torch.tensor([0.4, 1.1, 0.0], dtype=torch.float64)
    got = gaussian_blur(x, sigma, max_sigma=1.2)
    radius = 4  # ceil(3 * 1.2)
    for b in range(2):
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-(taps**2) / (2 * sigma[b] ** 2))
        k = k / k.sum()
        for c in range(2):
            for i in range(7):
                for j in range(8):
                    acc = 0.0
                    for di in range(-radius, radius + 1):
                        for dj in range(-radius, radius + 1):
                            ii, jj = min(max(i + di, 0), 6), min(max(j + dj, 0), 7)  # replicated edges
                            acc += k[di + radius] * k[dj + radius] * x[b, c, ii, jj]
                    assert got[b, c, i, j].item() == pytest.approx(acc.item(), abs=1e-12)
    assert torch.allclose(got[2], x[2])  # sigma 0: no blur


def test_perturb_is_the_authors_pipeline_per_image():
    n = 40
    x = torch.rand(n, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    drawn = Perturbation.draw(n, 8, torch.Generator().manual_seed(3))
    # every operation on a good share of the images (blur std up to 1 px at 8-px patches)
    p = Perturbation(drawn.jitter, drawn.factors, drawn.order, torch.arange(n) % 5 == 0,
                     torch.where(torch.arange(n) % 3 == 0, 0.2 + drawn.factors[:, 0] / 2, 0.0),
                     torch.arange(n) % 4 == 1)
    got = perturb((x - mean) / std, p, mean, std, max_sigma=1.0) * std + mean
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for b in range(n):  # ColorJitter in the drawn order, RandomGrayscale, GaussianBlur, Solarization
        y = x[b]
        if p.jitter[b]:
            for j in p.order[b].tolist():
                y = ops[j](y, p.factors[b, j].item())
        if p.gray[b]:
            y = TF.rgb_to_grayscale(y, num_output_channels=3)
        if p.blur_sigma[b] > 0:
            y = gaussian_blur(y[None], p.blur_sigma[b:b + 1], 1.0)[0]
        if p.solarize[b]:
            y = torch.where(y >= 128 / 255, 1 - y, y)
        assert torch.allclose(got[b], y, atol=1e-5), b
    off = torch.zeros(n, dtype=torch.bool)
    nothing = Perturbation(off, p.factors, p.order, off, torch.zeros(n), off)  # no operation drawn
    z = (x - mean) / std
    assert torch.allclose(perturb(z, nothing, mean, std, 1.0), z, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------


def test_online_branch_is_the_encoder_on_mask_tokens_before_positions():
    model = make_model()
    imgs = make_imgs(model)
    views = model.sample_views(4, torch.Generator().manual_seed(0))
    online, _ = model.features(imgs, views)
    # Independently: timm's conv patch embedding on the raw (unperturbed) image, the hidden
    # embeddings swapped for the mask token, then the positions, the blocks, the norm, the head.
    enc = model.encoder
    x = enc.patch_embed(imgs)  # (B, N, D)
    x = torch.where(views.mask[..., None], model.mask_token.expand_as(x), x) + enc.pos_embed[:, 1:]
    x = torch.cat([(enc.cls_token + enc.pos_embed[:, :1]).expand(4, -1, -1), x], dim=1)
    for blk in enc.blocks:
        x = blk(x)
    expected = model.projector(enc.norm(x))[:, 1:]
    assert torch.allclose(online, expected, atol=1e-5)


def test_target_branch_is_the_momentum_network_on_the_perturbed_full_image():
    model = make_model(patch_gap=2)
    with torch.no_grad():
        for p in model.target_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    imgs = make_imgs(model)
    views = model.sample_views(4, torch.Generator().manual_seed(1))
    online, target = model.features(imgs, views)
    pert = perturb(imgs, views.target_aug, model.pixel_mean, model.pixel_std, model.max_blur_sigma)
    ids = all_ids(4, G)
    patches = gather_patches(pert, ids, views.offsets, G, P, 2)
    expected = model.target_projector(model.target_encoder.forward_patches(patches, ids))[:, 1:]
    assert torch.allclose(target, expected, atol=1e-5)
    assert not target.requires_grad
    # the online branch does not see the perturbation
    plain = ConMIMViews(views.masks, None, None)
    assert torch.allclose(model.features(imgs, plain)[0], online, atol=1e-6)


def test_loss_equals_a_loop_over_masked_positions():
    torch.manual_seed(0)
    q, k = torch.randn(3, 6, 5, dtype=torch.float64), torch.randn(3, 6, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 0], [1, 1, 0, 1, 1, 1]], dtype=torch.bool)
    terms = []
    for b in range(3):
        for i in range(6):
            if not mask[b, i]:
                continue
            sims = [float(q[b, i] @ k[b, j] / (q[b, i].norm() * k[b, j].norm())) / 0.1 for j in range(6)]
            terms.append(-sims[i] + math.log(sum(math.exp(s) for s in sims)))
    expected = sum(terms) / len(terms)  # mean over every masked position of the batch
    assert denoising_contrast_loss(q, k, mask, 0.1).item() == pytest.approx(expected, rel=1e-12)


def test_forward_gradients_and_metrics():
    model = make_model()
    imgs = make_imgs(model)
    views = model.sample_views(4, torch.Generator().manual_seed(2))
    loss, metrics = model(imgs, views)
    online, target = model.features(imgs, views)
    assert loss.item() == pytest.approx(denoising_contrast_loss(online, target, views.mask, 0.1).item(), rel=1e-6)
    assert set(metrics) == {"loss_pred", "avg_sim_pred", "avg_sim_vis", "avg_sim_trg"}
    assert all(not v.requires_grad and v.ndim == 0 for v in metrics.values())
    loss.backward()
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    assert all(not p.requires_grad and p.grad is None for p in model.target_encoder.parameters())
    assert all(not p.requires_grad and p.grad is None for p in model.target_projector.parameters())


def test_masked_similarity_is_avg_similarity_per_image():
    x = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(0))
    keep = torch.tensor([[1, 1, 0, 0, 1, 0, 1], [0, 1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    expected = torch.stack([avg_similarity(x[b:b + 1, keep[b]]) for b in range(3)]).mean()
    assert masked_avg_similarity(x, keep).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ema_update_is_exact_and_leaves_batchnorm_statistics():
    model = make_model()
    with torch.no_grad():
        for p in list(model.target_encoder.parameters()) + list(model.target_projector.parameters()):
            p.add_(torch.randn_like(p))
    online = {**{f"e.{n}": p.detach().clone() for n, p in model.encoder.named_parameters()},
              **{f"p.{n}": p.detach().clone() for n, p in model.projector.named_parameters()}}
    before = {**{f"e.{n}": p.detach().clone() for n, p in model.target_encoder.named_parameters()},
              **{f"p.{n}": p.detach().clone() for n, p in model.target_projector.named_parameters()}}
    stats = {n: b.clone() for n, b in model.target_projector.named_buffers()}
    model.update_target(0.7)
    after = {**{f"e.{n}": p for n, p in model.target_encoder.named_parameters()},
             **{f"p.{n}": p for n, p in model.target_projector.named_parameters()}}
    assert set(after) == set(online) and len(after) > 10
    for name, value in after.items():
        assert torch.allclose(value, 0.7 * before[name] + 0.3 * online[name], atol=1e-6), name
    for name, value in model.target_projector.named_buffers():
        assert torch.equal(value, stats[name])


def test_modes_of_the_momentum_network_and_its_projector():
    model = make_model().train()
    assert not model.target_encoder.training and model.target_projector.training  # BN: batch statistics
    model.eval()
    assert not model.target_projector.training and not model.projector.training
    model.train()
    assert model.encoder.training and model.projector.training


def test_target_modes():
    ema, same = make_model(), make_model(target_mode="stopgrad")
    same.load_state_dict({k: v for k, v in ema.state_dict().items() if not k.startswith("target_")})
    imgs = make_imgs(ema)
    views = ema.sample_views(4, torch.Generator().manual_seed(5))
    # a fresh momentum copy equals the online network: stop-gradient gives the same loss
    assert ema(imgs, views)[0].item() == pytest.approx(same(imgs, views)[0].item(), rel=1e-5)
    assert same.target_encoder is None
    same.update_target(0.5)  # no-op
    naive = make_model(target_mode="naive")
    naive.load_state_dict(same.state_dict())
    g_stop = torch.autograd.grad(same(imgs, views)[0], same.encoder.blocks[0].mlp.fc1.weight)[0]
    g_naive = torch.autograd.grad(naive(imgs, views)[0], naive.encoder.blocks[0].mlp.fc1.weight)[0]
    assert not torch.allclose(g_stop, g_naive)  # gradients also flow through the targets
    with pytest.raises(ValueError):
        make_model(target_mode="independent")
    with pytest.raises(ValueError):
        make_model(perturb="strong")


def test_perturb_modes():
    for mode, online, target in (("target", False, True), ("online", True, False), ("both", True, True),
                                 ("none", False, False)):
        views = make_model(perturb=mode).sample_views(2, torch.Generator().manual_seed(0))
        assert (views.online_aug is not None, views.target_aug is not None) == (online, target)


def test_forward_without_views_is_seeded_and_uses_the_gap():
    a, b = make_model(seed=3, patch_gap=2), make_model(seed=3, patch_gap=2)
    imgs = make_imgs(a)
    loss_a, _ = a(imgs)
    loss_b, _ = b(imgs)
    assert torch.isfinite(loss_a) and loss_a.item() == pytest.approx(loss_b.item(), rel=1e-6)
    loss_a.backward()
    views = a.sample_views(4, torch.Generator().manual_seed(0))
    moved = ConMIMViews(BlockMaskViews(views.mask, (views.offsets + 1) % 2), None, views.target_aug)
    assert a(imgs, views)[0].item() != pytest.approx(a(imgs, moved)[0].item(), rel=1e-6)
