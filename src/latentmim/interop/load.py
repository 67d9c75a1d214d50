"""``latentmim.load_encoder``: a ready feature extractor from any checkpoint or export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latentmim.config.errors import ConfigError
from latentmim.interop.arch import EncoderArch, arch_from_timm_state
from latentmim.interop.importer import import_checkpoint, load_error_detail
from latentmim.interop.timm_export import CONFIG, WEIGHTS, read_export
from latentmim.models.vit import ViTEncoder


def _from_export(folder: Path) -> ViTEncoder:
    config, state = read_export(folder)
    a = config.get("model_args", {})
    try:
        arch = EncoderArch(a["embed_dim"], a["depth"], a["num_heads"], a["patch_size"],
                           a["img_size"] // a["patch_size"], a.get("in_chans", 3))
    except KeyError as err:
        raise ConfigError(f"'{folder / CONFIG}': model_args lacks {err.args[0]}") from None
    return _loaded(arch.build(), state, folder / WEIGHTS)


def _loaded(encoder: ViTEncoder, state: dict, source: Path) -> ViTEncoder:
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"'{source}': weights do not fit: {load_error_detail(err)}") from None
    return encoder


def _run_heads(path: Path) -> int | None:
    """Heads stored in the run's ``config.yaml`` next to a run's ``encoder.safetensors``."""
    cfg_file = path.parent / "config.yaml"
    if not cfg_file.is_file():
        return None
    from omegaconf import OmegaConf

    return OmegaConf.load(cfg_file).get("num_heads")


def load_encoder(path: str | Path, overrides: Sequence[str] = (), num_heads: int | None = None,
                 device: str = "cpu") -> ViTEncoder:
    """Load a pre-trained encoder, in eval mode, ready to extract features.

    ``path`` may be a latentmim pre-training checkpoint (``checkpoint_*.pth``), an export
    folder (``latentmim export``: ``config.json`` + ``model.safetensors``), a bare timm-named
    ``.safetensors`` (a run's ``encoder.safetensors``), or a foreign checkpoint: the Latent MIM
    authors' release or an MAE checkpoint.

    The encoder is a timm ``VisionTransformer``: ``encoder(imgs)`` gives the cls feature
    (B, D), ``encoder.forward_features(imgs)`` all tokens; the NN protocol's feature (mean of
    the patch tokens before the final norm) is
    ``latentmim.probing.features.encode_images(encoder, imgs)``. Inputs are (B, C, G*P, G*P)
    images normalised like the training data (see the export's ``config.json``).

    Args:
        path: see above.
        overrides: ``key=value`` config overrides (checkpoints only).
        num_heads: heads of a foreign encoder of non-standard width.
        device: where to put it.

    Raises:
        ConfigError: a missing, unreadable or unrecognised file.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
            raise ConfigError(f"'{path}' is a folder without {CONFIG} and {WEIGHTS} (a latentmim export)")
        encoder = _from_export(path)
    elif path.suffix == ".safetensors":
        from latentmim.interop.formats import read_checkpoint

        state = read_checkpoint(path)  # a missing or corrupt file is one ConfigError line
        heads = num_heads or _run_heads(path)
        encoder = _loaded(arch_from_timm_state(state, str(path), heads).build(), state, path)
    else:
        encoder = import_checkpoint(path, overrides, num_heads).encoder
    return encoder.to(device).eval()
