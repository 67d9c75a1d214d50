"""Our encoder is timm's ViT: strict state-dict load and identical features."""

import pytest
import timm
import torch

from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.vit import VIT_PRESETS, build_encoder


def test_vit_small_loads_in_timm_strictly_and_matches_features():
    torch.manual_seed(0)
    ours = build_encoder("vit_small", grid_size=14, patch_size=16).eval()
    theirs = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).eval()
    result = theirs.load_state_dict(ours.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a = ours.forward_patches(patchify(x, 16), all_ids(2, 14))
        b = theirs.forward_features(x)
        assert torch.allclose(a, b, atol=1e-4)
        # cls-token image embedding (timm's forward) agrees too
        assert torch.allclose(a[:, 0], theirs(x), atol=1e-4)


def test_token_order_does_not_matter():
    torch.manual_seed(0)
    enc = build_encoder("vit_tiny", grid_size=4, patch_size=4, depth=2).eval()
    x = torch.randn(1, 3, 16, 16)
    p, ids = patchify(x, 4), all_ids(1, 4)
    perm = torch.randperm(16)
    with torch.no_grad():
        a = enc.forward_patches(p, ids)[:, 1:]
        b = enc.forward_patches(p[:, perm], ids[:, perm])[:, 1:]
    assert torch.allclose(a[:, perm], b, atol=1e-5)


@pytest.mark.parametrize("name", list(VIT_PRESETS))
def test_presets_have_the_standard_sizes(name):
    size = VIT_PRESETS[name]
    timm_name = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224",
                 "vit_base": "vit_base_patch16_224", "vit_large": "vit_large_patch16_224",
                 "vit_huge": "vit_huge_patch14_224"}[name]
    cfg = timm.create_model(timm_name, pretrained=False, num_classes=0, depth=1)  # depth 1: fast
    assert (cfg.embed_dim, cfg.blocks[0].attn.num_heads) == (size.embed_dim, size.num_heads)


def test_grayscale_and_custom_sizes():
    enc = build_encoder("vit_tiny", grid_size=7, patch_size=4, in_chans=1, embed_dim=64, depth=2, num_heads=4)
    out = enc.forward_patches(torch.randn(3, 5, 16), torch.randint(0, 49, (3, 5)))
    assert out.shape == (3, 6, 64)
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=28,
                               patch_size=4, in_chans=1, embed_dim=64, depth=2, num_heads=4)
    theirs.load_state_dict(enc.state_dict(), strict=True)
