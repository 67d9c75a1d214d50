"""How much the k-NN floor, and a trained encoder's gap to it, depend on the bank of training images.

The NN monitor's weighted 20-NN scores the val images against a fixed random subset of the
training images (``nn_train_images`` of them, drawn with ``data_seed`` from all ``num_train``), so
a run with another training-set size draws another bank: the demo's raw-pixel floor read 31.40 at
40k rendered images and 30.05 at 50k, with the same val images. This tool scores raw pixels
against ``--banks`` random banks of the monitor's size drawn from the config's training images
(bank seeds 0..N-1; bank 0 is the monitor's own when ``data_seed`` is 0) and prints each score and
their mean +- std. With ``--checkpoint`` it also scores that run's encoder on the same banks and
prints the paired gap (trained - raw pixels) per bank and over all. The LOO 1-NN protocol uses the
val images alone and does not depend on the bank.

    python tools/bank_spread.py --banks 10 synthetic.num_train=50000
    python tools/bank_spread.py --banks 10 --checkpoint outputs/demo/checkpoint_latest.pth
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.data import DataLoader

from latentmim.config.load import compose_config
from latentmim.data.loader import SeededDataset
from latentmim.data.seeding import seeded_subset
from latentmim.data.transforms import eval_transform
from latentmim.engine.data import build_monitor_loaders, raw_dataset
from latentmim.interop.load import load_pretrained
from latentmim.probing.nn_monitor import encoder_nn_scores, raw_pixel_nn_scores


def _summary(name: str, values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{name} {statistics.mean(values):.2f} +- {spread:.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--banks", type=int, default=10, help="number of random banks")
    parser.add_argument("--checkpoint", help="also score this pre-training checkpoint's encoder on the banks")
    parser.add_argument("overrides", nargs="*", help="pretrain key=value overrides (config 'demo', or the checkpoint's)")
    args = parser.parse_args()
    encoder = None
    if args.checkpoint:
        loaded = load_pretrained(args.checkpoint, args.overrides)
        encoder, cfg = loaded.encoder, loaded.config
    else:
        cfg = compose_config(args.overrides)
    device = torch.device("cpu")
    base, info = raw_dataset(cfg, "train")
    _, val = build_monitor_loaders(cfg, device, base=(base, info))
    images = SeededDataset(base, eval_transform(cfg.eval_size, info.mean, info.std), seed=cfg.env.seed)
    size = min(cfg.nn_train_images or len(images), len(images))
    key = f"knn{cfg.knn_k}_top1"
    raw, trained = [], []
    for b in range(args.banks):
        # the monitor's own rule for its bank (engine.data), with bank seed b in place of data_seed
        bank = DataLoader(seeded_subset(images, size, b), batch_size=max(cfg.batch_size, 64))
        common = (bank, val, info.num_classes, device, cfg.knn_k, cfg.knn_t)
        raw.append(raw_pixel_nn_scores(*common)[key])
        line = f"bank {b}: raw pixels {key} {raw[-1]:.2f}"
        if encoder is not None:
            trained.append(encoder_nn_scores(encoder, *common)[key])
            line += f"  trained {trained[-1]:.2f}  gap {trained[-1] - raw[-1]:+.2f}"
        print(line, flush=True)
    print(f"{args.banks} banks of {size} of {len(images)} training images: " + _summary(f"raw pixels {key}", raw))
    if encoder is not None:
        print(_summary(f"trained {key}", trained) + "; " + _summary("gap", [t - r for t, r in zip(trained, raw, strict=True)]))


if __name__ == "__main__":
    main()
