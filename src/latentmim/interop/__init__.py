"""Interoperability: import foreign checkpoints, export timm / Hugging Face folders, load encoders.

* :func:`load_encoder` -- a ready feature extractor from any supported file or folder.
* :func:`import_checkpoint` -- Latent MIM authors', MAE, timm or latentmim checkpoints.
* :func:`init_weights` -- start training from such a checkpoint (``init_from=PATH``).
* :func:`export_encoder` -- timm-loadable ``config.json`` + ``model.safetensors``.
"""

from latentmim.interop.formats import FORMATS, detect_format, read_checkpoint
from latentmim.interop.importer import Imported, import_checkpoint, init_weights
from latentmim.interop.load import load_encoder
from latentmim.interop.timm_export import export_encoder

__all__ = ["FORMATS", "Imported", "detect_format", "export_encoder", "import_checkpoint", "init_weights",
           "load_encoder", "read_checkpoint"]
