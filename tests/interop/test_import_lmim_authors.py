"""The Latent MIM authors' checkpoints load into our models with identical features."""

import pytest
import torch
from authors_format import authors_checkpoint, authors_encoder_forward

import latentmim
from conftest import TINY
from latentmim.cli.main import main
from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.engine.pretrain import Pretrainer
from latentmim.interop.formats import detect_format, read_checkpoint
from latentmim.interop.load import load_pretrained
from latentmim.masking.patchify import all_ids, patchify
from latentmim.methods.factory import build_model


@pytest.fixture
def ckpt_path(tmp_path):
    path = tmp_path / "checkpoint_latest.pth"
    torch.save(authors_checkpoint(), path)
    return path


def _their_state(path):
    return {k.removeprefix("module."): v for k, v in torch.load(path, weights_only=True)["state_dict"].items()}


def test_features_equal_the_authors_forward(ckpt_path):
    assert detect_format(read_checkpoint(ckpt_path)) == "lmim_authors"
    encoder = latentmim.load_encoder(ckpt_path)
    imgs = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    ref_tokens, ref_projected = authors_encoder_forward(_their_state(ckpt_path), imgs, num_heads=3)
    ours = encoder.forward_patches(patchify(imgs, 4), all_ids(3, 4))  # our training-time path
    assert torch.allclose(ours, ref_tokens, atol=1e-5), (ours - ref_tokens).abs().max()
    assert torch.allclose(encoder.forward_features(imgs), ref_tokens, atol=1e-5)  # timm's conv path
    # the target encoder (their EMA) is imported too, with its projector
    imported = load_pretrained(ckpt_path)
    model = build_model(compose_config([*TINY, "embed_dim=192", "num_heads=3", "proj.mlp_dim=64",
                                        "decoder_embed_dim=32", "decoder_num_heads=16"]), 3)
    model.load_state_dict(imported.weights)
    target_ref, target_proj_ref = authors_encoder_forward(_their_state(ckpt_path), imgs, 3, "target_encoder.")
    with torch.no_grad():
        target = model.target_encoder.forward_patches(patchify(imgs, 4), all_ids(3, 4))
        projected = model.projector(ours)
    assert torch.allclose(target, target_ref, atol=1e-5)
    assert torch.allclose(projected, authors_encoder_forward(_their_state(ckpt_path), imgs, 3)[1], atol=1e-5)
    assert torch.allclose(model.target_projector(target), target_proj_ref, atol=1e-5)


def test_config_is_read_off_the_weights(ckpt_path):
    loaded = load_pretrained(ckpt_path, ["dataset=synthetic"])
    cfg = loaded.config
    assert (cfg.encoder, cfg.embed_dim, cfg.depth, cfg.num_heads) == ("vit_tiny", 192, 2, 3)
    assert (cfg.patch_size, cfg.grid_size, cfg.proj.mlp_dim, cfg.proj.mlp_depth) == (4, 4, 64, 2)
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads, cfg.target_depth) == (32, 1, 16, None)
    assert cfg.dataset == "synthetic"  # overrides apply
    torch.save(authors_checkpoint(target_depth=1), ckpt_path)
    assert load_pretrained(ckpt_path).config.target_depth == 1


def test_every_tensor_lands_in_our_model_and_training_continues(ckpt_path, tiny):
    cfg = compose_config([*tiny, "embed_dim=192", "num_heads=3", "proj.mlp_dim=64", "decoder_embed_dim=32",
                          "decoder_num_heads=16", f"init_from={ckpt_path}", "epochs=1", "warmup_epochs=0"])
    trainer = Pretrainer(cfg)
    theirs = _their_state(ckpt_path)
    ours = trainer.model.state_dict()
    # all their tensors but the decoder's fixed position table have a place (and all of ours a source)
    assert len(ours) == len(theirs) - 1
    pairs = {"decoder.cls_query": "decoder.cls_token", "decoder.blocks.0.norm2.weight": "decoder.blocks.0.norm3.weight",
             "decoder.blocks.0.norm_kv.bias": "decoder.blocks.0.norm2kv.bias",
             "decoder.blocks.0.cross_attn.kv.weight": "decoder.blocks.0.cross_attn.kv_proj.weight",
             "projector.mlp.3.weight": "encoder.head.linear1.weight",
             "target_projector.mlp.4.bias": "target_encoder.head.norm1.bias",
             "target_encoder.blocks.1.mlp.fc2.weight": "target_encoder.blocks.1.mlp.fc2.weight"}
    for our_key, their_key in pairs.items():
        assert torch.equal(ours[our_key], theirs[their_key]), our_key
    w = ours["encoder.patch_embed.proj.weight"]  # (D, C, P, P) vs their (D, P*P*C), (row, col, chan)
    assert torch.equal(w[5, 2, 1, 3], theirs["encoder.embed.proj.weight"][5, (1 * 4 + 3) * 3 + 2])
    results = trainer.run()  # continued training from their weights
    assert torch.isfinite(torch.tensor(results["trained"]["nn_loo"]))


def test_bad_or_mismatched_foreign_checkpoints_are_one_line_errors(ckpt_path, tmp_path, capsys, tiny):
    torch.save({"state_dict": {"module.foo": torch.zeros(1)}}, tmp_path / "odd.pth")
    assert main(["knn", f"checkpoint={tmp_path / 'odd.pth'}"]) == 2
    err = capsys.readouterr().err
    assert "odd.pth" in err and "not a checkpoint latentmim knows" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="init_from"):  # their ViT-Ti encoder into a 32-wide model
        Pretrainer(compose_config([*tiny, f"init_from={ckpt_path}"]))
    torch.save(authors_checkpoint(d=200, mlp_depth=0), tmp_path / "wide.pth")  # no standard heads for 200
    with pytest.raises(ConfigError, match="num_heads"):
        load_pretrained(tmp_path / "wide.pth")
    assert load_pretrained(tmp_path / "wide.pth", num_heads=4).encoder.embed_dim == 200
