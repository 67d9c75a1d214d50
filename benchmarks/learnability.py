"""Is a task learnable at a budget? Train a ViT from scratch *with labels* on cached synthetic images.

The supervised ceiling for the small-scale recipes (docs/recipes.md#why-the-synthetic-task-looks-as-it-does): if the same ViT trained
with labels for the same minutes is not far above raw pixels, no self-supervised method can look
good at that budget. Images are rendered once and kept as a uint8 tensor (rendering costs as much
as a training step); augmentation is a batched random-resized crop (area 0.35-1) + flip.

    python benchmarks/learnability.py size=32 P=4 dim=128 depth=4 ntr=20000 min=3 lr=1e-3
    python benchmarks/learnability.py size=32 P=8 dim=128 depth=4 ntr=20000 min=3 lr=2e-3
    python benchmarks/learnability.py distractors=0 min=3     # the synthetic scene without distractors

Prints raw-pixel weighted 20-NN (10k bank -> 2k val), training img/s, and val top-1 of the head.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import latentmim.data.synthetic as synthetic
from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.vit import ViTEncoder
from latentmim.probing.knn import weighted_knn_accuracy


def render(split: str, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = synthetic.SyntheticShapes(split, n, image_size=size, seed=0)
    x, y = np.empty((n, size, size, 3), np.uint8), np.empty(n, np.int64)
    for i in range(n):
        x[i], _, y[i] = ds.render(i)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, C, S, S) -> random resized crop (area 0.35-1, square) + horizontal flip, batched."""
    b = x.shape[0]
    s = torch.empty(b).uniform_(0.35, 1, generator=gen).sqrt()
    tx, ty = [(torch.rand(b, generator=gen) * 2 - 1) * (1 - s) for _ in range(2)]
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s * flip, s, tx, ty
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def main(argv: list[str]) -> dict:
    args = dict(a.split("=", 1) for a in argv)
    size, p, dim, depth = int(args.get("size", 32)), int(args.get("P", 4)), int(args.get("dim", 128)), int(args.get("depth", 4))
    ntr, minutes, bs, lr = int(args.get("ntr", 20000)), float(args.get("min", 3)), int(args.get("bs", 128)), float(args.get("lr", 1e-3))
    torch.set_num_threads(int(args.get("threads", 2)))
    torch.manual_seed(0)
    # Generator knobs for re-tuning the benchmark (module constants of latentmim.data.synthetic).
    if "radius" in args:  # main object's circumradius range, fraction of the side: "0.25,0.4"
        synthetic._MAIN_RADIUS = tuple(float(v) for v in args["radius"].split(","))
    if "bg" in args:  # background texture contrast (1 = full, 0 = flat)
        synthetic._BG_CONTRAST = float(args["bg"])
    if args.get("distractors", "2") == "0":  # keep only the main object of each layout
        layout = synthetic._sample_layout
        synthetic._sample_layout = lambda rng, n: _main_only(layout, rng, n)
    # Rendering costs ~15 ms per image here: keep the rendered sets on disk per generator setting.
    # (keyed by the generator's values in force, so a changed default never reads a stale set)
    knobs = f"radius={synthetic._MAIN_RADIUS}_bg={synthetic._BG_CONTRAST}_distractors={args.get('distractors', 2)}"
    cache = Path(args.get("cache", "/tmp/learnability_cache")) / f"{knobs}_{size}_{ntr}.pt"
    if cache.exists():
        xtr, ytr, xva, yva = torch.load(cache, weights_only=True)
    else:
        xtr, ytr = render("train", ntr, size)
        xva, yva = render("val", 2000, size)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save((xtr, ytr, xva, yva), cache)
    bank = xtr[:10000].float().flatten(1)
    mu, sd = bank.mean(0), bank.std(0) + 1e-6
    raw = weighted_knn_accuracy((bank - mu) / sd, ytr[:10000], (xva.float().flatten(1) - mu) / sd, yva, 10,
                                k=20, temperature=0.07, topk=(1,))["top1"]
    mean = xtr[:2000].float().mean((0, 2, 3), keepdim=True) / 255
    std = xtr[:2000].float().std((0, 2, 3), keepdim=True) / 255
    g = size // p
    enc = ViTEncoder(grid_size=g, patch_size=p, in_chans=3, embed_dim=dim, depth=depth, num_heads=max(dim // 64, 2))
    head = torch.nn.Linear(dim, 10)
    params = [q for q in [*enc.parameters(), *head.parameters()] if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05, betas=(0.9, 0.95))

    def logits(x: torch.Tensor) -> torch.Tensor:
        return head(enc.forward_patches(patchify(x, p), all_ids(x.shape[0], g))[:, 1:].mean(1))

    gen = torch.Generator().manual_seed(0)
    budget, t0, steps = minutes * 60, time.time(), 0
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for group in opt.param_groups:  # 5% warm-up, cosine to 0 over the wall-clock budget
            group["lr"] = lr * min(1.0, frac / 0.05) * 0.5 * (1 + math.cos(math.pi * frac))
        idx = torch.randint(0, ntr, (bs,), generator=gen)
        x = augment((xtr[idx].float() / 255 - mean) / std, gen)
        loss = F.cross_entropy(logits(x), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    enc.eval()
    with torch.no_grad():
        correct = sum((logits((xva[i:i + 500].float() / 255 - mean) / std).argmax(1) == yva[i:i + 500]).sum().item()
                      for i in range(0, 2000, 500))
    out = {**args, "raw_pixels_20nn": raw, "supervised_top1": correct / 20, "steps": steps,
           "images_seen": steps * bs, "img_per_s": round(steps * bs / budget)}
    print(json.dumps(out))
    return out


def _main_only(layout, rng, n):
    objects, main = layout(rng, n)
    return [objects[main]], 0


if __name__ == "__main__":
    main(sys.argv[1:])
