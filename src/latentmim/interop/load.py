"""``latentmim.load_encoder``: the one way to get an encoder out of a file or folder.

A *spec* names what to load:

* a run folder of ``latentmim pretrain`` (its ``checkpoint_latest.pth``);
* a pre-training checkpoint ``checkpoint_*.pth`` (its stored config comes with it);
* an export folder of ``latentmim export`` (``config.json`` + ``model.safetensors``);
* a bare timm-named ``.safetensors`` (a run's ``encoder.safetensors``);
* a foreign checkpoint: the Latent MIM authors' release or an MAE checkpoint;
* ``init:SPEC``: the architecture of checkpoint SPEC at the initialisation its run started
  from (the "random init" baseline a trained encoder must beat).

:func:`load_encoder` returns the encoder; :func:`load_pretrained` returns it with what is known
about its origin (the pre-training config, the whole model's weights), which the evaluations and
``init_from`` use. Both go through the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from latentmim.config.errors import ConfigError
from latentmim.config.load import config_from_checkpoint, read_run_config
from latentmim.config.schema import PretrainConfig
from latentmim.interop import lmim_authors, mae
from latentmim.interop.arch import arch_from_timm_state
from latentmim.interop.formats import detect_format, model_state, read_checkpoint, read_safetensors
from latentmim.interop.timm_export import CONFIG as EXPORT_CONFIG
from latentmim.interop.timm_export import WEIGHTS as EXPORT_WEIGHTS
from latentmim.interop.timm_export import read_export
from latentmim.methods.factory import encoder_from_config
from latentmim.models.vit import ViTEncoder

INIT_PREFIX = "init:"
LATEST = "checkpoint_latest.pth"


@dataclass
class Pretrained:
    """An encoder and what is known about where it came from.

    Attributes:
        encoder: the online encoder, in eval mode on the CPU.
        source: the spec it was loaded from.
        format: ``latentmim``, ``lmim_authors``, ``mae``, ``timm``, ``export`` or ``init``.
        config: the pre-training configuration: stored (ours), read off the weights plus the
            paper's defaults (foreign checkpoints), or None (exports and bare weights: nothing
            says what they were trained on, so evaluations then need ``dataset=``).
        weights: the whole model under latentmim names, for ``init_from`` (``encoder.*``,
            ``projector.*``, ... for ours and the authors'; ``encoder.*`` only otherwise).
    """

    encoder: ViTEncoder
    source: str
    format: str
    config: PretrainConfig | None = None
    weights: dict[str, Tensor] | None = None

    @property
    def image_size(self) -> int:
        """Side of the images the encoder expects: G * P."""
        return self.encoder.grid_size * self.encoder.patch_size


def checkpoint_path(spec: str | Path) -> Path:
    """The file a spec names: a run folder stands for its ``checkpoint_latest.pth``."""
    path = Path(spec)
    if path.is_dir() and (path / LATEST).is_file() and not (path / EXPORT_CONFIG).is_file():
        return path / LATEST
    return path


def load_pretrained(spec: str | Path, overrides: Sequence[str] = (), num_heads: int | None = None) -> Pretrained:
    """Load the encoder named by ``spec`` (see the module docstring) with its provenance.

    Args:
        spec: a path, or ``init:PATH``.
        overrides: ``key=value`` changes to a checkpoint's configuration (e.g. ``dataset=...``);
            model-shape keys must stay as trained.
        num_heads: attention heads of a foreign encoder of non-standard width.

    Raises:
        ConfigError: a missing, unreadable or unrecognised file, or weights that do not fit,
            named in one line.
    """
    spec = str(spec)
    if spec.startswith(INIT_PREFIX):
        return _initial_encoder(spec)
    path = checkpoint_path(spec)
    if not path.exists():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        if not (path / EXPORT_CONFIG).is_file() or not (path / EXPORT_WEIGHTS).is_file():
            raise ConfigError(f"'{path}' is a folder without {LATEST} (a run) or {EXPORT_CONFIG} and "
                              f"{EXPORT_WEIGHTS} (a latentmim export)")
        arch, state = read_export(path)
        return Pretrained(_loaded(arch.build(), state, path / EXPORT_WEIGHTS), spec, "export")
    if path.suffix == ".safetensors":
        state = read_safetensors(path)
        heads = num_heads or _run_heads(path)
        encoder = _loaded(arch_from_timm_state(state, str(path), heads).build(), state, path)
        return Pretrained(encoder, spec, "timm", weights={"encoder." + k: v for k, v in state.items()})
    return _from_checkpoint(path, spec, overrides, num_heads)


def load_encoder(spec: str | Path, overrides: Sequence[str] = (), num_heads: int | None = None,
                 device: str | torch.device = "cpu") -> ViTEncoder:
    """A pre-trained encoder, in eval mode, ready to extract features.

    ``spec`` is a run folder, a checkpoint, an export folder, a ``.safetensors`` of timm names,
    the Latent MIM authors' or an MAE checkpoint, or ``init:SPEC`` (module docstring).

    The encoder is a timm ``VisionTransformer``. ``encoder(imgs)`` returns the feature every NN
    and k-NN number of latentmim is scored on: the mean of the patch tokens before the final norm
    (B, D); ``encoder.forward_features(imgs)`` returns all tokens. Inputs are (B, C, G*P, G*P)
    images normalised like the training data (an export's ``config.json`` records the mean and
    std).

    Args:
        spec: see above.
        overrides: ``key=value`` config overrides (checkpoints only).
        num_heads: heads of a foreign encoder of non-standard width.
        device: where to put it.

    Raises:
        ConfigError: a missing, unreadable or unrecognised file, in one line.
    """
    return load_pretrained(spec, overrides, num_heads).encoder.to(device).eval()


def _from_checkpoint(path: Path, spec: str, overrides: Sequence[str], num_heads: int | None) -> Pretrained:
    """A ``.pth``: ours, the Latent MIM authors' or MAE's."""
    source = str(path)
    ckpt = read_checkpoint(path)
    fmt = detect_format(ckpt, source)
    state = model_state(ckpt, source)
    try:
        return _from_state(ckpt, state, fmt, path, spec, overrides, num_heads)
    except KeyError as err:  # a foreign file missing one of its format's tensors
        raise ConfigError(f"checkpoint '{source}': weight '{err.args[0]}' is missing") from None


def _from_state(ckpt: dict, state: dict[str, Tensor], fmt: str, path: Path, spec: str,
                overrides: Sequence[str], num_heads: int | None) -> Pretrained:
    source = str(path)
    if fmt == "latentmim":
        enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        cfg = config_from_checkpoint(ckpt["config"], overrides, source)
        encoder = encoder_from_config(cfg, _in_chans(enc_state, source))
        weights = state
    elif fmt == "lmim_authors":
        enc_state = lmim_authors.encoder_state(state, source)
        # released foreign checkpoints are ImageNet models: its normalisation unless overridden
        keys = {**lmim_authors.config_keys(state, source, num_heads), "dataset": "imagenet"}
        keys["num_vis"] = _paper_num_vis(keys["grid_size"])
        cfg = config_from_checkpoint(keys, overrides, source)
        encoder = lmim_authors.encoder_arch(state, source, num_heads=num_heads).build()
        weights = lmim_authors.model_state(state, source)
    else:
        enc_state = mae.encoder_state(state, source)
        arch = arch_from_timm_state(enc_state, source, num_heads)
        keys = {**arch.config(), "patch_gap": 0, "dataset": "imagenet", "mask_ratio": 0.75}  # MAE's views
        cfg = config_from_checkpoint(keys, overrides, source)
        encoder = arch.build()
        weights = {"encoder." + k: v for k, v in enc_state.items()}
    return Pretrained(_loaded(encoder, enc_state, path).eval(), spec, fmt, cfg, weights)


def _initial_encoder(spec: str) -> Pretrained:
    """``init:SPEC``: the encoder SPEC's run started from (same config, same seed)."""
    inner = spec[len(INIT_PREFIX):]
    path = checkpoint_path(inner)
    if not path.exists():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    if path.is_dir() or path.suffix == ".safetensors":
        raise ConfigError(f"checkpoint '{spec}': init: needs a checkpoint file with a configuration (.pth)")
    trained = _from_checkpoint(path, inner, (), None)
    cfg = trained.config
    assert cfg is not None  # every .pth format yields one
    # Every method's model builds its encoder first right after the run seeds torch, so seeding
    # and building the encoder alone reproduces the run's starting encoder exactly, without
    # touching the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.env.seed)
        encoder = encoder_from_config(cfg, trained.encoder.in_chans)
    return Pretrained(encoder.eval(), spec, "init", cfg)


def _in_chans(state: dict[str, Tensor], source: str) -> int:
    weight = state.get("patch_embed.proj.weight")
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise ConfigError(f"checkpoint '{source}': 'encoder.patch_embed.proj.weight' is missing or not a "
                          "(D, C, P, P) tensor")
    return weight.shape[1]


def _paper_num_vis(grid_size: int) -> int:
    """The paper's 20 visible patches of 196 (about 10%), scaled to another grid."""
    return max(1, min(grid_size * grid_size - 1, round(20 * grid_size * grid_size / 196)))


def _run_heads(path: Path) -> int | None:
    """Heads stored in the run's ``config.yaml`` next to a run's ``encoder.safetensors``."""
    cfg_file = path.parent / "config.yaml"
    return read_run_config(cfg_file).num_heads if cfg_file.is_file() else None


def _loaded(module: nn.Module, state: dict[str, Tensor], source: Path) -> nn.Module:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"checkpoint '{source}': weights do not fit: {load_error_detail(err)}") from None
    return module


def load_error_detail(err: RuntimeError) -> str:
    """The informative line of a ``load_state_dict`` error (the first one only names the class)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else lines[0]
