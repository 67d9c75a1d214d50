"""Fine-tuning with PCAE's progressive token reduction: blocks, tokens per stage, ranking, and
ViT-B/16's compute against the paper's Table 5 (docs/method.md#pcae)."""

import pytest
import timm
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from latentmim.eval.finetune.timm_classifier import classifier_from_encoder
from latentmim.eval.finetune.token_drop_vit import TokenDropViT
from latentmim.methods.pcae_cost import VIT_B16, finetune_macs, finetune_tokens
from latentmim.methods.token_drop import finetune_drop_blocks, finetune_token_counts
from latentmim.models.vit import ViTEncoder

# The paper's Table 5: ViT-B/16 fine-tuned on ImageNet, drop ratio -> GMACs (and img/s, top-1).
TABLE_5_GMACS = {0.0: 17.57, 0.1: 15.34, 0.2: 13.19, 0.3: 11.29, 0.4: 9.53}
TABLE_5_IMG_PER_S = {0.0: 286, 0.1: 330, 0.2: 385, 0.3: 449, 0.4: 538}
TABLE_5_TOP1 = {0.0: 83.8, 0.1: 83.7, 0.2: 83.5, 0.3: 83.2, 0.4: 82.6}


def test_stage_blocks_by_depth():
    assert finetune_drop_blocks(12) == [2, 5, 8]  # before the 4th, 7th and 10th blocks
    assert finetune_drop_blocks(24) == [5, 11, 17]
    assert finetune_drop_blocks(6) == [0, 2, 3]
    assert finetune_drop_blocks(2) == [0]


def test_tokens_per_stage_of_vit_b16():
    assert finetune_token_counts(196, 0.1) == [177, 160, 144]
    assert finetune_token_counts(196, 0.4) == [118, 71, 43]
    assert finetune_token_counts(196, 0.0) == [196, 196, 196]
    assert finetune_tokens(VIT_B16, 0.4) == [197] * 3 + [119] * 3 + [72] * 3 + [44] * 3  # cls included


@pytest.fixture(scope="module")
def vit_b16_meta() -> TokenDropViT:
    """ViT-B/16 as fine-tuning builds it (avg pool + fc_norm, 1000 classes), without weights."""
    with torch.device("meta"):
        vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=1000,
                                global_pool="avg", fc_norm=True)
    return TokenDropViT(vit, 0.0, drop_at_eval=True).eval()


@pytest.mark.parametrize("ratio", sorted(TABLE_5_GMACS))
def test_vit_b16_gmacs_match_table_5(vit_b16_meta, ratio):
    vit_b16_meta.ratio = ratio
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vit_b16_meta(torch.empty(1, 3, 224, 224, device="meta"))
    gmacs = counter.get_total_flops() / 2 / 1e9
    assert vit_b16_meta.after == (2, 5, 8)
    assert gmacs == pytest.approx(TABLE_5_GMACS[ratio], rel=0.025)
    head = 768 * 1000
    assert gmacs * 1e9 == pytest.approx(finetune_macs(VIT_B16, ratio) + head, rel=1e-9)  # the analytic count


def test_table_5_throughput_follows_its_macs():
    # The paper's speed-ups are its MAC savings (within 3%): the staged schedule that fits the
    # MACs also explains the throughput.
    for r in (0.1, 0.2, 0.3, 0.4):
        speedup = TABLE_5_IMG_PER_S[r] / TABLE_5_IMG_PER_S[0.0]
        assert speedup == pytest.approx(TABLE_5_GMACS[0.0] / TABLE_5_GMACS[r], rel=0.03)
    assert TABLE_5_TOP1[0.4] < TABLE_5_TOP1[0.0]


def test_one_early_drop_cannot_reach_table_5():
    # A single drop after block 4 (a third of the depth) stays far above the table at ratio 0.4;
    # the pre-training blocks (0, 4, 8) fall far below it.
    assert finetune_macs(VIT_B16, 0.4, [4]) / 1e9 > 1.35 * TABLE_5_GMACS[0.4]
    assert finetune_macs(VIT_B16, 0.4, [0, 4, 8]) / 1e9 < 0.87 * TABLE_5_GMACS[0.4]


def _reference_logits(vit, x: torch.Tensor, ratio: float, blocks: list[int]) -> torch.Tensor:
    """The classifier re-run by hand: at each stage, score every patch token by its cosine to the
    mean of the image's unit tokens and keep the lowest-scoring ones, in grid order."""
    h = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
    for i, blk in enumerate(vit.blocks):
        h = blk(h)
        if i not in blocks:
            continue
        rows = []
        for img in h:  # (1 + N, D)
            cls, toks = img[:1], img[1:]
            unit = toks / toks.norm(dim=-1, keepdim=True)
            mean = unit.mean(dim=0)
            score = [float(F.cosine_similarity(t, mean, dim=0)) for t in unit]
            n = len(score)
            keep = sorted(sorted(range(n), key=lambda j: (score[j], j))[: n - int(n * ratio)])
            rows.append(torch.cat([cls, toks[keep]]))
        h = torch.stack(rows)
    return vit.forward_head(vit.norm(h))


def test_stages_drop_tokens_and_match_a_hand_run():
    torch.manual_seed(0)
    enc = ViTEncoder(grid_size=4, patch_size=4, in_chans=3, embed_dim=32, depth=12, num_heads=2)
    vit = classifier_from_encoder(enc, 5)[0].eval()
    seen: list[int] = []
    for blk in vit.blocks:
        blk.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    model = TokenDropViT(vit, ratio=0.25, drop_at_eval=True).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        assert seen == [17] * 3 + [13] * 3 + [10] * 3 + [8] * 3  # 16 -> 12 -> 9 -> 7 patches, + cls
        torch.testing.assert_close(out, _reference_logits(vit, x, 0.25, [2, 5, 8]))


def test_block_choice():
    enc = ViTEncoder(grid_size=4, patch_size=4, in_chans=3, embed_dim=32, depth=12, num_heads=2)
    vit = classifier_from_encoder(enc, 5)[0]
    assert TokenDropViT(vit, 0.2).after == (2, 5, 8)
    assert TokenDropViT(vit, 0.2, after=[8, 1]).after == (1, 8)
    assert TokenDropViT(vit, 0.2, after=4).after == (4,)  # one explicit stage
    for bad in ([12], [3, 3], []):
        with pytest.raises(ValueError, match="distinct blocks in \\[0, 11\\]"):
            TokenDropViT(vit, 0.2, after=bad)
