"""Checkpoints written atomically and read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitive containers, so loading it never executes
code. Writing goes to a temporary file in the same folder, then ``os.replace``: a crash while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from latentmim.config.errors import ConfigError


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """torch.save to ``path`` via a temp file + rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing or unreadable file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file, or a pickle with code in it
        raise ConfigError(f"checkpoint '{path}' cannot be read safely: {str(err).splitlines()[0]}") from None


def rng_state() -> dict[str, Any]:
    """Global torch RNG states (drop path uses them); views and augmentation are seeded."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
