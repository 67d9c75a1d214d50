"""A run folder: what it may hold when a run starts in it, and what a finished run leaves there.

A run never overwrites another's output (:func:`check_run_folder`), and writes its final outputs
atomically with ``results.json``, the "finished" marker, last (:func:`write_run_outputs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import Tensor

from latentmim.config.errors import ConfigError
from latentmim.runtime.checkpoint import write_atomic, write_text_atomic
from latentmim.runtime.run_lock import LOCK_NAME, RunLock

LATEST = "checkpoint_latest.pth"
RESULTS = "results.json"  # written last: the "finished" marker that Slurm, sweeps and ablate trust


def check_run_folder(run_dir: Path, resume: bool, locked: bool = False) -> None:
    """A run never overwrites what is in its folder: another run, a finished one, or other output.

    Args:
        run_dir: the run folder.
        resume: the run continues the folder's checkpoint.
        locked: this process holds the folder's lock already (else a held lock is reported).

    Raises:
        ConfigError: one line naming the folder and what allows the run (``resume=True`` or a
            new ``job_name`` / ``output_dir``).
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output_dir: '{run_dir}' is a file, not a run folder")
    if not locked and ((run_dir / LOCK_NAME).exists() or (run_dir / LOCK_NAME).is_symlink()):
        RunLock(run_dir).acquire().release()  # a run in progress there: say so, whatever the folder holds
    if (run_dir / LATEST).exists():
        if not resume:
            raise ConfigError(f"output_dir: '{run_dir}' already holds a run ({LATEST}); pass resume=True to "
                              "continue it, or choose another job_name/output_dir")
        return
    if (run_dir / RESULTS).is_file():
        raise ConfigError(f"output_dir: '{run_dir}' holds finished results ({RESULTS}) and no {LATEST} to resume; "
                          "nothing was changed: choose another job_name/output_dir")
    if (run_dir / "config.json").is_file() and (run_dir / "model.safetensors").is_file():
        raise ConfigError(f"output_dir: '{run_dir}' holds a latentmim export; choose another job_name/output_dir")


def write_run_outputs(run_dir: Path, results: dict[str, Any], encoder: dict[str, Tensor],
                      baselines: dict[str, dict[str, float]]) -> None:
    """``encoder.safetensors``, ``results.md`` and ``results.json`` of a finished run, in that order.

    Every file is written atomically and ``results.json`` (the "finished" marker that Slurm
    resubmission, sweeps and ablate trust) last: a kill in between never leaves a finished run
    without its encoder.
    """
    write_atomic(run_dir / "encoder.safetensors", lambda f: f.write(save(encoder)))
    table = nn_table({"trained": results["trained"], **{k.replace("_", " "): v for k, v in baselines.items()}})
    write_text_atomic(run_dir / "results.md", table + "\n")
    write_text_atomic(run_dir / RESULTS, json.dumps(results, indent=2))
    print(table)
    print(f"outputs in {run_dir}: checkpoints, metrics.jsonl, curves.png, results.json, encoder.safetensors")


def nn_table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table of NN scores, one row per feature extractor."""
    keys = sorted({k for r in rows.values() for k in r})
    lines = ["| encoder | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.2f}" if k in r else "-" for k in keys) + " |")
    return "\n".join(lines)
