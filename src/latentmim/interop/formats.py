"""Reading checkpoints of other codebases safely, and telling their formats apart.

Formats understood:

* ``latentmim``: ours (``{"model", "optimizer", "config", ...}``, ``encoder.patch_embed...``).
* ``lmim_authors``: the Latent MIM authors' code (github.com/yibingwei-1/LatentMIM):
  ``{"state_dict", "optimizer", "loss_scaler", "epoch"}`` with DDP's ``module.`` prefix, a
  *linear* patch embedding ``encoder.embed.proj`` on (row, col, channel)-flattened patches, the
  position table as ``encoder.pos_embed.pos_embeds``, the projector as ``encoder.head``, and
  ``target_encoder.*`` / ``decoder.*``.
* ``mae``: facebookresearch/mae (``{"model": state_dict}``; timm names, conv patch embedding,
  ``decoder_*`` and ``mask_token`` for the pixel decoder, ``head``/``fc_norm`` after fine-tuning).
* ``timm``: a bare timm ViT state dict (e.g. our ``encoder.safetensors``): handled like ``mae``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentmim.config.errors import ConfigError

FORMATS = ("latentmim", "lmim_authors", "mae", "timm")


def read_safetensors(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a ``.safetensors`` file; a missing or corrupt file is a :class:`ConfigError`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    try:
        return dict(load_file(str(path)))
    except Exception as err:  # safetensors raises its own error type for a corrupt header
        raise ConfigError(f"checkpoint '{path}' cannot be read: {str(err).splitlines()[0]}") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ``.pth`` (``weights_only``; argparse Namespaces, as in MAE's training checkpoints,
    are allowed as data) or a ``.safetensors`` file. Unreadable files raise :class:`ConfigError`."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or a pickle with code in it
        raise ConfigError(f"checkpoint '{path}' cannot be read safely: {str(err).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a dict of weights")
    return obj


def strip_prefix(state: dict[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Remove DDP's ``module.`` (or another) prefix where present."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def model_state(ckpt: dict[str, Any], source: str = "checkpoint") -> dict[str, Tensor]:
    """The weights inside a checkpoint dict (``model``, ``state_dict``, or the dict itself).

    Raises:
        ConfigError: naming ``source`` and the entry, when a weight is not a tensor.
    """
    for key in ("model", "state_dict"):
        if isinstance(ckpt.get(key), dict):
            state = strip_prefix(ckpt[key])
            bad = next((k for k, v in state.items() if not isinstance(v, Tensor)), None)
            if bad is not None:
                raise ConfigError(f"checkpoint '{source}': weight '{bad}' is a {type(state[bad]).__name__}, "
                                  "not a tensor")
            return state
    return strip_prefix({k: v for k, v in ckpt.items() if isinstance(v, Tensor)})


def detect_format(ckpt: dict[str, Any], source: str = "checkpoint") -> str:
    """One of :data:`FORMATS` (``ConfigError`` naming ``source`` when none fits)."""
    state = model_state(ckpt, source)
    if "config" in ckpt and "encoder.patch_embed.proj.weight" in state:
        return "latentmim"
    if "encoder.embed.proj.weight" in state:
        return "lmim_authors"
    if "patch_embed.proj.weight" in state:
        return "mae" if any(k.startswith(("decoder_", "mask_token")) for k in state) or "model" in ckpt else "timm"
    raise ConfigError(
        f"'{source}' is not a checkpoint latentmim knows: expected latentmim, Latent MIM authors' "
        "(encoder.embed.proj), MAE or timm ViT (patch_embed.proj) weights"
    )
