"""Target modes, EMA and the forward of Latent MIM on a tiny model."""

import math

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import sample_views
from latentmim.methods.ema import ema_momentum, ema_update, paired_parameters
from latentmim.methods.factory import build_model

# The model part of the tiny test configuration (tests/conftest.py has the full run).
TINY = ["embed_dim=32", "depth=2", "num_heads=2", "patch_size=4", "grid_size=4", "patch_gap=2",
        "num_vis=4", "decoder_embed_dim=16", "decoder_num_heads=2", "decoder_depth=1",
        "proj.mlp_dim=32", "proj.mlp_depth=2"]


def tiny_model(*extra):
    cfg = compose_config([*TINY, *extra])
    torch.manual_seed(0)
    return build_model(cfg, in_chans=3), cfg


def run_forward(model, cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randn(3, 3, cfg.train_size, cfg.train_size, generator=g)
    views = sample_views(3, cfg.grid_size, cfg.num_vis, cfg.patch_gap, g)
    return model(imgs, views)


@pytest.mark.parametrize("mode,target_gets_grad", [("naive", True), ("independent", True),
                                                   ("stopgrad", False), ("ema", False)])
def test_gradient_reaches_target_only_in_naive_and_independent(mode, target_gets_grad):
    model, cfg = tiny_model(f"target_mode={mode}", "avg_sim_coeff=0")
    loss, _ = run_forward(model, cfg)
    loss.backward()
    if mode in ("naive", "stopgrad"):
        assert model.target_encoder is None
        # Reference: the same loss with the targets computed beforehand and detached by hand.
        ref, _ = tiny_model(f"target_mode={mode}", "avg_sim_coeff=0")
        ref.load_state_dict(model.state_dict())
        g = torch.Generator().manual_seed(0)
        imgs = torch.randn(3, 3, cfg.train_size, cfg.train_size, generator=g)
        views = sample_views(3, cfg.grid_size, cfg.num_vis, cfg.patch_gap, g)
        patches = gather_patches(imgs, views.perm, views.offsets, 4, 4, cfg.patch_gap)
        with torch.no_grad():
            fixed = ref.targets(patches, views).clone()
        tokens = ref.projector(ref.encoder.forward_patches(patches[:, :cfg.num_vis], views.vis_ids))
        pred = ref.decoder(tokens, views.vis_ids, views.trg_ids)
        ref.loss_fn(pred, fixed).backward()  # avg_sim_coeff=0: the loss is the prediction loss
        g_model = model.encoder.blocks[-1].mlp.fc2.weight.grad
        g_ref = ref.encoder.blocks[-1].mlp.fc2.weight.grad
        assert torch.allclose(loss, ref.loss_fn(pred, fixed))
        if target_gets_grad:  # naive: the gradient also flows through the targets
            assert not torch.allclose(g_model, g_ref, atol=1e-7)
        else:  # stop-grad: exactly the detached-target gradient
            torch.testing.assert_close(g_model, g_ref, rtol=1e-5, atol=1e-7)
    else:
        for net in (model.target_encoder, model.target_projector):
            grads = [p.grad for p in net.parameters()]
            has = any(g is not None and g.abs().sum() > 0 for g in grads)
            assert has == target_gets_grad
            assert all(p.requires_grad == target_gets_grad for p in net.parameters())


def test_ema_m1_keeps_and_m0_copies():
    model, cfg = tiny_model()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
        for p in model.projector.parameters():
            p.add_(torch.randn_like(p))
    pairs = [(model.target_encoder, model.encoder), (model.target_projector, model.projector)]
    before = [{k: v.clone() for k, v in t.state_dict().items()} for t, _ in pairs]
    model.update_target(1.0)
    for (t, _), b in zip(pairs, before, strict=False):
        assert all(torch.equal(b[k], v) for k, v in t.state_dict().items())
    model.update_target(0.0)
    for t, o in pairs:
        online = o.state_dict()
        assert all(torch.equal(online[k], v) for k, v in t.state_dict().items())


def test_ema_update_formula_and_momentum_schedule():
    t, o = [torch.full((3,), 2.0)], [torch.full((3,), 4.0)]
    ema_update(t, o, 0.75)
    assert torch.allclose(t[0], torch.full((3,), 0.75 * 2 + 0.25 * 4))
    assert ema_momentum(0.99, 0.0) == pytest.approx(0.99)
    assert ema_momentum(0.99, 0.5) == pytest.approx(0.995)
    assert ema_momentum(0.99, 1.0) == pytest.approx(1.0)


def test_shallow_target_pairs_with_first_blocks():
    model, cfg = tiny_model("target_depth=1")
    assert len(model.target_encoder.blocks) == 1
    t, o = paired_parameters(model.target_encoder, model.encoder)
    assert len(t) == len(o) and o[0] is model.encoder.cls_token
    loss, metrics = run_forward(model, cfg)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("extra", [[], ["mask_target=False"], ["decoder_type=self"], ["proj.mlp_depth=0"],
                                   ["avg_vis_mask_token=False"], ["loss=mse"], ["loss=huber"], ["loss=l1"],
                                   ["loss=norm_l2"], ["avg_sim_coeff=0.1"], ["mask_ratio=0.75"]])
def test_every_switch_trains(extra):
    from torch import nn

    from latentmim.losses import build_latent_loss
    from latentmim.masking.views import num_visible
    from latentmim.models.decoder import CrossAttentionDecoder, SelfAttentionDecoder

    model, cfg = tiny_model(*extra)
    loss, metrics = run_forward(model, cfg)
    loss.backward()
    assert torch.isfinite(loss)
    assert set(metrics) == {"loss_pred", "avg_sim_pred", "avg_sim_vis", "avg_sim_trg", "sim_goal"}
    assert all(0 <= metrics[k] <= 1 + 1e-5 for k in ("avg_sim_pred", "avg_sim_vis", "avg_sim_trg"))
    # each switch has its effect
    assert isinstance(model.decoder, SelfAttentionDecoder if cfg.decoder_type == "self" else CrossAttentionDecoder)
    assert isinstance(model.projector, nn.Identity) == (cfg.proj.mlp_depth == 0)
    assert model.decoder.visual_cues == cfg.avg_vis_mask_token and model.mask_target == cfg.mask_target
    assert num_visible(16, cfg.num_vis, cfg.mask_ratio) == (4 if cfg.mask_ratio in (None, 0.75) else None)
    # loss_pred is the named loss of (predictions, targets), recomputed outside the model
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(3, 3, cfg.train_size, cfg.train_size, generator=g)
    views = sample_views(3, cfg.grid_size, cfg.num_vis, cfg.patch_gap, g)
    with torch.no_grad():
        patches = gather_patches(imgs, views.perm, views.offsets, 4, 4, cfg.patch_gap)
        tokens = model.projector(model.encoder.forward_patches(patches[:, :cfg.num_vis], views.vis_ids))
        pred = model.decoder(tokens, views.vis_ids, views.trg_ids)
        named = build_latent_loss(cfg.loss, tau=cfg.tau, huber_delta=cfg.huber_delta)(pred, model.targets(patches, views))
    torch.testing.assert_close(metrics["loss_pred"], named)


def test_similarity_regulariser_adds_exact_penalty():
    model, cfg = tiny_model("avg_sim_coeff=0.3", "sim_init=0.8", "sim_end=0.2")
    model.set_progress(0.5)  # halfway along the cosine: g = (0.8 + 0.2) / 2
    loss, m = run_forward(model, cfg)
    assert m["sim_goal"].item() == pytest.approx(0.5)
    expected = m["loss_pred"] + 0.3 * ((m["avg_sim_pred"] - 0.5) ** 2 + (m["avg_sim_vis"] - 0.5) ** 2)
    assert torch.allclose(loss.detach(), expected, atol=1e-6)


def test_the_similarity_goal_follows_the_run_like_the_paper_schedule():
    model, _ = tiny_model("sim_init=0.75", "sim_end=0.25")
    goals = []
    for progress in (0.0, 0.25, 1.0):
        model.set_progress(progress)
        goals.append(model.sim_goal)
    assert goals == pytest.approx([0.75, 0.25 + 0.5 * 0.5 * (1 + math.cos(math.pi / 4)), 0.25])


def test_views_are_drawn_inside_forward_when_not_given():
    model, cfg = tiny_model()
    imgs = torch.randn(3, 3, cfg.train_size, cfg.train_size, generator=torch.Generator().manual_seed(0))
    loss, metrics = model(imgs)  # the method's own generator, seeded by env.seed
    assert loss.ndim == 0 and torch.isfinite(loss)
    # the same as passing the first views of a generator seeded like the method's
    again, _ = tiny_model()
    views = again.sample_views(3, torch.Generator().manual_seed(cfg.env.seed))
    torch.testing.assert_close(again(imgs, views)[0], loss)


def test_mask_target_false_sees_all_patches():
    model, cfg = tiny_model("mask_target=False")
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(2, 3, cfg.train_size, cfg.train_size, generator=g)
    views = sample_views(2, cfg.grid_size, cfg.num_vis, cfg.patch_gap, g)
    patches = gather_patches(imgs, views.perm, views.offsets, 4, 4, 2)
    z = model.targets(patches, views)
    assert z.shape == (2, 16 - 4, 32)
    # changing a visible patch changes the targets (they attend to it), unlike mask_target=True
    patches2 = patches.clone()
    patches2[:, 0] += 1.0
    assert not torch.allclose(z, model.targets(patches2, views))
    model_m, _ = tiny_model()
    assert torch.allclose(model_m.targets(patches, views), model_m.targets(patches2, views))
