"""Two readings of why clustering segments flat-colour ``synthetic`` images by colour (section 13).

``colour``: Ward clustering of each patch's *mean colour* (the protocol of ``eval segment``: best of
3, 4 and 5 clusters, Hungarian-matched mIoU at pixel resolution) on the val images as rendered,
and with every region (background and each object) overlaid with a random texture of its own
(smooth noise, stripes or checker, centred, at ``--contrast`` of its range). If textures finer than
a patch broke colour grouping, this mIoU would fall far. Also prints the patch-level ceiling (each
patch given its majority segment).

``position``: the protocol's best-k mIoU of a checkpoint's patch tokens as they are, with each
grid cell's mean token over the images subtracted (the position part removed), and of that mean
alone (the position part only).

    python tools/segment_readings.py colour --images 64 --size 64 --patch 8
    python tools/segment_readings.py position outputs/headline/headline/lmim/checkpoint_latest.pth
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from latentmim.data.backgrounds import random_background
from latentmim.data.synthetic import SyntheticShapes
from latentmim.eval.dense.segment_cluster import hierarchical_cuts, hungarian_miou, upsample_labels
from latentmim.eval.dense.segment_probe import patch_majority_labels

CUTS = (3, 4, 5)


def best_k_miou(features: np.ndarray, instances: np.ndarray, grid: int) -> float:
    """Best-of-cuts mIoU of Ward clusters of (grid*grid, D) features against an (H, W) instance map."""
    size = instances.shape[0]
    cuts = hierarchical_cuts(features, CUTS)
    return max(hungarian_miou(upsample_labels(c.reshape(grid, grid), size, size), instances) for c in cuts.values())


def textured(image: np.ndarray, instances: np.ndarray, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` with each region overlaid by its own centred random texture at ``contrast``."""
    out = image.astype(np.float32)
    for region in np.unique(instances):
        m = instances == region
        tex = random_background(image.shape[0], rng)[m]
        out[m] += contrast * (tex - tex.mean(axis=0))
    return np.clip(out, 0, 255)


def colour_reading(num: int, size: int, patch: int, contrasts: list[float]) -> None:
    shapes = SyntheticShapes("val", num, image_size=size, seed=0)
    scenes = [shapes.scene(i) for i in range(num)]
    g = size // patch
    oracle = np.mean([hungarian_miou(upsample_labels(patch_majority_labels(s.instances, patch), size, size),
                                     s.instances) for s in scenes])  # fmt: skip
    print(f"patch-level ceiling (majority segment per patch): {100 * oracle:.1f}")
    for c in contrasts:
        rng = np.random.default_rng(0)
        scores = []
        for s in scenes:
            img = textured(s.image, s.instances, c, rng) if c else s.image.astype(np.float32)
            cells = img.reshape(g, patch, g, patch, 3).mean(axis=(1, 3)).reshape(-1, 3)
            scores.append(best_k_miou(cells - cells.mean(axis=0), s.instances, g))  # centred: hue, not brightness
        print(f"mean-colour clustering, texture contrast {c}: best-k mIoU {100 * np.mean(scores):.1f}")


def position_reading(checkpoint: str, num: int, size: int) -> None:
    from latentmim.config.eval_schema import SegmentEvalConfig
    from latentmim.eval.dense.features import encoder_features, image_to_tensor
    from latentmim.eval.dense.segment import load_samples
    from latentmim.interop.load import load_pretrained

    loaded = load_pretrained(checkpoint)
    enc = loaded.encoder.eval()
    cfg = SegmentEvalConfig(checkpoint=checkpoint, num_images=num, input_size=size, tsne=False)
    samples, mean, std = load_samples(cfg, loaded, size, enc.patch_size, gray=enc.in_chans == 1)
    fn = encoder_features(enc)
    with torch.no_grad():
        maps = np.stack([fn(image_to_tensor(s.image, mean, std)).numpy() for s in samples])  # (N, h, w, D)
    g = maps.shape[1]
    cell_mean = maps.mean(axis=0)  # (h, w, D): the part of every token that depends on its cell only
    for name, feats in (("as they are", maps), ("cell mean removed", maps - cell_mean),
                        ("cell mean only", np.broadcast_to(cell_mean, maps.shape))):  # fmt: skip
        score = np.mean([best_k_miou(f.reshape(g * g, -1), s.segments, g) for f, s in zip(feats, samples, strict=True)])
        print(f"{checkpoint}: tokens {name}: best-k mIoU {100 * score:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="reading", required=True)
    c = sub.add_parser("colour", help="mean-colour clustering, flat and textured")
    c.add_argument("--images", type=int, default=64)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--patch", type=int, default=8)
    c.add_argument("--contrast", type=float, nargs="+", default=[0.0, 0.6, 1.0, 1.5])
    q = sub.add_parser("position", help="tokens with and without their cell's mean")
    q.add_argument("checkpoints", nargs="+")
    q.add_argument("--images", type=int, default=64)
    q.add_argument("--size", type=int, default=64)
    args = p.parse_args(argv)
    if args.reading == "colour":
        if args.size % args.patch:
            raise SystemExit(f"segment_readings: --size {args.size} is not a multiple of --patch {args.patch}")
        colour_reading(args.images, args.size, args.patch, args.contrast)
        return 0
    for ckpt in args.checkpoints:  # every path checked before the first measurement
        if not Path(ckpt).is_file():
            raise SystemExit(f"segment_readings: {ckpt}: no such checkpoint")
    torch.set_num_threads(1)
    for ckpt in args.checkpoints:
        position_reading(ckpt, args.images, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
