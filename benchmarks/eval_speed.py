"""Evaluation speed: feature extraction images/s and k-NN time on 60k x 384 features.

    python benchmarks/eval_speed.py                       # ViT-S/16 at 224 px and the demo ViT
    python benchmarks/eval_speed.py --models none         # only the k-NN timings and agreement
    python benchmarks/eval_speed.py --device cuda --batch 256 --repeats 5

Feature extraction times ``encode_images`` (the official NN feature) on random images, without
data loading. k-NN: a 60000-image bank of 384-d features (ViT-S width, the size of the
Fashion-MNIST / CIFAR train sets) against 10000 queries, weighted k-NN (k=20, T=0.07), and
leave-one-out 1-NN within the 10000 queries, each with the exact fp32 search and the two-stage
search (bf16 candidates + exact re-rank, ``probing/knn.py``) side by side. Every number is the
median over ``--repeats`` timed runs after one warm-up run.

Agreement: the two searches' weighted 20-NN predictions on real data, Fashion-MNIST's 60000
train / 10000 test images as standardised raw pixels (784-d; installed with
``apt-get install dataset-fashion-mnist``, skipped when absent), and on ``--features FILE``
(a ``torch.save`` of ``{"train": (N, D), "train_labels": (N,), "val": (M, D)}``) if given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from latentmim.data.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT, FashionMNIST
from latentmim.models.vit import build_encoder
from latentmim.probing.features import encode_images, raw_pixel_features
from latentmim.probing.knn import bf16_matmul_is_faster, loo_1nn_predict, weighted_knn_predict
from latentmim.runtime.timing import median_seconds
from latentmim.training.precision import autocast

MODELS = {  # name -> (preset, grid, patch, width override, depth override, heads override)
    "vit_small_16_224": ("vit_small", 14, 16, None, None, None),
    "demo_8_64": ("vit_tiny", 8, 8, 192, 6, 3),
}


def feature_speed(name: str, batch: int, repeats: int, device: torch.device, precision: str) -> float:
    preset, grid, patch, width, depth, heads = MODELS[name]
    torch.manual_seed(0)
    enc = build_encoder(preset, grid, patch, 3, width, depth, heads).to(device).eval()
    imgs = torch.randn(batch, 3, grid * patch, grid * patch, device=device)

    def run() -> None:
        with autocast(precision, device):
            encode_images(enc, imgs)

    return batch / median_seconds(run, repeats, device)


def knn_speed(bank: int, queries: int, dim: int, repeats: int, device: torch.device, search: str) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    bank_x = torch.randn(bank, dim, generator=g).to(device)
    bank_y = torch.randint(0, 10, (bank,), generator=g).to(device)
    query_x = torch.randn(queries, dim, generator=g).to(device)
    query_y = torch.randint(0, 10, (queries,), generator=g).to(device)
    weighted = median_seconds(lambda: weighted_knn_predict(bank_x, bank_y, query_x, 10, k=20, temperature=0.07,
                                                           search=search), repeats, device)
    loo = median_seconds(lambda: loo_1nn_predict(query_x, query_y, search=search), repeats, device)
    return weighted, loo


def fashion_mnist_pixels(root: Path = Path(FASHION_MNIST_DEFAULT_ROOT)) -> dict[str, torch.Tensor] | None:
    """Per-pixel standardised raw pixels of Fashion-MNIST's train and test images."""
    if not root.is_dir():
        return None
    out = {}
    for split in ("train", "val"):
        ds = FashionMNIST(root, split)
        out[split] = raw_pixel_features(torch.from_numpy(ds.images)[:, None])
        out[f"{split}_labels"] = torch.from_numpy(ds.targets).long()
    mean, std = out["train"].mean(0), out["train"].std(0) + 1e-6
    out["train"], out["val"] = (out["train"] - mean) / std, (out["val"] - mean) / std
    return out


def agreement(feats: dict[str, torch.Tensor], device: torch.device) -> tuple[float, int, float, float]:
    """Share of identical weighted 20-NN predictions (exact vs two-stage), and both searches' seconds."""
    bank, labels, queries = feats["train"].to(device), feats["train_labels"].to(device), feats["val"].to(device)
    num_classes = int(labels.max()) + 1
    times, preds = {}, {}
    for search in ("exact", "bf16"):
        times[search] = median_seconds(
            lambda s=search: preds.__setitem__(s, weighted_knn_predict(bank, labels, queries, num_classes, search=s).argmax(1)),
            1, device)
    same = (preds["exact"] == preds["bf16"]).sum().item()
    return 100.0 * same / len(queries), len(queries) - same, times["exact"], times["bf16"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, or 'none'")
    p.add_argument("--features", type=Path, default=None, help="saved features for the agreement check")
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"precision {args.precision}, median of {args.repeats}")
    with torch.no_grad():
        for name in [m for m in args.models.split(",") if m != "none"]:
            ips = feature_speed(name, args.batch, args.repeats, device, args.precision)
            print(f"feature extraction {name}: {ips:.1f} images/s")
        speed = {search: knn_speed(60000, 10000, 384, args.repeats, device, search) for search in ("exact", "bf16")}
        print(f"bf16 matmul faster than fp32 here (search=auto takes two stages): {bf16_matmul_is_faster(device)}")
        print("| search | weighted 20-NN, 10k queries vs 60k x 384 | leave-one-out 1-NN within 10k x 384 |")
        print("|---|---|---|")
        for search, (weighted, loo) in speed.items():
            print(f"| {search} | {weighted:.2f} s | {loo:.2f} s |")
        (ew, el), (bw, bl) = speed["exact"], speed["bf16"]
        print(f"| ratio exact / bf16 | {ew / bw:.2f}x | {el / bl:.2f}x |")
        sets = {"Fashion-MNIST raw pixels (60k x 784 vs 10k)": fashion_mnist_pixels()}
        if args.features is not None:
            sets[str(args.features)] = torch.load(args.features, weights_only=True)
        for name, feats in sets.items():
            if feats is None:
                print(f"agreement on {name}: skipped (not installed)")
                continue
            share, differ, te, tb = agreement(feats, device)
            print(f"agreement on {name}: {share:.3f}% identical predictions ({differ} differ); "
                  f"exact {te:.2f} s, two-stage {tb:.2f} s")


if __name__ == "__main__":
    main()
