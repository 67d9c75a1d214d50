"""NN scores of pre-trained runs under two readings of the same images: the evaluation's and the training's.

Pre-training with a patch gap g cuts each P x P patch out of a cell of P+g pixels of a
G*(P+g)-pixel crop; every evaluation reads contiguous patches of a G*P-pixel image. The grid covers
the same part of the image either way, but inside a patch the training sees pixels at (P+g)/P
times the evaluation's resolution. This tool scores each run's encoder (and raw pixels) on the
run's own NN-monitor images read both ways:

* ``contiguous``: the monitor's protocol (images at G*P pixels, contiguous patches);
* ``gapped``: the same images at G*(P+g) pixels, one patch per cell cut at the cell's centre.

If a gap-trained encoder scores higher on the gapped reading, the evaluation's reading costs it
accuracy that the gap-free encoder does not lose (docs/recipes.md#why-a-patch-gap-of-2-px).

    python tools/gap_view_nn.py gap2=outputs/ablate_syn/masking/m90_gap \\
        gap0=outputs/ablate_syn/masking/m90_gap0 --gap 2 --out outputs/gap_view.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from latentmim.engine.data import build_monitor_loaders, raw_dataset
from latentmim.interop.load import load_pretrained
from latentmim.masking.patchify import centre_cut_patches
from latentmim.probing.features import encode_images, raw_pixel_features
from latentmim.probing.nn_monitor import nn_scores


def _parse(spec: str) -> tuple[str, Path]:
    """``LABEL=DIR`` or ``DIR`` (labelled by the folder's name)."""
    label, sep, folder = spec.rpartition("=")
    path = Path(folder if sep else spec)
    return (label if sep else path.name), path


def _gapped_pixels(grid: int, patch: int, gap: int):
    """Raw-pixel features of the gapped reading: the G*G centre-cut patches, concatenated."""
    return lambda imgs: centre_cut_patches(imgs, grid, patch, gap).flatten(1)  # (B, G*G*P*P*C), normalised floats


def score_run(run: Path, gap: int) -> dict[str, dict[str, float]]:
    """Scores of one run's encoder and of raw pixels under both readings.

    Returns:
        ``{"<reading>/<encoder|raw pixels>": {"nn_loo": ..., "knn20_top1": ...}}``.
    """
    ckpt = run / "checkpoint_latest.pth"
    if not ckpt.is_file():
        raise SystemExit(f"gap_view_nn: {ckpt}: no checkpoint (is '{run}' a pre-training run folder?)")
    loaded = load_pretrained(ckpt)
    encoder, cfg = loaded.encoder, loaded.config  # in eval mode
    cpu = torch.device("cpu")
    grid, patch = cfg.grid_size, cfg.patch_size
    base = raw_dataset(cfg, "train")  # built once: a rendered dataset's cache serves both readings
    classes = base[1].num_classes
    out: dict[str, dict[str, float]] = {}
    for reading, size, g in (("contiguous", grid * patch, 0), ("gapped", grid * (patch + gap), gap)):
        train, val = build_monitor_loaders(cfg, cpu, size=size, base=base)
        kw = dict(num_classes=classes, device=cpu, k=cfg.knn_k, temperature=cfg.knn_t)
        out[f"{reading}/encoder"] = nn_scores(lambda x, g=g: encode_images(encoder, x, patch_gap=g), train, val, **kw)
        pixels = _gapped_pixels(grid, patch, g) if g else raw_pixel_features
        out[f"{reading}/raw pixels"] = nn_scores(pixels, train, val, **kw)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR or RUN_DIR (a pre-training run folder)")
    parser.add_argument("--gap", type=int, default=2, help="gap g of the gapped reading (pixels, > 0)")
    parser.add_argument("--out", type=Path, help="write the scores as JSON here")
    args = parser.parse_args(argv)
    if args.gap < 1:
        raise SystemExit(f"gap_view_nn: --gap must be >= 1, got {args.gap}")
    results = {label: score_run(path, args.gap) for label, path in map(_parse, args.runs)}
    print("| run | reading | features | NN (LOO) | 20-NN |\n|---|---|---|---|---|")
    for label, rows in results.items():
        for key, s in rows.items():
            reading, features = key.split("/")
            print(f"| {label} | {reading} | {features} | {s['nn_loo']:.2f} | {s['knn20_top1']:.2f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
