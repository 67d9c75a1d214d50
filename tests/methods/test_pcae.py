"""PCAE: tokens kept per stage, least-similar ranking vs a brute force, seeded random drop, loss."""

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import num_visible, sample_views
from latentmim.methods.factory import build_model, target_momentum
from latentmim.methods.pcae import PCAE
from latentmim.methods.token_drop import drop_schedule, rank_keep

# ViT-B's token counts on a tiny model: 14x14 grid (196 patches, 2-px grayscale patches),
# 75% masked -> 147 targets, 12 blocks of width 16.
VITB_GRID = ["method=pcae", "embed_dim=16", "depth=12", "num_heads=2", "patch_size=2", "grid_size=14",
             "patch_gap=0", "mask_ratio=0.75", "decoder_embed_dim=16", "decoder_num_heads=2", "decoder_depth=1"]


def make(*extra, seed=0):
    cfg = compose_config([*VITB_GRID, *extra, f"env.seed={seed}"])
    torch.manual_seed(0)
    return build_model(cfg, in_chans=1), cfg


@pytest.fixture(scope="module")
def base():
    return make()


def variant(base_model, case=1, random_drop=False, seed=0):
    """Another PCAE on copies of the same networks (no config round trip)."""
    return PCAE(copy.deepcopy(base_model.encoder), copy.deepcopy(base_model.decoder),
                drop_schedule(12, 0.5, case), random_drop=random_drop, seed=seed)


def batch(cfg, seed=0, b=2):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randn(b, 1, cfg.train_size, cfg.train_size, generator=g)
    views = sample_views(b, cfg.grid_size, num_visible(196, cfg.num_vis, cfg.mask_ratio), 0, g)
    return imgs, views


def test_drop_cases_for_twelve_blocks():
    assert drop_schedule(12, 0.5, case=1) == [(0, 0.5), (4, 0.5), (8, 0.5)]
    assert drop_schedule(12, 0.5, case=2) == [(3, 0.5), (7, 0.5), (11, 0.5)]
    assert drop_schedule(12, 0.5, case=3) == [(0, 0.5), (5, 0.5), (11, 0.5)]
    assert drop_schedule(12, 0.5, case=4) == [(0, 0.5), (1, 0.5), (2, 0.5)]
    assert drop_schedule(12, 0.5, case=5) == [(11, 0.125)]
    assert drop_schedule(12, 0.5, blocks=[6, 2]) == [(2, 0.5), (6, 0.5)]


def test_keeps_147_73_36_18_tokens_like_vit_b(base):
    model, cfg = base
    assert isinstance(model, PCAE) and target_momentum(cfg) == 0.9999
    imgs, views = batch(cfg)
    loss, metrics = model(imgs, views)
    assert views.trg_ids.shape[1] == 147
    assert [metrics[f"pcae_kept_stage{i}"].item() for i in (1, 2, 3)] == [73, 36, 18]
    patches = gather_patches(imgs, views.perm, None, 14, 2, 0)
    target, kept, counts = model.compressed_targets(patches[:, 49:], views.trg_ids)
    assert counts == [73, 36, 18] and target.shape == (2, 18, 16) and kept.shape == (2, 18)
    # survivors are distinct hidden patches
    for b in range(2):
        assert len(set(kept[b].tolist())) == 18
        assert set(kept[b].tolist()) <= set(views.trg_ids[b].tolist())


