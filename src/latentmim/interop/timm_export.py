"""Export an encoder as a timm model folder (Hugging Face layout): config.json + model.safetensors.

The folder loads with ``timm.create_model("local-dir:DIR", pretrained=True)`` (or, pushed to the
Hub, ``hf-hub:user/repo``): ``config.json`` names the timm architecture and the arguments that
rebuild our exact encoder, and carries the preprocessing (input size, mean, std) in
``pretrained_cfg``. ``model.safetensors`` holds the state dict under timm's names, so it also
loads with ``strict=True`` into ``timm.create_model(architecture, **model_args)``.

Two poolings (``pool``):

* ``avg`` (the default): ``model(x)`` is the feature every latentmim NN/k-NN number is scored
  on, the mean of the patch tokens before the final norm (timm ``global_pool="avg"``,
  ``final_norm=False``). The final LayerNorm of pre-training is not part of this model;
  ``forward_features`` gives the tokens it would have normalised.
* ``token``: timm's classic layout, ``model(x)`` is the cls token after the final norm.
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
from latentmim.models.vit import ViTEncoder

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
EXPORT_FILES = (WEIGHTS, CONFIG, CARD)  # everything an export writes; overwrite=true replaces only these
POOLS = ("avg", "token")


def timm_architecture(arch: EncoderArch, pool: str = "avg") -> tuple[str, dict[str, Any]]:
    """A registered timm ViT name and the arguments that make it exactly this encoder.

    Args:
        arch: the encoder's sizes.
        pool: ``avg`` (output = the NN feature, no final norm) or ``token`` (cls after the norm).
    """
    side = arch.grid_size * arch.patch_size
    preset = PRESET_BY_WIDTH.get(arch.embed_dim, "vit_base")
    # the exact registered name if there is one, else the family's entry point (model_args below
    # set every size, so any ViT entry point builds the same model)
    name = next(n for n in (f"{preset}_patch{arch.patch_size}_{side}", f"{preset}_patch16_224",
                            "vit_base_patch16_224") if timm.is_model(n))
    args = {"img_size": side, "patch_size": arch.patch_size, "in_chans": arch.in_chans,
            "embed_dim": arch.embed_dim, "depth": arch.depth, "num_heads": arch.num_heads,
            "num_classes": 0, "global_pool": pool}
    if pool == "avg":
        args.update(final_norm=False, fc_norm=False)  # the mean of the un-normalised patch tokens
    return name, args


def export_encoder(encoder: ViTEncoder, out_dir: str | Path, mean: tuple[float, ...], std: tuple[float, ...],
                   info: dict[str, Any] | None = None, pool: str = "avg") -> Path:
    """Write ``out_dir/{config.json, model.safetensors, README.md}``.

    Args:
        encoder: the encoder to export.
        out_dir: destination folder (created).
        mean, std: input normalisation (per channel, pixels in [0, 1]).
        info: provenance and scores recorded under ``"latentmim"`` in config.json and in the
            README (e.g. ``{"source": path, "format": "latentmim", "nn": {...}}``).
        pool: ``avg`` (the NN feature) or ``token`` (module docstring).

    Returns:
        ``out_dir``.
    """
    if pool not in POOLS:
        raise ConfigError(f"export: pool must be one of {', '.join(POOLS)}, got {pool!r}")
    arch = EncoderArch.of(encoder)
    if pool == "token" and not arch.final_norm:
        raise ConfigError("export: pool=token needs the final norm, which this encoder (an avg export) "
                          "does not have; export from the run's checkpoint instead")
    name, args = timm_architecture(arch, pool)
    model = timm.create_model(name, pretrained=False, **args)
    state = encoder.state_dict()
    if pool == "avg":  # the final norm is not part of the NN feature
        state = {k: v for k, v in state.items() if not k.startswith("norm.")}
    # Loading strictly into timm's own model is the guarantee that the export is timm-loadable.
    model.load_state_dict(state, strict=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS),
              metadata={"format": "pt"})
    side = args["img_size"]
    config = {
        "architecture": name,
        "num_classes": 0,
        "num_features": arch.embed_dim,
        "global_pool": pool,
        "model_args": args,
        "pretrained_cfg": {
            "tag": "latentmim", "input_size": [arch.in_chans, side, side], "fixed_input_size": True,
            "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
            "mean": list(mean), "std": list(std), "num_classes": 0,
            "first_conv": "patch_embed.proj", "classifier": "head",
        },
        "latentmim": {"grid_size": arch.grid_size, "patch_size": arch.patch_size,
                      "feature": FEATURE_OF_POOL[pool], **(info or {})},
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2))
    (out / CARD).write_text(_model_card(name, args, sum(p.numel() for p in model.parameters()), info or {}, pool))
    return out


FEATURE_OF_POOL = {
    "avg": "avgpool_prenorm: model(x) is the mean of the patch tokens before the final norm, the NN feature",
    "token": "cls: model(x) is the cls token after the final norm; the NN feature is not this model's output",
}


def _model_card(name: str, args: dict[str, Any], params: int, info: dict[str, Any], pool: str) -> str:
    rows = "\n".join(f"| {k} | {v:.2f} |" for k, v in sorted(info.get("nn", {}).items()))
    scores = f"\n| NN metric (%) | value |\n|---|---|\n{rows}\n" if rows else ""
    return f"""# Latent MIM encoder

timm `{name}` with `{json.dumps(args)}` ({params / 1e6:.2f} M parameters), exported by latentmim
from `{info.get("source", "?")}` ({info.get("format", "?")} format).
Output: {FEATURE_OF_POOL[pool]}.
{scores}
```python
import timm, latentmim
model = timm.create_model("local-dir:<this folder>", pretrained=True)  # strict, timm only
features = model(images)                                                # (B, D)
encoder = latentmim.load_encoder("<this folder>")                       # latentmim's ViTEncoder
```
"""


def read_export(folder: str | Path) -> tuple[EncoderArch, dict[str, torch.Tensor]]:
    """The architecture (from ``config.json``, checked) and the weights of an export folder.

    Raises:
        ConfigError: one line naming the file and the field: unreadable JSON, not a mapping, a
            missing or impossible size, or unreadable weights.
    """
    from latentmim.interop.formats import read_safetensors

    folder = Path(folder)
    source = str(folder / CONFIG)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"export '{source}' cannot be read: {str(err).splitlines()[0]}") from None
    a = config.get("model_args") if isinstance(config, dict) else None
    if not isinstance(a, dict):
        raise ConfigError(f"export '{source}': 'model_args' must be a mapping of the model's sizes")
    try:
        patch = a["patch_size"]
        arch = EncoderArch(a["embed_dim"], a["depth"], a["num_heads"], patch,
                           a["img_size"] // patch if isinstance(patch, int) and patch > 0 else 0,
                           a.get("in_chans", 3), a.get("final_norm", True))
    except KeyError as err:
        raise ConfigError(f"export '{source}': model_args lacks '{err.args[0]}'") from None
    except TypeError:
        raise ConfigError(f"export '{source}': model_args sizes must be integers") from None
    if isinstance(patch, int) and patch > 0 and a["img_size"] % patch:
        raise ConfigError(f"export '{source}': img_size {a['img_size']} is not a multiple of patch_size {patch}")
    return arch.check(source), read_safetensors(folder / WEIGHTS)
