"""``latentmim export checkpoint=PATH output=DIR``: a timm / Hugging Face folder of the encoder.

Other arguments: ``pool=avg|token`` (what ``model(x)`` returns: the NN feature, or the cls
token), ``num_heads=N`` (foreign encoders of non-standard width), ``overwrite=true``, and
``key=value`` config overrides (e.g. ``dataset=...``, which selects the normalisation recorded in
config.json). After writing, the folder is loaded back with timm and its output is compared with
latentmim's own encoder on a random batch; a mismatch is an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentmim.config.errors import ConfigError
from latentmim.interop.timm_export import EXPORT_FILES, POOLS


@dataclass
class ExportOptions:
    """Options of ``latentmim export``; every other ``key=value`` overrides the checkpoint's config."""

    checkpoint: str = ""  # a run folder, a latentmim checkpoint, an export folder, or the authors' / MAE's file
    output: str = ""  # the export folder to write (model.safetensors, config.json, README.md)
    pool: str = "avg"  # avg: model(x) is the NN feature (mean of patch tokens before the final norm) | token: the cls token
    num_heads: int | None = None  # attention heads of a foreign encoder of non-standard width
    overwrite: bool = False  # replace an earlier export in ``output``


OPTIONS = tuple(f.name for f in dataclasses.fields(ExportOptions))


def _parse(args: list[str]) -> tuple[dict[str, str], list[str]]:
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ConfigError(f"export: expected key=value arguments, got '{bad[0]}'")
    opts = {k: v for k, v in (a.split("=", 1) for a in args) if k in OPTIONS}
    for key in ("checkpoint", "output"):
        if not opts.get(key):
            raise ConfigError(f"export: missing '{key}=' (usage: latentmim export checkpoint=PATH output=DIR)")
    return opts, [a for a in args if a.split("=", 1)[0] not in OPTIONS]


def check_output(out: Path, overwrite: bool) -> None:
    """An export goes into a new or empty folder, or (``overwrite=true``) over an earlier export.

    Raises:
        ConfigError: ``output`` is a file, or a folder holding anything but an export's own files
            (``overwrite=true`` never deletes those), or an export without ``overwrite=true``.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export: output '{out}' is a file, not a folder")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"export: output '{out}' lies under '{blocking}', which is a file")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    foreign = [name for name in entries if name not in EXPORT_FILES]
    if foreign:
        raise ConfigError(f"export: output '{out}' holds '{foreign[0]}', which is not part of an export; "
                          "choose an empty or new folder")
    if entries and not overwrite:
        raise ConfigError(f"export: output '{out}' holds an earlier export (pass overwrite=true to replace it)")


def _export_stats(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = json.loads((folder / "config.json").read_text()).get("pretrained_cfg", {})
    return tuple(cfg.get("mean", ())), tuple(cfg.get("std", ()))


def _info(path: Path, fmt: str) -> dict[str, Any]:
    """Provenance, plus the run's final NN scores when the checkpoint sits in a run folder."""
    info: dict[str, Any] = {"source": str(path), "format": fmt}
    results = (path if path.is_dir() else path.parent) / "results.json"
    if fmt == "latentmim" and results.is_file():
        info["nn"] = json.loads(results.read_text()).get("trained", {})
    return info


@torch.no_grad()
def verify_with_timm(folder: Path, encoder: torch.nn.Module, pool: str, seed: int = 0) -> float:
    """Max |timm output - latentmim's| of the exported folder on a random batch.

    ``pool=avg``: timm's ``model(x)`` against the NN feature ``encoder(x)``; ``pool=token``:
    timm's tokens against ours after the final norm.
    """
    import timm

    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    side = encoder.grid_size * encoder.patch_size
    imgs = torch.randn(2, encoder.in_chans, side, side, generator=torch.Generator().manual_seed(seed))
    if pool == "avg":
        return (model(imgs) - encoder(imgs)).abs().max().item()
    return (model.forward_features(imgs) - encoder.forward_features(imgs)).abs().max().item()


def run(args: list[str]) -> int:
    from latentmim.data.info import dataset_stats
    from latentmim.interop.load import load_pretrained
    from latentmim.interop.timm_export import export_encoder

    opts, overrides = _parse(args)
    out = Path(opts["output"])
    overwrite = opts.get("overwrite", "false").lower() in ("1", "true", "yes")
    check_output(out, overwrite)
    try:
        heads = int(opts["num_heads"]) if "num_heads" in opts else None
    except ValueError:
        raise ConfigError(f"export: num_heads must be an integer, got '{opts['num_heads']}'") from None
    pool = opts.get("pool", "avg")
    if pool not in POOLS:
        raise ConfigError(f"export: pool must be one of {', '.join(POOLS)}, got '{pool}'")
    path = Path(opts["checkpoint"])
    imported = load_pretrained(path, overrides, heads)
    chans = imported.encoder.in_chans
    if imported.format == "export":  # an export keeps its own normalisation
        mean, std = _export_stats(path)
    elif imported.config is not None:
        mean, std = dataset_stats(imported.config.dataset)
    else:
        mean, std = (0.5,) * chans, (0.5,) * chans
    if len(mean) != chans:
        mean, std = (0.5,) * chans, (0.5,) * chans
    # Written next to the destination, then moved into place: no half-written export.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        export_encoder(imported.encoder, tmp, mean, std, _info(path, imported.format), pool)
        diff = verify_with_timm(tmp, imported.encoder, pool)
        if diff > 1e-4:
            raise ConfigError(f"export: timm features differ from latentmim's by {diff:.2e}; nothing written")
        if out.exists():  # an earlier export: replace its files one by one, nothing else is touched
            for name in EXPORT_FILES:
                os.replace(tmp / name, out / name)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    config = json.loads((out / "config.json").read_text())
    print(f"exported {imported.format} encoder from {path} to {out} (timm '{config['architecture']}', "
          f"features match timm within {diff:.1e})")
    print(f'  timm:      timm.create_model("local-dir:{out}", pretrained=True)')
    print(f'  latentmim: latentmim.load_encoder("{out}")')
    return 0
