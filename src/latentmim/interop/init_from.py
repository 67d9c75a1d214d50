"""``init_from=SPEC``: start a training model from the weights of any checkpoint latentmim reads."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from latentmim.config.errors import ConfigError
from latentmim.interop.load import load_error_detail, load_pretrained


@torch.no_grad()
def init_weights(model: nn.Module, spec: str | Path) -> str:
    """Initialise a training model from a checkpoint of any supported format.

    The whole model is loaded when the checkpoint holds one with exactly the same tensors (ours,
    or the authors' Latent MIM for ``method=lmim`` with matching sizes). Otherwise only the
    encoder is (MAE, timm, an export, or another method's checkpoint); a momentum target encoder
    and target projector then restart as copies of the online ones, as at the start of training.

    Returns:
        One line saying what was loaded.

    Raises:
        ConfigError: naming ``init_from`` when the weights do not fit the configured model.
    """
    loaded = load_pretrained(spec)
    own = model.state_dict()
    weights = loaded.weights or {"encoder." + k: v for k, v in loaded.encoder.state_dict().items()}
    if set(weights) == set(own) and all(weights[k].shape == own[k].shape for k in own):
        model.load_state_dict(weights)
        return f"init_from: loaded the whole model from {loaded.format} checkpoint '{spec}'"
    encoder = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    try:
        model.encoder.load_state_dict(encoder)
    except RuntimeError as err:
        raise ConfigError(f"config key 'init_from': the encoder of '{spec}' does not fit this model: "
                          f"{load_error_detail(err)}") from None
    for online, target in (("encoder", "target_encoder"), ("projector", "target_projector")):
        if isinstance(getattr(model, target, None), nn.Module):
            src = getattr(model, online).state_dict()
            getattr(model, target).load_state_dict({k: v for k, v in src.items() if k in getattr(model, target).state_dict()})
    return f"init_from: loaded the encoder from {loaded.format} checkpoint '{spec}' (other parts freshly initialised)"
