import math

import pytest
import torch

from latentmim.models.vit import build_encoder
from latentmim.training.optim import param_groups
from latentmim.training.schedules import cosine_decay, effective_lr, lr_at


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


def test_weight_decay_groups_follow_the_authors():
    # the authors: no decay on 1-D parameters nor on names containing bias / norm / embed
    # (patch embedding, position table); the cls token is decayed
    enc = build_encoder("vit_tiny", 4, 4, depth=1, freeze_pe=False)
    decay, no_decay = param_groups(enc, 0.05)
    names = {id(p): n for n, p in enc.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decayed == {"cls_token", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                       "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight"}
    assert {"pos_embed", "patch_embed.proj.weight"} <= {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert isinstance(decay["params"][0], torch.nn.Parameter)


def test_lmim_decoder_input_linear_is_not_decayed_and_mask_token_is(tiny):
    from latentmim.config.load import compose_config
    from latentmim.methods.factory import build_model

    model = build_model(compose_config(tiny), 3)
    decay, _ = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "decoder.mask_token" in decayed and "decoder.embed.weight" not in decayed
    assert "encoder.patch_embed.proj.weight" not in decayed and "decoder.head.weight" in decayed


def test_target_time_constant_as_a_fraction_of_the_run(tiny):
    from latentmim.config.load import compose_config
    from latentmim.engine.pretrain import Pretrainer
    from latentmim.methods.factory import target_momentum

    # 48 images / batch 8 = 6 steps per epoch; 10 epochs = 60 optimizer steps; tau = 0.25 * 60 = 15
    cfg = compose_config([*tiny, "epochs=10", "target_tau_frac=0.25", "warmup_frac=0.1"])
    trainer = Pretrainer(cfg)
    assert trainer.total_steps == 60
    assert trainer.target_mom0 == pytest.approx(1 - 1 / 15)
    assert trainer.warmup_epochs == pytest.approx(1.0)
    # without it, the paper's fixed momentum; a 1-step time constant never goes below momentum 0
    assert target_momentum(compose_config(tiny), 60) == 0.99
    assert target_momentum(compose_config([*tiny, "target_tau_frac=0.001"]), 60) == 0.0
    # the same fraction means the same lag relative to the run at any length
    long = target_momentum(compose_config([*tiny, "target_tau_frac=0.01"]), 250_000)
    assert 1 / (1 - long) == pytest.approx(2500)


def test_warmup_frac_drives_the_lr_schedule(tiny):
    import json
    from pathlib import Path

    from latentmim.config.load import compose_config
    from latentmim.engine.pretrain import pretrain

    cfg = compose_config([*tiny, "epochs=2", "warmup_epochs=0", "warmup_frac=0.5", "log.print_freq=1"])
    pretrain(cfg)
    lrs = [json.loads(line)["lr"] for line in (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()]
    # warm-up over the first epoch (6 of 12 steps) from 0.25e-3 (min_lr) to 1e-3
    assert lrs[0] == pytest.approx(0.25e-3) and lrs[3] == pytest.approx(0.25e-3 + 0.75e-3 * 3 / 6)
    assert max(lrs) == pytest.approx(1e-3, rel=0.01) and lrs.index(max(lrs)) == 6
