"""torch.hub entry points: ``torch.hub.load(REPO, "encoder", path=...)``.

``REPO`` is ``"<owner>/latentmim"`` on GitHub or a local checkout with ``source="local"``.
``path`` is any checkpoint or export that :func:`latentmim.load_encoder` reads: a latentmim
pre-training checkpoint, a ``latentmim export`` folder, the Latent MIM authors' release or an
MAE checkpoint.
"""

import sys
from pathlib import Path

dependencies = ["torch", "timm", "safetensors", "omegaconf", "hydra", "yaml"]

# A plain checkout keeps the package under src/ (torch.hub does not install it).
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def encoder(path: str, num_heads: int | None = None, device: str = "cpu"):
    """A pre-trained Latent MIM ViT encoder in eval mode (a timm ``VisionTransformer``).

    Args:
        path: a run folder, a checkpoint file or an export folder.
        num_heads: heads of a foreign encoder of non-standard width.
        device: where to put it.

    Returns:
        The encoder: ``encoder(imgs)`` -> (B, D), the feature latentmim's NN numbers are scored on
        (the mean of the patch tokens before the final norm); ``encoder.forward_features(imgs)``
        -> all tokens.
    """
    from latentmim.interop.load import load_encoder

    return load_encoder(path, num_heads=num_heads, device=device)
