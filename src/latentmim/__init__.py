"""latentmim: Latent Masked Image Modeling (ECCV 2024) and its relatives, in PyTorch.

The public API, for use from your own code::

    import latentmim

    cfg = latentmim.compose_config(["epochs=5"])          # a validated config (named config: demo)
    latentmim.pretrain(cfg, dataset=my_dataset)            # the library's training loop on your data

    model = latentmim.build_method(cfg)                    # or build the method for your own loop
    loss, metrics = model(images)                          # images: (B, C, S, S) training crops

    encoder = latentmim.load_encoder("outputs/demo")       # any run, checkpoint or export
    features = encoder(images)                             # (B, D): the feature NN numbers use

Everything else lives in the subpackages (``latentmim.methods``, ``latentmim.eval``, ...).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name -> module; imported on first use, so ``import latentmim`` stays cheap (no torch, Hydra).
_API = {
    "PretrainConfig": "latentmim.config.schema",
    "compose_config": "latentmim.config.load",
    "PretrainMethod": "latentmim.methods.base",
    "build_method": "latentmim.methods.factory",
    "ema_momentum": "latentmim.methods.ema",
    "pretrain": "latentmim.engine.pretrain",
    "load_encoder": "latentmim.interop.load",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'latentmim' has no attribute {name!r}")
