"""Turn a :class:`PretrainConfig` into a model: the only place the config meets the components."""

from __future__ import annotations

from torch import nn

from latentmim.config.schema import PretrainConfig
from latentmim.losses import build_latent_loss
from latentmim.methods.lmim import LatentMIM
from latentmim.models.decoder import CrossAttentionDecoder, SelfAttentionDecoder
from latentmim.models.projector import Projector
from latentmim.models.vit import ViTEncoder, build_encoder


def encoder_from_config(cfg: PretrainConfig, in_chans: int) -> ViTEncoder:
    return build_encoder(
        cfg.encoder,
        grid_size=cfg.grid_size,
        patch_size=cfg.patch_size,
        in_chans=in_chans,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        drop_path=cfg.drop_path,
        freeze_pe=cfg.freeze_pe,
    )


def build_model(cfg: PretrainConfig, in_chans: int) -> LatentMIM:
    """Latent MIM with every ablation switch of the config applied."""
    encoder = encoder_from_config(cfg, in_chans)
    dim = encoder.embed_dim
    projector: nn.Module = (
        Projector(dim, cfg.proj.mlp_dim, cfg.proj.mlp_depth) if cfg.proj.mlp_depth > 0 else nn.Identity()
    )
    decoder_cls = CrossAttentionDecoder if cfg.decoder_type == "cross" else SelfAttentionDecoder
    decoder = decoder_cls(
        in_dim=dim,
        out_dim=dim,
        grid_size=cfg.grid_size,
        embed_dim=cfg.decoder_embed_dim,
        depth=cfg.decoder_depth,
        num_heads=cfg.decoder_num_heads,
        visual_cues=cfg.avg_vis_mask_token,
    )
    return LatentMIM(
        encoder,
        projector,
        decoder,
        build_latent_loss(cfg.loss, tau=cfg.tau, huber_delta=cfg.huber_delta),
        target_mode=cfg.target_mode,
        target_depth=cfg.target_depth,
        mask_target=cfg.mask_target,
        patch_gap=cfg.patch_gap,
        avg_sim_coeff=cfg.avg_sim_coeff,
    )
