"""Checkpoints written atomically and read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitive containers, so loading it never executes
code. Writing goes to a temporary file in the same folder, then ``os.replace``: a crash while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from latentmim.config.errors import ConfigError


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` via a temp file in the same folder, fsync, rename, fsync the folder.

    A kill at any moment leaves either the old file or the new one, never a torn one (a stale
    ``.<name>.*.tmp`` is all that can remain: :func:`remove_stale_temps` clears it). A full disk
    or an unwritable folder is a :class:`ConfigError` naming the path; the old file is kept.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise ConfigError(f"cannot write '{path}': {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write '{path}': {err.strerror or err}; the previous file is intact") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """torch.save to ``path`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda f: torch.save(obj, f))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files a killed save left in ``folder``; returns what was removed."""
    folder = Path(folder)
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing or unreadable file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file, or a pickle with code in it
        raise ConfigError(f"checkpoint '{path}' cannot be read safely: {str(err).splitlines()[0]}") from None


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global torch RNG states a run draws from (drop path); views and augmentation are seeded.

    Args:
        device: the run's device: besides the CPU state, only its own CUDA generator is stored
            (not every visible GPU's), so a checkpoint resumes on a machine with other GPUs.
    """
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["device"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore :func:`rng_state` (its tensors on the CPU, as torch's setters require).

    Args:
        state: as stored by :func:`rng_state` (a checkpoint loaded with ``map_location="cpu"``).
        device: the run's device; its CUDA generator gets the stored device state.
    """
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and state.get("device") is not None:
        torch.cuda.set_rng_state(state["device"].cpu(), device)
