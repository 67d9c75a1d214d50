"""latentmim: Latent Masked Image Modeling and relatives."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_encoder"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``import latentmim`` stays cheap (no torch, timm or Hydra).
    if name == "load_encoder":
        from latentmim.interop.load import load_encoder

        return load_encoder
    raise AttributeError(f"module 'latentmim' has no attribute {name!r}")
