"""MAE: the pixel loss by hand, and the targets are the hidden patches of the same (gapped) cut."""

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.masking.views import Views
from latentmim.methods.factory import build_model, target_momentum
from latentmim.methods.mae import MAE, mae_loss, normalize_patches
from latentmim.models.decoder import SelfAttentionDecoder

# 2x2 grid of 2-px patches, gap 2 (offsets 0 or 1) -> 8x8 training crops, one grayscale channel.
SMALL = ["method=mae", "embed_dim=8", "depth=1", "num_heads=2", "patch_size=2", "grid_size=2", "patch_gap=2",
         "num_vis=1", "decoder_embed_dim=8", "decoder_num_heads=2", "decoder_depth=1"]


def test_norm_pix_of_one_patch_by_hand():
    # [1, 2, 3, 4]: mean 2.5, unbiased variance 5/3 (MAE uses torch's default var)
    got = normalize_patches(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), eps=0.0)
    std = (5 / 3) ** 0.5
    assert torch.allclose(got, torch.tensor([[[-1.5 / std, -0.5 / std, 0.5 / std, 1.5 / std]]]))


def test_mae_loss_by_hand():
    target = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 6.0]]])  # (B=1, T=2, 4 pixels)
    pred = torch.zeros_like(target)
    # raw pixels: mean of squares over 8 numbers = (1+4+9+16 + 4+4+4+36) / 8
    assert mae_loss(pred, target, norm_pix=False).item() == pytest.approx(78 / 8)
    # normalised pixels of each patch have sum of squares n-1 = 3 (unbiased variance), so a zero
    # prediction costs 3/4 per patch, up to the 1e-6 added to the variance
    assert mae_loss(pred, target, norm_pix=True).item() == pytest.approx(0.75, rel=1e-5)
    # a perfect prediction costs nothing
    assert mae_loss(normalize_patches(target), target).item() == pytest.approx(0.0, abs=1e-10)


def _hand_patch(img, pid, offsets, g=2, p=2, gap=2):
    """Pixels of patch ``pid`` cut by hand: cell (row, col) of side p+gap, patch at its offset."""
    row, col = divmod(pid, g)
    dy, dx = offsets[pid]
    top, left = row * (p + gap) + dy, col * (p + gap) + dx
    return torch.tensor([img[0, 0, top + i, left + j].item() for i in range(p) for j in range(p)])


@pytest.mark.parametrize("norm_pix", [True, False])
def test_forward_loss_uses_the_hidden_patches_of_the_gapped_cut(norm_pix):
    cfg = compose_config([*SMALL, f"mae.norm_pix_loss={norm_pix}"])
    torch.manual_seed(0)
    model = build_model(cfg, in_chans=1)
    assert isinstance(model, MAE) and isinstance(model.decoder, SelfAttentionDecoder)
    assert not model.decoder.visual_cues and model.decoder.head.out_features == 4  # P*P*C pixels
    img = torch.arange(64.0).reshape(1, 1, 8, 8) / 10
    perm = torch.tensor([[2, 0, 3, 1]])  # patch 2 visible, 0, 3, 1 hidden
    offsets = torch.tensor([[[0, 1], [1, 0], [1, 1], [0, 0]]])
    views = Views(perm, 1, offsets)
    loss, metrics = model(img, views)

    hidden = torch.stack([_hand_patch(img, pid, offsets[0].tolist()) for pid in (0, 3, 1)])  # (3, 4)
    visible = _hand_patch(img, 2, offsets[0].tolist())[None, None]
    tokens = model.encoder.forward_patches(visible, torch.tensor([[2]]))
    pred = model.decoder(tokens, torch.tensor([[2]]), torch.tensor([[0, 3, 1]]))[0]  # (3, 4)
    expected = 0.0
    for t in range(3):
        x = hidden[t]
        if norm_pix:
            mean = sum(x.tolist()) / 4
            var = sum((v - mean) ** 2 for v in x.tolist()) / 3
            x = (x - mean) / (var + 1e-6) ** 0.5
        expected += ((pred[t] - x) ** 2).sum().item() / 4
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)
    assert set(metrics) == {"loss_pred", "avg_sim_vis"}


def test_mae_trains_encoder_and_decoder_and_has_no_target():
    cfg = compose_config([*SMALL, "mask_ratio=0.75"])
    model = build_model(cfg, in_chans=3)
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(2, 3, 8, 8, generator=g)
    views = Views(torch.rand(2, 4, generator=g).argsort(1), 1, torch.randint(0, 2, (2, 4, 2), generator=g))
    loss, _ = model(imgs, views)
    loss.backward()
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.decoder.head.weight.grad.abs().sum() > 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.update_target(0.5)  # no target network: nothing changes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name,method,depth,momentum", [("mae", "mae", 8, 0.99), ("pcae", "pcae", 8, 0.9999),
                                                         ("data2vec", "data2vec", 3, 0.9998)])
def test_named_method_configs_hold_the_papers_settings(name, method, depth, momentum):
    cfg = compose_config([], config_name=name)
    assert (cfg.method, cfg.decoder_depth, cfg.encoder, cfg.patch_gap) == (method, depth, "vit_base", 0)
    assert cfg.mask_ratio == (0.8 if method == "data2vec" else 0.75)
    assert target_momentum(cfg) == momentum
