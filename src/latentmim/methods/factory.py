"""Turn a :class:`PretrainConfig` into a model: the only place the config meets the components."""

from __future__ import annotations

from typing import Any

from torch import nn

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.config.schema import PretrainConfig
from latentmim.data.info import dataset_stats
from latentmim.losses import build_latent_loss
from latentmim.masking.multiblock import MultiBlockMasker
from latentmim.masking.views import num_visible
from latentmim.methods.base import PretrainMethod
from latentmim.methods.conmim import ConMIM, ConMIMProjector
from latentmim.methods.data2vec import Data2Vec
from latentmim.methods.data2vec_decoder import ConvDecoder
from latentmim.methods.ema import momentum_for_time_constant
from latentmim.methods.ijepa import IJEPA
from latentmim.methods.lmim import LatentMIM
from latentmim.methods.mae import MAE
from latentmim.methods.pcae import PCAE
from latentmim.methods.simmim import SimMIM
from latentmim.methods.supervised import Supervised
from latentmim.methods.token_drop import drop_schedule
from latentmim.models.decoder import CrossAttentionDecoder, SelfAttentionDecoder
from latentmim.models.pos_embed import spacing_factor
from latentmim.models.predictor import JEPAPredictor
from latentmim.models.projector import Projector
from latentmim.models.vit import VIT_PRESETS, ViTEncoder, build_encoder


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
        pos_spacing=spacing_factor(cfg.pos_spacing, cfg.grid_size),
    )


def build_method(config: PretrainConfig | str = "demo", *, in_chans: int = 3, num_classes: int = 10,
                 **overrides: Any) -> PretrainMethod:
    """A pre-training method, ready for your own training loop.

    Args:
        config: a :class:`PretrainConfig` (e.g. from :func:`~latentmim.config.load.compose_config`),
            or the name of a packaged config (``demo``, ``lmim``, ``mae``, ``pcae``, ...).
        in_chans: image channels (3 for RGB, 1 for grayscale).
        num_classes: classes, for ``method=supervised`` only.
        **overrides: config keys on top of a named config, e.g. ``method="mae"``,
            ``embed_dim=64`` or ``proj={"mlp_dim": 256}``.

    Returns:
        The method (:class:`~latentmim.methods.base.PretrainMethod`), its parameters initialised
        from torch's global RNG (seed it first for reproducible weights).

    Example::

        model = latentmim.build_method("demo", method="lmim")
        loss, metrics = model(torch.randn(8, 3, model.crop_size, model.crop_size))
    """
    if isinstance(config, str):
        config = compose_config(_dotlist(overrides), config_name=config)
    elif overrides:
        raise ConfigError("build_method: pass overrides with a config name, or apply them to the config yourself")
    return build_model(config, in_chans, num_classes)


def _dotlist(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"proj": {"mlp_dim": 256}, "lr": 1e-3}`` -> ``["proj.mlp_dim=256", "lr=0.001"]``."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += _dotlist(value, f"{prefix}{key}.")
        elif isinstance(value, (list, tuple)):
            out.append(f"{prefix}{key}=[{','.join(map(str, value))}]")
        else:
            out.append(f"{prefix}{key}={'null' if value is None else value}")
    return out


def build_model(cfg: PretrainConfig, in_chans: int, num_classes: int = 10) -> PretrainMethod:
    """The model of ``cfg.method`` (lmim, mae, pcae, data2vec, or the supervised ceiling).

    Every method follows the contract of :class:`~latentmim.methods.base.PretrainMethod`.
    """
    encoder = encoder_from_config(cfg, in_chans)
    num_vis = num_visible(cfg.grid_size**2, cfg.num_vis, cfg.mask_ratio)
    seed = cfg.env.seed
    if cfg.method == "supervised":
        return Supervised(encoder, num_classes, cfg.patch_gap, seed)
    if cfg.method == "mae":
        decoder = _mae_decoder(cfg, encoder.embed_dim, encoder.patch_dim)
        return MAE(encoder, decoder, num_vis, cfg.patch_gap, cfg.mae.norm_pix_loss, seed)
    if cfg.method == "pcae":
        p = cfg.pcae
        schedule = drop_schedule(len(encoder.blocks), p.keep, p.drop_case, p.drop_stages, p.drop_blocks)
        decoder = _mae_decoder(cfg, encoder.embed_dim, encoder.embed_dim)
        return PCAE(encoder, decoder, schedule, num_vis, cfg.patch_gap, p.random_drop, seed)
    if cfg.method == "data2vec":
        d = cfg.data2vec
        decoder = ConvDecoder(encoder.embed_dim, encoder.embed_dim, cfg.grid_size, cfg.decoder_embed_dim,
                              d.decoder_layers, d.decoder_kernel, d.decoder_groups)
        return Data2Vec(encoder, decoder, d.top_k, num_vis, cfg.patch_gap, seed)
    if cfg.method == "simmim":
        return SimMIM(encoder, cfg.simmim.mask_patch, cfg.simmim.mask_ratio, cfg.patch_gap, seed)
    if cfg.method == "conmim":
        c = cfg.conmim
        mean, std = dataset_stats(cfg.dataset)  # the loader's normalisation: the perturbation works on [0, 1] pixels
        projector = ConMIMProjector(encoder.embed_dim, c.proj_hidden_dim, c.proj_dim, c.proj_depth)
        return ConMIM(encoder, projector, c.mask_frac, c.min_block_frac, c.min_aspect, c.tau, c.perturb,
                      cfg.target_mode, mean, std, cfg.patch_gap, seed)
    if cfg.method == "ijepa":
        return _build_ijepa(cfg, encoder)
    return _build_lmim(cfg, encoder, num_vis)


