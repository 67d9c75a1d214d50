"""Import MAE checkpoints (facebookresearch/mae) and bare timm ViT state dicts.

MAE's encoder is timm's VisionTransformer, so its tensors keep their names in ours
(conv ``patch_embed.proj``, ``pos_embed`` (1, 1+N, D) with a zero cls row, ``blocks.*``,
``norm``). What MAE adds around it is dropped: the pixel decoder (``decoder_*``,
``mask_token``), and after fine-tuning the classifier ``head``.
"""

from __future__ import annotations

from torch import Tensor

from latentmim.config.errors import ConfigError

_DROPPED = ("decoder_", "mask_token", "head.")


def encoder_state(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """The encoder's tensors of an MAE / timm state dict.

    Raises:
        ConfigError: a fine-tuned checkpoint with global pooling (``fc_norm`` instead of the
            final ``norm``), whose last norm is applied after pooling and has no place in a
            token encoder.
    """
    if "fc_norm.weight" in state and "norm.weight" not in state:
        raise ConfigError(
            f"'{source}': an MAE fine-tuned checkpoint with global pooling (fc_norm); use a pre-trained "
            "checkpoint (mae_pretrain_vit_*.pth or a training checkpoint) instead"
        )
    return {k: v for k, v in state.items() if not k.startswith(_DROPPED) and not k.startswith("fc_norm.")}
