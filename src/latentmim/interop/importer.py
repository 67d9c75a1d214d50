"""One entry point for every checkpoint format: encoders for evaluation, weights for training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from latentmim.config.errors import ConfigError
from latentmim.config.load import config_from_checkpoint
from latentmim.config.schema import PretrainConfig
from latentmim.interop import lmim_authors, mae
from latentmim.interop.arch import EncoderArch, arch_from_timm_state
from latentmim.interop.formats import detect_format, model_state, read_checkpoint
from latentmim.models.vit import ViTEncoder


@dataclass
class Imported:
    """A checkpoint brought into latentmim.

    Attributes:
        format: one of :data:`latentmim.interop.formats.FORMATS`.
        encoder: the online encoder, in eval mode on CPU.
        config: a pre-training configuration describing it (stored for ours; read off the
            weights plus the paper's defaults for foreign ones), with the overrides applied.
        weights: the weights under latentmim names: the whole model (``encoder.*``,
            ``projector.*``, ...) for ours and the Latent MIM authors', ``encoder.*`` only for
            MAE / timm.
    """

    format: str
    encoder: ViTEncoder
    config: PretrainConfig
    weights: dict[str, Tensor]


def _encoder_weights(fmt: str, state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    if fmt == "lmim_authors":
        return lmim_authors.encoder_state(state, source)
    if fmt == "latentmim":
        return {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    return mae.encoder_state(state, source)


def import_checkpoint(path: str | Path, overrides: Sequence[str] = (), num_heads: int | None = None) -> Imported:
    """Read any supported checkpoint and rebuild its encoder.

    Args:
        path: ``.pth`` (latentmim, Latent MIM authors', MAE) or ``.safetensors`` (timm names).
        overrides: ``key=value`` changes to the configuration (e.g. ``dataset=...``).
        num_heads: attention heads, for foreign encoders of a non-standard width.

    Raises:
        ConfigError: unreadable or unrecognised file, or weights that do not fit.
    """
    source = str(path)
    ckpt = read_checkpoint(path)
    fmt = detect_format(ckpt, source)
    state = model_state(ckpt)
    enc_state = _encoder_weights(fmt, state, source)
    if fmt == "latentmim":
        from latentmim.methods.factory import encoder_from_config

        cfg = config_from_checkpoint(ckpt["config"], overrides)
        encoder = encoder_from_config(cfg, enc_state["patch_embed.proj.weight"].shape[1])
        weights = state
    elif fmt == "lmim_authors":
        # released foreign checkpoints are ImageNet models: its normalisation unless overridden
        keys = {**lmim_authors.config_keys(state, source, num_heads), "dataset": "imagenet"}
        keys["num_vis"] = _paper_num_vis(keys["grid_size"])
        cfg = config_from_checkpoint(keys, overrides)
        encoder = lmim_authors.encoder_arch(state, source, num_heads=num_heads).build()
        weights = lmim_authors.model_state(state, source)
    else:
        arch = arch_from_timm_state(enc_state, source, num_heads)
        keys = {**arch.config(), "patch_gap": 0, "dataset": "imagenet", "mask_ratio": 0.75}  # MAE's views
        cfg = config_from_checkpoint(keys, overrides)
        encoder = arch.build()
        weights = {"encoder." + k: v for k, v in enc_state.items()}
    _load(encoder, enc_state, source)
    return Imported(fmt, encoder.eval(), cfg, weights)


def _paper_num_vis(grid_size: int) -> int:
    """The paper's 20 visible patches of 196 (about 10%), scaled to another grid."""
    return max(1, min(grid_size * grid_size - 1, round(20 * grid_size * grid_size / 196)))


def _load(module: nn.Module, state: dict[str, Tensor], source: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"checkpoint '{source}': weights do not fit: {load_error_detail(err)}") from None


def load_error_detail(err: RuntimeError) -> str:
    """The informative line of a ``load_state_dict`` error (the first one only names the class)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else lines[0]


def arch_of(encoder: ViTEncoder) -> EncoderArch:
    """The :class:`EncoderArch` of a built encoder."""
    return EncoderArch(encoder.embed_dim, len(encoder.blocks), encoder.blocks[0].attn.num_heads,
                       encoder.patch_size, encoder.grid_size, encoder.in_chans)


@torch.no_grad()
def init_weights(model: nn.Module, path: str | Path) -> str:
    """Initialise a training model from a checkpoint of any supported format (``init_from``).

    The whole model is loaded when the checkpoint holds one with exactly the same tensors (ours,
    or the authors' Latent MIM for ``method=lmim`` with matching sizes). Otherwise only the
    encoder is (MAE, timm, or another method's checkpoint); a momentum target encoder and
    target projector then restart as copies of the online ones, as at the start of training.

    Returns:
        One line saying what was loaded.

    Raises:
        ConfigError: naming ``init_from`` when the weights do not fit the configured model.
    """
    imported = import_checkpoint(path)
    own = model.state_dict()
    weights = imported.weights
    if set(weights) == set(own) and all(weights[k].shape == own[k].shape for k in own):
        model.load_state_dict(weights)
        return f"init_from: loaded the whole model from {imported.format} checkpoint '{path}'"
    encoder = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    try:
        model.encoder.load_state_dict(encoder)
    except RuntimeError as err:
        raise ConfigError(f"config key 'init_from': the encoder of '{path}' does not fit this model: "
                          f"{load_error_detail(err)}") from None
    for online, target in (("encoder", "target_encoder"), ("projector", "target_projector")):
        if isinstance(getattr(model, target, None), nn.Module):
            src = getattr(model, online).state_dict()
            getattr(model, target).load_state_dict({k: v for k, v in src.items() if k in getattr(model, target).state_dict()})
    return f"init_from: loaded the encoder from {imported.format} checkpoint '{path}' (other parts freshly initialised)"