def target_momentum(cfg: PretrainConfig, total_steps: int | None = None) -> float:
    """EMA momentum at step 0; PCAE, ConMIM and I-JEPA have their papers' own defaults.

    With ``target_tau_frac`` the target's time constant is that fraction of the run's
    ``total_steps`` optimizer steps, so a short run lags its target as a long one does.
    """
    if cfg.target_tau_frac is not None and total_steps is not None:
        return momentum_for_time_constant(cfg.target_tau_frac * total_steps)
    own = {"pcae": cfg.pcae.target_mom, "conmim": cfg.conmim.target_mom, "ijepa": cfg.ijepa.target_mom}
    return own.get(cfg.method, cfg.target_mom)


def _build_ijepa(cfg: PretrainConfig, encoder: ViTEncoder) -> IJEPA:
    """I-JEPA: the online encoder as context encoder, a narrow predictor, an EMA target encoder."""
    j = cfg.ijepa
    heads = j.pred_num_heads or cfg.num_heads or VIT_PRESETS[cfg.encoder].num_heads
    predictor = JEPAPredictor(encoder.embed_dim, cfg.grid_size, pred_dim=j.pred_emb_dim, depth=j.pred_depth,
                              num_heads=heads, pos_spacing=spacing_factor(cfg.pos_spacing, cfg.grid_size))
    masker = MultiBlockMasker(cfg.grid_size, ctx_scale=tuple(j.enc_mask_scale), trg_scale=tuple(j.pred_mask_scale),
                              aspect=tuple(j.aspect_ratio), num_targets=j.num_pred_masks, min_keep=j.min_keep,
                              allow_overlap=j.allow_overlap, reach_edges=j.reach_edges)
    return IJEPA(encoder, predictor, masker, cfg.patch_gap, momentum_end=j.target_mom_end,
                 use_cls=j.use_cls, seed=cfg.env.seed)


def _mae_decoder(cfg: PretrainConfig, in_dim: int, out_dim: int) -> SelfAttentionDecoder:
    """MAE's decoder: self-attention over visible tokens and mask tokens, no visual cues."""
    return SelfAttentionDecoder(
        in_dim=in_dim, out_dim=out_dim, grid_size=cfg.grid_size, embed_dim=cfg.decoder_embed_dim,
        depth=cfg.decoder_depth, num_heads=cfg.decoder_num_heads, visual_cues=False,
        pos_spacing=spacing_factor(cfg.pos_spacing, cfg.grid_size),
    )


def _build_lmim(cfg: PretrainConfig, encoder: ViTEncoder, num_vis: int) -> LatentMIM:
    """Latent MIM with every ablation switch of the config applied."""
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
        pos_spacing=spacing_factor(cfg.pos_spacing, cfg.grid_size),
    )
    return LatentMIM(
        encoder,
        projector,
        decoder,
        build_latent_loss(cfg.loss, tau=cfg.tau, huber_delta=cfg.huber_delta),
        num_vis=num_vis,
        target_mode=cfg.target_mode,
        target_depth=cfg.target_depth,
        mask_target=cfg.mask_target,
        patch_gap=cfg.patch_gap,
        avg_sim_coeff=cfg.avg_sim_coeff,
        sim_init=cfg.sim_init,
        sim_end=cfg.sim_end,
        seed=cfg.env.seed,
    )
