"""Load the online encoder of a pre-training checkpoint, ready for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latentmim.config.schema import PretrainConfig
from latentmim.models.vit import ViTEncoder


def load_encoder_checkpoint(path: str | Path, overrides: Sequence[str] = ()) -> tuple[ViTEncoder, PretrainConfig]:
    """Rebuild the encoder of a pre-training checkpoint (``checkpoint_*.pth``).

    Foreign checkpoints (the Latent MIM authors' release, MAE, bare timm ViT weights) are
    imported through :func:`latentmim.interop.import_checkpoint`; their configuration is read
    off the weights, with the paper's defaults for the rest.

    Args:
        path: checkpoint written by ``latentmim pretrain`` (or a foreign one).
        overrides: ``key=value`` changes to the stored config (e.g. ``dataset=...`` to evaluate
            on other data); model-shape keys must stay as trained.

    Returns:
        (encoder in eval mode on CPU, the checkpoint's config with the overrides applied).
    """
    from latentmim.interop.importer import import_checkpoint

    imported = import_checkpoint(path, overrides)
    return imported.encoder, imported.config
