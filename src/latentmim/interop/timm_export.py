"""Export an encoder as a timm model folder (Hugging Face layout): config.json + model.safetensors.

The folder loads with ``timm.create_model("local-dir:DIR", pretrained=True)`` (or, pushed to the
Hub, ``hf-hub:user/repo``): ``config.json`` names the timm architecture and the arguments that
rebuild our exact encoder, and carries the preprocessing (input size, mean, std) in
``pretrained_cfg``. ``model.safetensors`` holds the state dict under timm's names, so it also
loads with ``strict=True`` into ``timm.create_model(architecture, **model_args)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import save_file

from latentmim.config.errors import ConfigError
from latentmim.interop.arch import PRESET_BY_WIDTH, EncoderArch
from latentmim.interop.importer import arch_of
from latentmim.models.vit import ViTEncoder

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
EXPORT_FILES = (WEIGHTS, CONFIG, CARD)  # everything an export writes; overwrite=true replaces only these
def timm_architecture(arch: EncoderArch) -> tuple[str, dict[str, Any]]:
    """A registered timm ViT name and the arguments that make it exactly this encoder."""
    side = arch.grid_size * arch.patch_size
    preset = PRESET_BY_WIDTH.get(arch.embed_dim, "vit_base")
    # the exact registered name if there is one, else the family's entry point (model_args below
    # set every size, so any ViT entry point builds the same model)
    name = next(n for n in (f"{preset}_patch{arch.patch_size}_{side}", f"{preset}_patch16_224",
                            "vit_base_patch16_224") if timm.is_model(n))
    args = {"img_size": side, "patch_size": arch.patch_size, "in_chans": arch.in_chans,
            "embed_dim": arch.embed_dim, "depth": arch.depth, "num_heads": arch.num_heads,
            "num_classes": 0, "global_pool": "token"}
    return name, args


def export_encoder(encoder: ViTEncoder, out_dir: str | Path, mean: tuple[float, ...], std: tuple[float, ...],
                   info: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/{config.json, model.safetensors, README.md}``.

    Args:
        encoder: the encoder to export.
        out_dir: destination folder (created).
        mean, std: input normalisation (per channel, pixels in [0, 1]).
        info: provenance and scores recorded under ``"latentmim"`` in config.json and in the
            README (e.g. ``{"source": path, "format": "latentmim", "nn": {...}}``).

    Returns:
        ``out_dir``.
    """
    arch = arch_of(encoder)
    name, args = timm_architecture(arch)
    model = timm.create_model(name, pretrained=False, **args)
    # Loading strictly into timm's own model is the guarantee that the export is timm-loadable.
    model.load_state_dict(encoder.state_dict(), strict=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS),
              metadata={"format": "pt"})
    side = args["img_size"]
    config = {
        "architecture": name,
        "num_classes": 0,
        "num_features": arch.embed_dim,
        "global_pool": "token",
        "model_args": args,
        "pretrained_cfg": {
            "tag": "latentmim", "input_size": [arch.in_chans, side, side], "fixed_input_size": True,
            "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
            "mean": list(mean), "std": list(std), "num_classes": 0,
            "first_conv": "patch_embed.proj", "classifier": "head",
        },
        "latentmim": {"grid_size": arch.grid_size, "patch_size": arch.patch_size,
                      "feature": "avgpool_prenorm (mean of patch tokens before the final norm)", **(info or {})},
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2))
    (out / CARD).write_text(_model_card(name, args, sum(p.numel() for p in model.parameters()), info or {}))
    return out


def _model_card(name: str, args: dict[str, Any], params: int, info: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {v:.2f} |" for k, v in sorted(info.get("nn", {}).items()))
    scores = f"\n| NN metric (%) | value |\n|---|---|\n{rows}\n" if rows else ""
    return f"""# Latent MIM encoder

timm `{name}` with `{json.dumps(args)}` ({params / 1e6:.2f} M parameters), exported by latentmim
from `{info.get("source", "?")}` ({info.get("format", "?")} format).
{scores}
```python
import timm, latentmim
model = timm.create_model("local-dir:<this folder>", pretrained=True)  # strict, timm only
encoder = latentmim.load_encoder("<this folder>")                       # latentmim's ViTEncoder
```
"""


def read_export(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json, state dict) of an export folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"export '{folder / CONFIG}' cannot be read: {str(err).splitlines()[0]}") from None
    try:
        return config, load_file(str(folder / WEIGHTS))
    except Exception as err:  # safetensors raises its own error type for a corrupt header
        raise ConfigError(f"export '{folder / WEIGHTS}' cannot be read: {str(err).splitlines()[0]}") from None
