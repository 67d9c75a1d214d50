"""Our encoder as a standard timm ViT classifier (MAE's fine-tuning model).

MAE fine-tunes with global average pooling of the patch tokens followed by a fresh LayerNorm
(``fc_norm``) and a new linear head; the pre-training final norm is discarded. timm builds
exactly that with ``global_pool="avg"`` (``fc_norm`` on, final ``norm`` an identity), so the
fine-tuned weights are a plain timm checkpoint: ``timm.create_model(architecture, **kwargs)``
loads them with ``strict=True``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from latentmim.config.errors import ConfigError
from latentmim.models.vit import VIT_PRESETS, ViTEncoder

# timm's registered names of the presets (their patch size and resolution are overridden).
TIMM_ARCHS = {
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
    "vit_base": "vit_base_patch16_224",
    "vit_large": "vit_large_patch16_224",
    "vit_huge": "vit_huge_patch14_224",
}
# Parameters the classifier has and the encoder lacks: MAE initialises them fresh.
NEW_KEYS = {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}


def timm_spec(encoder: ViTEncoder, num_classes: int, drop_path: float = 0.0) -> tuple[str, dict[str, Any]]:
    """The timm architecture name and ``create_model`` keyword arguments for ``encoder``.

    Returns:
        (architecture, kwargs); ``timm.create_model(architecture, **kwargs)`` builds the model.
    """
    preset = next((n for n, s in VIT_PRESETS.items() if s.embed_dim == encoder.embed_dim), "vit_base")
    kwargs = {
        "pretrained": False,
        "num_classes": num_classes,
        "global_pool": "avg",
        "fc_norm": True,
        "img_size": encoder.grid_size * encoder.patch_size,
        "patch_size": encoder.patch_size,
        "in_chans": encoder.in_chans,
        "embed_dim": encoder.embed_dim,
        "depth": len(encoder.blocks),
        "num_heads": encoder.blocks[0].attn.num_heads,
        "drop_path_rate": drop_path,
    }
    return TIMM_ARCHS[preset], kwargs


def classifier_from_encoder(encoder: ViTEncoder, num_classes: int, drop_path: float = 0.0,
                            head_init_std: float = 2e-5) -> tuple[VisionTransformer, str, dict[str, Any]]:
    """A timm ViT classifier carrying ``encoder``'s weights, with new ``fc_norm`` and head.

    Args:
        encoder: the pre-trained encoder.
        num_classes: C.
        drop_path: stochastic depth rate of the classifier.
        head_init_std: std of the head's truncated-normal init (MAE: 2e-5).

    Returns:
        (model, architecture, kwargs).
    """
    arch, kwargs = timm_spec(encoder, num_classes, drop_path)
    model = timm.create_model(arch, **kwargs)
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("norm.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != NEW_KEYS or unexpected:
        raise ConfigError(
            f"encoder weights do not fit timm '{arch}': missing {sorted(set(missing) - NEW_KEYS)}, "
            f"unexpected {sorted(unexpected)}"
        )
    nn.init.trunc_normal_(model.head.weight, std=head_init_std)
    nn.init.zeros_(model.head.bias)
    return model, arch, kwargs


def save_timm_checkpoint(model: VisionTransformer, arch: str, kwargs: dict[str, Any], out_dir: Path) -> Path:
    """Write ``model.safetensors`` and ``timm_model.json`` ({architecture, kwargs}) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.safetensors"
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))
    spec = {"architecture": arch, "kwargs": {k: v for k, v in kwargs.items() if k != "drop_path_rate"}}
    (out_dir / "timm_model.json").write_text(json.dumps(spec, indent=2) + "\n")
    return path


def load_timm_checkpoint(out_dir: str | Path) -> VisionTransformer:
    """Rebuild a fine-tuned classifier from ``out_dir`` (strict load), in eval mode."""
    out_dir = Path(out_dir)
    spec = json.loads((out_dir / "timm_model.json").read_text())
    model = timm.create_model(spec["architecture"], **spec["kwargs"])
    model.load_state_dict(load_file(str(out_dir / "model.safetensors")), strict=True)
    return model.eval()
