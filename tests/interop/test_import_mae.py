"""MAE checkpoints (facebookresearch/mae) load into our encoder with timm's features."""

import argparse

import pytest
import timm
import torch

import latentmim
from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.engine.pretrain import Pretrainer
from latentmim.interop.formats import detect_format, read_checkpoint
from latentmim.interop.load import load_pretrained
from latentmim.masking.patchify import all_ids, patchify

ARGS = dict(img_size=16, patch_size=4, embed_dim=192, depth=2, num_heads=3, num_classes=0)


def mae_checkpoint(with_decoder: bool = True, training: bool = False, finetuned_gap: bool = False):
    """MAE's layout: {'model': timm ViT state dict [+ pixel decoder]} (+ optimizer/args when training)."""
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", **ARGS)  # MAE's encoder is timm's ViT
    state = {k: v + 0.05 * torch.randn_like(v) for k, v in vit.state_dict().items()}  # not the init
    if with_decoder:  # models_mae.MaskedAutoencoderViT's decoder (8 x 512 at full size)
        e = 16
        state.update({"mask_token": torch.zeros(1, 1, e), "decoder_pos_embed": torch.zeros(1, 17, e),
                      "decoder_embed.weight": torch.randn(e, 192), "decoder_embed.bias": torch.zeros(e),
                      "decoder_blocks.0.norm1.weight": torch.ones(e), "decoder_norm.weight": torch.ones(e),
                      "decoder_pred.weight": torch.randn(4 * 4 * 3, e), "decoder_pred.bias": torch.zeros(48)})
    if finetuned_gap:  # models_vit with global_pool=True: fc_norm replaces norm, plus a head
        state["fc_norm.weight"], state["fc_norm.bias"] = state.pop("norm.weight"), state.pop("norm.bias")
        state["head.weight"], state["head.bias"] = torch.randn(10, 192), torch.zeros(10)
    ckpt = {"model": state}
    if training:  # misc.save_model: optimizer, epoch, scaler and the argparse Namespace
        ckpt.update(optimizer={"state": {}, "param_groups": []}, epoch=399, scaler={"scale": 1024.0},
                    args=argparse.Namespace(model="mae_vit_tiny", mask_ratio=0.75, norm_pix_loss=True))
    return ckpt, state


@pytest.mark.parametrize("with_decoder,training", [(True, False), (False, False), (True, True)])
def test_mae_features_equal_timm(tmp_path, with_decoder, training):
    ckpt, state = mae_checkpoint(with_decoder, training)
    torch.save(ckpt, tmp_path / "mae.pth")
    assert detect_format(read_checkpoint(tmp_path / "mae.pth")) == "mae"
    reference = timm.create_model("vit_tiny_patch16_224", **ARGS).eval()
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith(("decoder_", "mask_token"))})
    encoder = latentmim.load_encoder(tmp_path / "mae.pth")
    imgs = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = encoder.forward_patches(patchify(imgs, 4), all_ids(2, 4))
        assert torch.allclose(ours, reference.forward_features(imgs), atol=1e-5)
    cfg = load_pretrained(tmp_path / "mae.pth").config
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.grid_size, cfg.patch_size) == (192, 2, 3, 4, 4)


def test_mae_encoder_initialises_latent_mim_training(tmp_path, tiny):
    ckpt, state = mae_checkpoint()
    torch.save(ckpt, tmp_path / "mae.pth")
    cfg = compose_config([*tiny, "embed_dim=192", "num_heads=3", f"init_from={tmp_path / 'mae.pth'}",
                          "epochs=1", "warmup_epochs=0"])
    trainer = Pretrainer(cfg)
    model = trainer.model
    assert torch.equal(model.encoder.blocks[1].mlp.fc1.weight, state["blocks.1.mlp.fc1.weight"])
    # the momentum target starts as a copy of the imported online encoder
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(model.target_encoder.state_dict()[k], v), k
    results = trainer.run()
    assert 0 <= results["trained"]["nn_loo"] <= 100


def test_finetuned_global_pool_checkpoint_is_refused_in_one_line(tmp_path):
    torch.save(mae_checkpoint(finetuned_gap=True)[0], tmp_path / "ft.pth")
    with pytest.raises(ConfigError, match="fc_norm") as err:
        latentmim.load_encoder(tmp_path / "ft.pth")
    assert len(str(err.value).splitlines()) == 1
