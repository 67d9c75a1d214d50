"""Evaluation speed: feature extraction images/s and k-NN time on 60k x 384 features.

    python benchmarks/eval_speed.py                       # ViT-S/16 at 224 px and the demo ViT
    python benchmarks/eval_speed.py --device cuda --batch 256 --repeats 5

Feature extraction times ``encode_images`` (the official NN feature) on random images, without
data loading. k-NN: a 60000-image bank of 384-d features (ViT-S width, the size of the
Fashion-MNIST / CIFAR train sets) against 10000 queries, weighted k-NN (k=20, T=0.07), and
leave-one-out 1-NN within the 10000 queries. Every number is the median over ``--repeats``
timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse

import torch

from latentmim.engine.features import encode_images
from latentmim.engine.knn import loo_1nn_predict, weighted_knn_predict
from latentmim.engine.precision import autocast
from latentmim.engine.timing import median_seconds
from latentmim.models.vit import build_encoder

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


def knn_speed(bank: int, queries: int, dim: int, repeats: int, device: torch.device) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    bank_x = torch.randn(bank, dim, generator=g).to(device)
    bank_y = torch.randint(0, 10, (bank,), generator=g).to(device)
    query_x = torch.randn(queries, dim, generator=g).to(device)
    query_y = torch.randint(0, 10, (queries,), generator=g).to(device)
    weighted = median_seconds(lambda: weighted_knn_predict(bank_x, bank_y, query_x, 10, k=20, temperature=0.07),
                     repeats, device)
    loo = median_seconds(lambda: loo_1nn_predict(query_x, query_y), repeats, device)
    return weighted, loo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"precision {args.precision}, median of {args.repeats}")
    with torch.no_grad():
        for name in args.models.split(","):
            ips = feature_speed(name, args.batch, args.repeats, device, args.precision)
            print(f"feature extraction {name}: {ips:.1f} images/s")
        weighted, loo = knn_speed(60000, 10000, 384, args.repeats, device)
    print(f"weighted 20-NN, 10000 queries vs 60000 x 384 bank: {weighted:.2f} s")
    print(f"leave-one-out 1-NN within 10000 x 384: {loo:.2f} s")


if __name__ == "__main__":
    main()
