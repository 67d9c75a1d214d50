import torch

from latentmim.models.decoder import CrossAttentionDecoder, SelfAttentionDecoder, cue_weights
from latentmim.models.pos_embed import sincos_2d
from latentmim.models.projector import Projector


def test_visual_cue_weights_sum_to_one_and_prefer_near_patches():
    table = sincos_2d(64, 8, cls_token=False)
    q_ids = torch.tensor([[0, 63]])
    v_ids = torch.tensor([[1, 62, 27]])  # 1 neighbours 0; 62 neighbours 63
    w = cue_weights(table[q_ids], table[v_ids])
    assert torch.allclose(w.sum(-1), torch.ones(1, 2))
    assert w[0, 0].argmax() == 0 and w[0, 1].argmax() == 1
    # hand computation for one entry
    logits = table[0] @ table[torch.tensor([1, 62, 27])].T / 8.0
    assert torch.allclose(w[0, 0], logits.softmax(-1), atol=1e-6)


def test_sincos_table_rows_and_cls():
    t = sincos_2d(16, 4)
    assert t.shape == (17, 16) and torch.all(t[0] == 0)
    assert torch.allclose(t[1 + 5, :4], torch.sin(torch.tensor([1.0, 0.1, 0.01, 0.001])), atol=1e-6)  # col 1


def test_decoders_shapes_and_cls_query_dropped():
    tokens = torch.randn(2, 1 + 5, 32)
    vis = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    trg = torch.tensor([[10, 11, 12], [13, 14, 15]])
    for cls in (CrossAttentionDecoder, SelfAttentionDecoder):
        for cues in (True, False):
            dec = cls(32, 48, grid_size=4, embed_dim=32, depth=2, num_heads=4, visual_cues=cues)
            assert dec(tokens, vis, trg).shape == (2, 3, 48)


def test_cross_decoder_predictions_depend_on_visible_tokens_only_through_context():
    dec = CrossAttentionDecoder(16, 16, grid_size=4, embed_dim=16, depth=1, num_heads=2).eval()
    tokens = torch.randn(1, 4, 16)
    vis, trg = torch.tensor([[0, 1, 2]]), torch.tensor([[5, 6]])
    a = dec(tokens, vis, trg)
    # permuting visible tokens together with their ids changes nothing
    perm = torch.tensor([2, 0, 1])
    b = dec(torch.cat([tokens[:, :1], tokens[:, 1:][:, perm]], 1), vis[:, perm], trg)
    assert torch.allclose(a, b, atol=1e-5)


def test_projector_layout():
    p = Projector(8, 32, 3)
    kinds = [type(m).__name__ for m in p.mlp]
    assert kinds == ["Linear", "LayerNorm", "GELU", "Linear", "LayerNorm", "GELU", "Linear", "LayerNorm"]
    assert all(m.bias is None for m in p.mlp if isinstance(m, torch.nn.Linear))
    assert p(torch.randn(2, 3, 8)).shape == (2, 3, 8)


def test_visual_cue_queries_match_a_per_query_loop():
    torch.manual_seed(0)
    dec = CrossAttentionDecoder(in_dim=8, out_dim=8, grid_size=4, embed_dim=16, depth=1, num_heads=2, visual_cues=True)
    with torch.no_grad():
        dec.mask_token.normal_()
    vis_emb = torch.randn(2, 3, 16)
    vis_ids, trg_ids = torch.tensor([[0, 5, 10], [3, 7, 15]]), torch.tensor([[1, 2], [0, 12]])
    got = dec.queries(vis_emb, vis_ids, trg_ids)
    table = dec.pos_embed[1:]
    for b in range(2):
        for t in range(2):
            pq = table[trg_ids[b, t]]
            logits = torch.stack([pq @ table[vis_ids[b, v]] / 16**0.5 for v in range(3)])
            w = torch.exp(logits) / torch.exp(logits).sum()
            cue = sum(w[v] * vis_emb[b, v] for v in range(3))
            torch.testing.assert_close(got[b, t], dec.mask_token[0, 0] + cue + pq, rtol=1e-5, atol=1e-6)


def test_cross_attention_matches_a_per_query_per_head_loop():
    from latentmim.models.attention import CrossAttention

    torch.manual_seed(1)
    att = CrossAttention(8, 2)
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    got = att(x, ctx)
    wq, bq = att.q.weight, att.q.bias
    wk, bk = att.kv.weight[:8], att.kv.bias[:8]
    wv, bv = att.kv.weight[8:], att.kv.bias[8:]
    for b in range(2):
        for i in range(3):
            heads = []
            for h in range(2):
                sl = slice(4 * h, 4 * h + 4)
                q = x[b, i] @ wq[sl].T + bq[sl]
                ks = [ctx[b, j] @ wk[sl].T + bk[sl] for j in range(5)]
                vs = [ctx[b, j] @ wv[sl].T + bv[sl] for j in range(5)]
                s = torch.stack([q @ k / 2.0 for k in ks])  # sqrt(head dim 4)
                a = torch.exp(s - s.max()) / torch.exp(s - s.max()).sum()
                heads.append(sum(a[j] * vs[j] for j in range(5)))
            ref = torch.cat(heads) @ att.proj.weight.T + att.proj.bias
            torch.testing.assert_close(got[b, i], ref, rtol=1e-5, atol=1e-6)