def _brute_force_targets(model, patches, ids, drop_after):
    """The target encoder re-run by hand, ranking tokens with Python loops."""
    enc = model.target_encoder
    x, ids = enc.embed_patches(patches, ids, cls=False), ids.clone()
    for i, blk in enumerate(enc.blocks):
        x = blk(x)
        if i not in drop_after:
            continue
        n = x.shape[1]
        k = n // 2
        new_x, new_ids = [], []
        for b in range(x.shape[0]):
            unit = [x[b, j] / x[b, j].norm() for j in range(n)]
            mean = sum(unit) / n
            sims = [float(u @ mean / mean.norm()) for u in unit]  # cosine to the mean token
            order = sorted(range(n), key=lambda j: sims[j])[:k]  # the k least similar
            new_x.append(x[b, order])
            new_ids.append(ids[b, order])
        x, ids = torch.stack(new_x), torch.stack(new_ids)
    z = enc.norm(x)
    z = (z - z.mean(-1, keepdim=True)) / (z.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
    return z, ids


@pytest.mark.parametrize("case,blocks", [(1, (0, 4, 8)), (2, (3, 7, 11))])
def test_keeps_the_least_similar_tokens_like_a_brute_force_ranking(base, case, blocks):
    model, cfg = variant(base[0], case), base[1]
    with torch.no_grad():  # perturb the target so it is not a copy of the online encoder
        for p in model.target_encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    imgs, views = batch(cfg, seed=3)
    patches = gather_patches(imgs, views.perm, None, 14, 2, 0)
    target, kept, _ = model.compressed_targets(patches[:, 49:], views.trg_ids)
    with torch.no_grad():
        ref_target, ref_kept = _brute_force_targets(model, patches[:, 49:], views.trg_ids, blocks)
    assert torch.equal(kept, ref_kept)
    assert torch.allclose(target, ref_target, atol=1e-4)


def test_rank_keep_on_a_hand_made_case():
    # tokens 0-2 point the same way, token 3 is orthogonal: it is the most distinctive
    x = torch.tensor([[[1.0, 0.0], [2.0, 0.1], [1.0, -0.1], [0.0, 1.0]]])
    assert rank_keep(x, 1).tolist() == [[3]]
    assert rank_keep(x, 2)[0, 0].item() == 3


def test_random_drop_is_seeded_and_differs_from_ranking(base):
    kept = {}
    cfg = base[1]
    imgs, views = batch(cfg)
    for name, seed, rd in [("rd0", 0, True), ("rd0b", 0, True), ("rd1", 1, True), ("rank", 0, False)]:
        model = variant(base[0], random_drop=rd, seed=seed)
        patches = gather_patches(imgs, views.perm, None, 14, 2, 0)
        kept[name] = model.compressed_targets(patches[:, 49:], views.trg_ids)[1]
        if name == "rd0":  # each training draw uses a new seed, so consecutive steps differ
            assert model.drop_draws.item() == 3 and "drop_draws" in model.state_dict()
            assert not torch.equal(kept[name], model.compressed_targets(patches[:, 49:], views.trg_ids)[1])
    assert torch.equal(kept["rd0"], kept["rd0b"])
    assert not torch.equal(kept["rd0"], kept["rd1"])
    assert not torch.equal(kept["rd0"], kept["rank"])


def test_loss_is_one_minus_cosine_on_retained_tokens_and_ema_moves_target():
    model, cfg = make("pcae.keep=0.25", "pcae.drop_blocks=[1,5]")
    imgs, views = batch(cfg)
    loss, metrics = model(imgs, views)
    assert [metrics["pcae_kept_stage1"].item(), metrics["pcae_kept_stage2"].item()] == [36, 9]
    patches = gather_patches(imgs, views.perm, None, 14, 2, 0)
    target, kept, _ = model.compressed_targets(patches[:, 49:], views.trg_ids)
    tokens = model.encoder.forward_patches(patches[:, :49], views.vis_ids)
    pred = model.decoder(tokens, views.vis_ids, kept)  # mask tokens at the retained positions only
    cos = [F.cosine_similarity(pred[b, j], target[b, j], dim=0) for b in range(2) for j in range(9)]
    assert loss.item() == pytest.approx(1 - (sum(cos) / len(cos)).item(), abs=1e-6)
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    with torch.no_grad():
        model.encoder.cls_token.add_(1.0)
    t0 = model.target_encoder.cls_token.clone()
    model.update_target(0.75)
    assert torch.allclose(model.target_encoder.cls_token, 0.75 * t0 + 0.25 * model.encoder.cls_token)


def test_engine_logs_tokens_kept_per_stage(tiny):
    cfg = compose_config([*tiny, "method=pcae", "depth=3", "mask_ratio=0.75", "epochs=1", "warmup_epochs=0",
                          "log.print_freq=1", "log.curves=false"])
    pretrain(cfg)
    records = [json.loads(line) for line in (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()]
    # 4x4 grid, 12 hidden patches: 6 -> 3 -> 1 (floor of half, at least one)
    assert [(r["pcae_kept_stage1"], r["pcae_kept_stage2"], r["pcae_kept_stage3"]) for r in records] == [(6, 3, 1)] * 6
