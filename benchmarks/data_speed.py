"""Images/s of the pre-training data pipeline, up to the tensor the training step receives.

    python benchmarks/data_speed.py                       # the demo config (synthetic, 40-px crops)
    python benchmarks/data_speed.py dataset=fashion_mnist # any pretrain overrides
    python benchmarks/data_speed.py --threads 1           # torch threads (default: torch's, as in training)

Builds the training loader of the config exactly as ``latentmim pretrain`` does (same dataset,
sampler, seeded per-sample augmentation, ``env.workers``), renders/caches the images it will read
first (so rendering is not timed), then times ``--batches`` batches and prints the median images/s
per batch. The training step itself is not included (``benchmarks/throughput.py`` times that).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from latentmim.config.load import compose_config
from latentmim.engine.data import build_pretrain_data


def time_loader(overrides: list[str], batches: int) -> tuple[float, int]:
    """Median images/s per batch of the config's training loader, and the batch size."""
    cfg = compose_config(overrides)
    data = build_pretrain_data(cfg, torch.device("cpu"), with_monitor=False)
    data.train.set_epoch(0)
    data.sampler.set_epoch(0)
    order = data.sampler.epoch_indices()[: batches * cfg.batch_size]
    for i in order:  # render / decode once: the cache is warm in a real run after epoch 1
        data.train.base[i]
    rates = []
    it = iter(data.loader)
    for _ in range(batches):
        t0 = time.perf_counter()
        images = next(it)[0]
        rates.append(images.shape[0] / (time.perf_counter() - t0))
    return statistics.median(rates), cfg.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("overrides", nargs="*", help="pretrain key=value overrides (config 'demo')")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rate, bs = time_loader(args.overrides, args.batches)
    print(f"{rate:8.0f} img/s  (median of {args.batches} batches of {bs}, {args.threads} threads)")


if __name__ == "__main__":
    main()
