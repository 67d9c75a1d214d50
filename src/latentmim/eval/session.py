"""What every evaluation does first: threads, device, encoder, output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import EvalCommon
from latentmim.interop.load import INIT_PREFIX, Pretrained, load_pretrained
from latentmim.training.precision import resolve_device


@dataclass
class EvalSession:
    """The resolved pieces of one evaluation run.

    Attributes:
        loaded: the encoder (on ``device``, eval mode) and its provenance.
        device: where it runs (``device=auto`` picks CUDA when present).
        out_dir: where results go (created by the first write, so a failed run leaves nothing).
    """

    loaded: Pretrained
    device: torch.device
    out_dir: Path


def default_output_dir(checkpoint: str, suite: str) -> Path:
    """``<checkpoint folder>/eval_<suite>`` (``eval_<suite>_init`` for ``init:`` specs)."""
    init = checkpoint.startswith(INIT_PREFIX)
    path = Path(checkpoint[len(INIT_PREFIX):] if init else checkpoint)
    return path.parent / f"eval_{suite}{'_init' if init else ''}"


def resolve_precision(precision: str | None, loaded: Pretrained) -> str:
    """``precision``, or when None the checkpoint's ``env.precision`` (fp32 for formats without one)."""
    if precision is not None:
        return precision
    return loaded.config.env.precision if loaded.config is not None else "fp32"


def start_session(cfg: EvalCommon, suite: str) -> EvalSession:
    """Apply threads, pick the device, load the encoder, choose the output folder.

    Raises:
        ConfigError: missing/unknown checkpoint, unusable device.
    """
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device': {cfg.device!r} requested but CUDA is not available")
    loaded = load_pretrained(cfg.checkpoint)
    loaded.encoder.to(device).eval()
    # Features are extracted at the precision the model was trained in, unless the user says
    # otherwise: the suites read cfg.precision, so it is resolved here, once, for all of them.
    cfg.precision = resolve_precision(cfg.precision, loaded)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir(cfg.checkpoint, suite)
    return EvalSession(loaded, device, out_dir)
