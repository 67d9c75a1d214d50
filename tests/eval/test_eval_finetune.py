"""Fine-tuning: the encoder inside timm, token dropping, few-step runs, resume, timm checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import FinetuneEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.registry import build_dataset
from latentmim.data.transforms import eval_transform
from latentmim.eval.finetune.parts import build_optimizer, finetune_transform
from latentmim.eval.finetune.suite import run_finetune_eval
from latentmim.eval.finetune.timm_classifier import classifier_from_encoder, load_timm_checkpoint
from latentmim.eval.finetune.token_drop_vit import TokenDropViT, drop_redundant_tokens
from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.vit import ViTEncoder


def test_timm_classifier_carries_the_encoder_exactly() -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(grid_size=4, patch_size=4, in_chans=1, embed_dim=32, depth=3, num_heads=2).eval()
    model, arch, kwargs = classifier_from_encoder(enc, num_classes=7)
    model.eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        _, prenorm = enc.forward_patches(patchify(x, 4), all_ids(2, 4, "cpu"), return_prenorm=True)
        tokens = model.blocks(model._pos_embed(model.patch_embed(x)))
        logits = model(x)
    torch.testing.assert_close(tokens, prenorm)  # same tokens before the (dropped) final norm
    # MAE's head: mean of patch tokens -> fresh LayerNorm -> Linear (std 2e-5 init).
    expected = model.head(model.fc_norm(prenorm[:, 1:].mean(1)))
    torch.testing.assert_close(logits, expected)
    assert model.head.weight.abs().max() < 1e-4 and kwargs["num_classes"] == 7 and kwargs["in_chans"] == 1
    # Layer-wise lr decay: patch embedding at decay^(depth+1), blocks in between, head at 1.
    opt = build_optimizer(model, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert scale[id(model.patch_embed.proj.weight)] == pytest.approx(0.5**4)
    assert scale[id(model.blocks[2].mlp.fc1.weight)] == pytest.approx(0.5)
    assert scale[id(model.head.weight)] == 1.0
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(model.pos_embed)] == 0.0 and decay[id(model.blocks[0].attn.qkv.bias)] == 0.0
    assert decay[id(model.blocks[0].attn.qkv.weight)] == 0.05


def test_token_drop_keeps_the_most_distinctive_tokens() -> None:
    # cls + 5 patch tokens at angles 0, 2.9, 90, -5.7 and 5.7 degrees.
    x = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [2.0, 0.1], [0.0, 3.0], [1.0, -0.1], [3.0, 0.3]]])
    out = drop_redundant_tokens(x, ratio=0.4)  # drop floor(5 * 0.4) = 2 tokens
    assert out.shape == (1, 4, 2)
    torch.testing.assert_close(out[0, 0], x[0, 0])  # cls always kept
    # The mean unit token points at ~14.8 degrees; cosines: 0.967, 0.979, 0.255, 0.937, 0.988.
    # The two most similar (2.9 and 5.7 degrees) go; the rest stay in grid order.
    assert torch.equal(out[0, 1:], x[0, [1, 3, 4]])
    assert torch.equal(drop_redundant_tokens(x, 0.0), x)


def test_token_drop_model_runs_on_fewer_tokens() -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(grid_size=4, patch_size=4, in_chans=3, embed_dim=32, depth=3, num_heads=2)
    model, _, _ = classifier_from_encoder(enc, 5)
    seen = []
    model.blocks[2].register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    wrapped = TokenDropViT(model, ratio=0.25, after=1)
    x = torch.randn(2, 3, 16, 16)
    wrapped.train()
    assert wrapped(x).shape == (2, 5) and seen[-1] == 1 + 12  # 16 patches -> 12 after block 1
    wrapped.eval()
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x), model.eval()(x))  # no dropping at eval by default
    assert seen[-1] == 17


def test_randaugment_posterize_never_asks_pillow_for_zero_bits() -> None:
    tf = finetune_transform(16, (0.5,), (0.25,), "rand-m9-mstd0.5-inc1", 0.25, "pixel", 1, 0.08)
    ops = [op for step in tf.transforms[1].transforms for op in getattr(step, "ops", [])]
    post = next(op for op in ops if op.name == "PosterizeIncreasing")
    assert post.level_fn(10, post.hparams) == (1,)  # timm alone gives (0,), which Pillow rejects
    assert post.level_fn(5, post.hparams) == (2,)  # unchanged elsewhere: 4 - int(5 * 0.4)
    img = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert post.aug_fn(img, *post.level_fn(10, post.hparams), **post.kwargs).getextrema() == (0, 128)


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return trainer.run_dir / "checkpoint_latest.pth"


def _args(ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [f"checkpoint={ckpt}", f"output_dir={out}", "epochs=2", "warmup_epochs=1", "batch_size=8", "workers=0",
            "progress=false", "eval_freq=1", "token_drop=0.25", "token_drop_blocks=[0]", "ckpt_steps=4",
            "throughput_batches=1", *extra]


def test_finetune_runs_resumes_exactly_and_saves_a_timm_checkpoint(untrained_checkpoint: Path, tmp_path: Path) -> None:
    ref = run_finetune_eval(parse_eval_config(FinetuneEvalConfig, _args(untrained_checkpoint, tmp_path / "ref")))
    assert len(ref["evals"]) == 2 and set(ref["scores"]) == {"top1", "top5", "val_loss"}
    assert set(ref["throughput"]["train_img_per_s"]) == {"0", "0.25"}
    assert all(v > 0 for v in ref["throughput"]["infer_img_per_s"].values())

    # Killed in epoch 2 (6 steps per epoch; mid-epoch checkpoint after step 8), then resumed.
    cut_cfg = parse_eval_config(FinetuneEvalConfig, _args(untrained_checkpoint, tmp_path / "cut"))
    assert run_finetune_eval(cut_cfg, stop_at_step=9)["status"] == "interrupted"
    with pytest.raises(ConfigError, match="resume=True"):
        run_finetune_eval(cut_cfg)
    resumed = run_finetune_eval(parse_eval_config(
        FinetuneEvalConfig, _args(untrained_checkpoint, tmp_path / "cut", "resume=True")))
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert resumed["scores"] == ref["scores"]

    # The file is a plain timm checkpoint: create_model + strict load, same logits, same accuracy.
    spec = json.loads((tmp_path / "ref" / "timm_model.json").read_text())
    model = timm.create_model(spec["architecture"], **spec["kwargs"])
    model.load_state_dict(a, strict=True)
    model.eval()
    assert torch.equal(load_timm_checkpoint(tmp_path / "ref").state_dict()["head.weight"], a["head.weight"])
    val, info = build_dataset("synthetic", "val", None, synthetic_size=24, synthetic_num=24)
    tf = eval_transform(16, info.mean, info.std)
    imgs = torch.stack([tf(val[i][0]) for i in range(len(val))])
    labels = torch.tensor([val[i][1] for i in range(len(val))])
    with torch.no_grad():
        logits = model(imgs)
        again = load_timm_checkpoint(tmp_path / "ref")(imgs)
    torch.testing.assert_close(logits, again, rtol=0, atol=0)
    top1 = 100.0 * (logits.argmax(1) == labels).float().mean().item()
    assert top1 == pytest.approx(ref["scores"]["top1"])  # the reported number is this model's


def test_bad_token_drop_block_is_a_config_error(untrained_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token_drop_blocks"):
        run_finetune_eval(parse_eval_config(FinetuneEvalConfig, _args(untrained_checkpoint, tmp_path,
                                                                      "token_drop_blocks=[5]")))
