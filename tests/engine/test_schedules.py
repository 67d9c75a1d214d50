import math

import pytest
import torch

from latentmim.engine.optim import param_groups
from latentmim.engine.schedules import cosine_decay, effective_lr, lr_at
from latentmim.models.vit import build_encoder


def test_lr_warmup_and_cosine_at_known_steps():
    kw = dict(base_lr=1.0, min_lr=0.25, warmup_epochs=4, epochs=20)
    assert lr_at(0, **kw) == 0.25
    assert lr_at(2, **kw) == pytest.approx(0.625)
    assert lr_at(4, **kw) == pytest.approx(1.0)
    assert lr_at(12, **kw) == pytest.approx(0.25 + 0.75 * 0.5)
    assert lr_at(20, **kw) == pytest.approx(0.25)
    assert lr_at(8, **kw) == pytest.approx(0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * 0.25)))


def test_similarity_goal_and_effective_lr():
    assert cosine_decay(0, 0.75, 0.25, 100) == 0.75
    assert cosine_decay(50, 0.75, 0.25, 100) == pytest.approx(0.5)
    assert cosine_decay(100, 0.75, 0.25, 100) == pytest.approx(0.25)
    # the reference run: 256 x accum 2 x 8 GPUs = 4096 -> 1.5e-4 * 16
    assert effective_lr(1.5e-4, 256, 2, 8, None) == pytest.approx(2.4e-3)
    assert effective_lr(1.5e-4, 256, 2, 8, 1e-3) == 1e-3


def test_no_weight_decay_on_biases_norms_embeddings_tokens():
    enc = build_encoder("vit_tiny", 4, 4, depth=1, freeze_pe=False)
    decay, no_decay = param_groups(enc, 0.05)
    names = {id(p): n for n, p in enc.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decayed == {"patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                       "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight"}
    assert "pos_embed" in {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert isinstance(decay["params"][0], torch.nn.Parameter)
