"""Load the online encoder of a latentmim pre-training checkpoint, ready for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latentmim.config.errors import ConfigError
from latentmim.config.load import config_from_checkpoint
from latentmim.config.schema import PretrainConfig
from latentmim.engine.checkpoint import load_checkpoint
from latentmim.methods.factory import encoder_from_config
from latentmim.models.vit import ViTEncoder


def load_encoder_checkpoint(path: str | Path, overrides: Sequence[str] = ()) -> tuple[ViTEncoder, PretrainConfig]:
    """Rebuild the encoder of a pre-training checkpoint (``checkpoint_*.pth``).

    Args:
        path: checkpoint written by ``latentmim pretrain``.
        overrides: ``key=value`` changes to the stored config (e.g. ``dataset=...`` to evaluate
            on other data); model-shape keys must stay as trained.

    Returns:
        (encoder in eval mode on CPU, the checkpoint's config with the overrides applied).
    """
    ckpt = load_checkpoint(path)
    if "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"checkpoint '{path}' is not a latentmim pre-training checkpoint")
    cfg = config_from_checkpoint(ckpt["config"], overrides)
    in_chans = ckpt["model"]["encoder.patch_embed.proj.weight"].shape[1]
    encoder = encoder_from_config(cfg, in_chans)
    state = {k[len("encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"checkpoint '{path}': encoder weights do not fit its config: {str(err).splitlines()[0]}") from None
    return encoder.eval(), cfg
