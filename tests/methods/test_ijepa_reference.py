"""I-JEPA equals the authors' code: same weights, images and masks give their loss and outputs.

The numbers below come from the authors' ``VisionTransformer`` (context and target encoders),
``VisionTransformerPredictor``, ``apply_masks``, ``repeat_interleave_batch`` and the loss of their
``src/train.py`` at github.com/facebookresearch/ijepa commit
52c1ae95d05f743e000e8f10a1f3a79b10cff048, fed the case of ``tools/reference_ijepa.py`` (seeded
random weights and position tables, a target encoder different from the context encoder, a
non-zero mask token, multi-block masks of an 8x8 grid, float64). Regenerate with:

    git clone https://github.com/facebookresearch/ijepa /tmp/ijepa_authors
    python tools/reference_ijepa.py --authors-dir /tmp/ijepa_authors
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = {
    "loss": 0.7486508629,
    "pred_sum": 1739.168198,
    "pred_abs_sum": 4062.081992,
    "pred_slice": [-0.1807238618, 2.008120612, 0.719257474, -0.1573073311],
    "target_abs_sum": 3646.440997,
    "target_slice": [-0.8839050282, 1.786129527, 0.9226356703, -1.381117828],
    "ctx_abs_sum": 2245.35433,
    "ctx_slice": [-1.178661606, -0.2375040022, -0.7386255022, 0.3469214883],
}


def _tool():
    spec = importlib.util.spec_from_file_location("reference_ijepa", ROOT / "tools" / "reference_ijepa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def case():
    tool = _tool()
    model, imgs, views = tool.build_case()
    return tool, model, imgs, views


@pytest.fixture(scope="module")
def ours(case):
    tool, model, imgs, views = case
    return tool.summary(*tool.ours(model, imgs, views))


def test_case_is_not_degenerate(case):
    _, model, _, views = case
    # the target encoder differs from the context encoder, the mask token is not zero, and the
    # batch has 4 target blocks and a context cut to the smallest of the batch
    assert (model.encoder.blocks[0].attn.qkv.weight - model.target_encoder.blocks[0].attn.qkv.weight).abs().min() > 0
    assert model.predictor.mask_token.abs().min() > 0
    assert views.trg_ids.shape == (3, 4, 12) and views.ctx_ids.shape == (3, 29)


@pytest.mark.parametrize("key", list(REFERENCE))
def test_matches_the_authors_code(ours, key):
    # 10 significant digits were committed; float64 on both sides agrees to ~1e-15.
    assert ours[key] == pytest.approx(REFERENCE[key], rel=1e-6, abs=1e-8)
