"""data2vec-style baseline: teacher targets by hand, whole-image teacher, conv decoder placement."""

from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.masking.patchify import gather_patches
from latentmim.masking.views import sample_views
from latentmim.methods.data2vec import Data2Vec, instance_norm_tokens
from latentmim.methods.data2vec_decoder import ConvDecoder
from latentmim.methods.factory import build_model
from latentmim.runtime.checkpoint import load_checkpoint

SMALL = ["method=data2vec", "embed_dim=16", "depth=3", "num_heads=2", "patch_size=2", "grid_size=4",
         "patch_gap=0", "num_vis=4", "decoder_embed_dim=8", "data2vec.decoder_groups=4", "data2vec.top_k=2",
         "data2vec.decoder_layers=2"]


@pytest.fixture(scope="module")
def setup():
    cfg = compose_config(SMALL)
    torch.manual_seed(0)
    model = build_model(cfg, in_chans=1)
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(2, 1, 8, 8, generator=g)
    views = sample_views(2, 4, 4, 0, g)
    with torch.no_grad():  # a teacher that is not a copy of the student
        for p in model.target_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model, imgs, views


def test_instance_norm_over_tokens_by_hand():
    x = torch.tensor([[[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]]])  # (B=1, N=3, D=2)
    got = instance_norm_tokens(x, eps=0.0)
    # channel 0: mean 3, biased var 8/3; channel 1: mean 12, biased var 8
    s0, s1 = (8 / 3) ** 0.5, 8**0.5
    assert torch.allclose(got, torch.tensor([[[-2 / s0, -2 / s1], [0.0, -2 / s1], [2 / s0, 4 / s1]]]))


def test_teacher_target_is_the_mean_of_normalised_top_k_blocks(setup):
    model, imgs, views = setup
    assert isinstance(model, Data2Vec) and isinstance(model.decoder, ConvDecoder) and model.top_k == 2
    patches = gather_patches(imgs, views.perm, None, 4, 2, 0)
    target = model.teacher_targets(patches, views.perm)
    # by hand: run the teacher on all 16 patches, keep blocks 2 and 3 (top 2 of 3), standardise
    # every channel over the 16 patch tokens with explicit sums, average the two
    t = model.target_encoder
    with torch.no_grad():
        x = t.embed_patches(patches, views.perm)
        outs = []
        for blk in t.blocks:
            x = blk(x)
            outs.append(x[:, 1:])
    expected = torch.zeros_like(target)
    for out in outs[-2:]:
        n = out.shape[1]
        mean = out.sum(dim=1, keepdim=True) / n
        var = ((out - mean) ** 2).sum(dim=1, keepdim=True) / n
        expected += (out - mean) / (var + 1e-5).sqrt() / 2
    assert torch.allclose(target, expected, atol=1e-5)


def test_forward_is_l2_on_hidden_positions_and_teacher_sees_whole_image(setup):
    model, imgs, views = setup
    loss, metrics = model(imgs, views)
    patches = gather_patches(imgs, views.perm, None, 4, 2, 0)
    tokens = model.encoder.forward_patches(patches[:, :4], views.vis_ids)
    pred = model.decoder(tokens[:, 1:], views.vis_ids, views.trg_ids)
    target = model.teacher_targets(patches, views.perm)[:, 4:]
    assert loss.item() == pytest.approx(((pred - target) ** 2).mean().item(), rel=1e-5)
    assert set(metrics) == {"loss_pred", "avg_sim_pred", "avg_sim_vis", "avg_sim_trg"}
    # the teacher attends to the visible patches too: changing one changes the hidden targets
    changed = patches.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(target, model.teacher_targets(changed, views.perm)[:, 4:])
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())


def test_conv_decoder_reads_the_grid_in_raster_order():
    torch.manual_seed(0)
    dec = ConvDecoder(in_dim=4, out_dim=3, grid_size=4, embed_dim=4, layers=1, kernel=3, groups=1)
    tokens = torch.randn(1, 2, 4)
    vis = torch.tensor([[0, 15]])  # top-left and bottom-right corners
    trg = torch.tensor([[1, 14, 10]])  # right of 0, left of 15, one step diagonal from 15
    out = dec(tokens, vis, trg)
    moved = tokens.clone()
    moved[0, 0] += 5.0  # only the token at id 0 changes
    out2 = dec(moved, vis, trg)
    changed = (out - out2).abs().sum(-1)[0] > 1e-6
    # a 3x3 conv reaches cell 1 (next to id 0), not cells 14 and 10 (next to id 15)
    assert changed.tolist() == [True, False, False]
    # without layers every hidden cell is the mask token: identical predictions
    flat = ConvDecoder(4, 3, 4, embed_dim=4, layers=0, groups=1)(tokens, vis, trg)
    assert torch.allclose(flat[0, 0], flat[0, 1]) and torch.allclose(flat[0, 1], flat[0, 2])


def test_data2vec_trains_through_the_engine(tiny):
    cfg = compose_config([*tiny, "method=data2vec", "data2vec.decoder_groups=4", "data2vec.top_k=2", "epochs=1",
                          "warmup_epochs=0", "log.curves=false", "target_mom=0.5"])
    results = pretrain(cfg)
    assert 0 <= results["trained"]["nn_loo"] <= 100
    state = load_checkpoint(Path(cfg.run_dir) / "checkpoint_latest.pth")["model"]
    # the teacher followed the student (momentum 0.5 -> 1 over one epoch), it is not its initial copy
    key = "blocks.0.attn.qkv.weight"
    assert not torch.equal(state[f"target_encoder.{key}"], state[f"encoder.{key}"])
    torch.manual_seed(0)
    init = build_model(cfg, in_chans=3).target_encoder.state_dict()[key]
    assert not torch.equal(state[f"target_encoder.{key}"], init)
