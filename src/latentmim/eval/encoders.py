"""The one place where evaluations turn a checkpoint spec into an encoder.

Every suite calls :func:`load_any_encoder`. It asks the registered formats in order; a format's
loader returns ``None`` when the spec is not its kind. To evaluate checkpoints of a new kind,
write a loader returning a :class:`LoadedEncoder` (a :class:`ViTEncoder`, timm's layout) and add
it with :func:`register_encoder_format`.

Built in:

* ``init:PATH``: the architecture of checkpoint PATH at the initialisation its pre-training run
  started from (same seed): the "random init" baseline a trained encoder must beat.
* ``interop``: everything :mod:`latentmim.interop` reads: our pre-training checkpoints (their
  stored config supplies the default evaluation dataset), the Latent MIM authors' and MAE
  checkpoints, bare timm ``.safetensors`` and ``latentmim export`` folders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.interop import import_checkpoint, load_encoder
from latentmim.methods.factory import encoder_from_config
from latentmim.models.vit import ViTEncoder

INIT_PREFIX = "init:"


@dataclass
class LoadedEncoder:
    """An encoder ready for evaluation and what is known about where it came from.

    Attributes:
        encoder: the online encoder, eval mode, on CPU.
        source: the checkpoint spec it was loaded from.
        format: name of the loader that recognised it.
        pretrain: the pre-training configuration when the format stores one (its dataset is
            the default evaluation dataset), else None (evaluations then need ``dataset=``).
    """

    encoder: ViTEncoder
    source: str
    format: str
    pretrain: PretrainConfig | None = None

    @property
    def image_size(self) -> int:
        """Side of the images the encoder expects: G * P."""
        return self.encoder.grid_size * self.encoder.patch_size


# A loader gets the checkpoint spec and returns None when the file is not its format.
EncoderLoader = Callable[[str], LoadedEncoder | None]
_FORMATS: dict[str, EncoderLoader] = {}


def register_encoder_format(name: str, loader: EncoderLoader) -> None:
    """Add (or replace) a checkpoint format; it is tried before those registered earlier.

    The built-in ``interop`` format is registered first, so it is the last resort: it raises a
    :class:`ConfigError` for files nothing recognises instead of returning None.
    """
    rest = {k: v for k, v in _FORMATS.items() if k != name}
    _FORMATS.clear()
    _FORMATS.update({name: loader, **rest})


def load_any_encoder(spec: str) -> LoadedEncoder:
    """Load the encoder named by ``spec`` with the first format that recognises it.

    Args:
        spec: a checkpoint file or export folder, or ``init:PATH``.

    Raises:
        ConfigError: missing path, or no registered format recognises it.
    """
    path = spec[len(INIT_PREFIX):] if spec.startswith(INIT_PREFIX) else spec
    if not Path(path).exists():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    for loader in list(_FORMATS.values()):
        loaded = loader(spec)
        if loaded is not None:
            return loaded
    raise ConfigError(f"checkpoint '{spec}' is in no known format (tried: {', '.join(_FORMATS)})")


def _load_init(spec: str) -> LoadedEncoder | None:
    if not spec.startswith(INIT_PREFIX):
        return None
    path = spec[len(INIT_PREFIX):]
    if Path(path).is_dir() or path.endswith(".safetensors"):
        raise ConfigError(f"checkpoint '{spec}': init: needs a checkpoint file with a configuration (.pth)")
    imported = import_checkpoint(path)
    cfg = imported.config
    # Every method's model builds its encoder first right after the run seeds torch, so
    # seeding and building the encoder alone reproduces the run's starting encoder exactly,
    # without touching the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.env.seed)
        encoder = encoder_from_config(cfg, imported.encoder.in_chans)
    return LoadedEncoder(encoder.eval(), spec, "init", cfg)


def _load_interop(spec: str) -> LoadedEncoder | None:
    path = Path(spec)
    if path.is_dir() or path.suffix == ".safetensors":
        # Exports and bare weights carry no training config: evaluations then need dataset=.
        return LoadedEncoder(load_encoder(path), spec, "export" if path.is_dir() else "timm", None)
    imported = import_checkpoint(path)
    return LoadedEncoder(imported.encoder, spec, imported.format, imported.config)


register_encoder_format("interop", _load_interop)
register_encoder_format("init", _load_init)
