"""ConMIM equals the authors' code: same weights, images and masks give their loss, features,
gradients and momentum update.

The numbers below come from one step of the authors' ``train_one_epoch`` with two
``VisionTransformerForMaskedImageModeling`` (their ViT set to the plain ViT of this library:
absolute positions, no layer scale, no relative position bias; their 3-layer BatchNorm projector)
at github.com/TencentARC/ConMIM commit 4263955fb1eb66bc4b4188d03bd15e9ba6984495, fed the case of
``tools/reference_conmim.py``: a 14x14 grid with the paper's blockwise masks (their
``MaskingGenerator`` replayed on our generator's uniforms gives the same masks, here and on 200
more masks of other grids and sizes, summarised by ``masks_*``), seeded random
values for every parameter (mask token and projector included) with a momentum network that
differs from the online one, images hiding 74, 75 and 73 patches (so a per-image mean of
the loss is caught), the momentum branch's image perturbed, float64, temperature 0.1,
EMA momentum 0.9. Regenerate with:

    git clone https://github.com/TencentARC/ConMIM /tmp/conmim_authors
    python tools/reference_conmim.py --authors-dir /tmp/conmim_authors
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = {
    "loss": 7.975634449,
    "mask_count": [74, 75, 73],
    "mask_id_sum": [7264, 7246, 7668],
    "mask_id_sq_sum": [878656, 845394, 876210],
    "online_checksum": 73.51295667,
    "online_abs_sum": 7357.060472,
    "online_slice": [-0.7592725724, -1.576107172, -0.4429241372, -0.5808970536],
    "target_checksum": 46.96807523,
    "target_abs_sum": 7341.572723,
    "target_slice": [-0.5097982006, -1.597211075, 1.259386132, 0.4875640327],
    "grad_mask_token": [0.05568355891, -0.03614180648, -0.0278926147, 0.02230761117],
    "grad_mask_token_norm": 0.2217478366,
    "grad_patch_embed_checksum": -0.02783423783,
    "grad_pos_embed_checksum": 0.0005842802473,
    "grad_qkv_checksum": -0.1709555501,
    "grad_proj0_checksum": 0.5641470602,
    "ema_pos_embed_checksum": 40.30556693,
    "ema_fc2_checksum": -2.329126619,
    "ema_proj6_checksum": 2.277600672,
    "ema_bn4_checksum": -2.076306488,
    "masks_hidden": 10081,
    "masks_checksum": 123928339,
}


def _tool():
    spec = importlib.util.spec_from_file_location("reference_conmim", ROOT / "tools" / "reference_conmim.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ours():
    tool = _tool()
    model, imgs, views = tool.build_case()
    return {**tool.summary(tool.ours(model, imgs, views), views.mask), **tool.mask_summary(tool.our_masks()[1])}


@pytest.mark.parametrize("key", list(REFERENCE))
def test_matches_the_authors_code(ours, key):
    # 10 significant digits were committed; float64 on both sides agrees to ~1e-15.
    assert ours[key] == pytest.approx(REFERENCE[key], rel=1e-6, abs=1e-9)
