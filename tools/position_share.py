"""How much of an encoder's patch tokens is position, and how much is the image.

The demo's seeds split into two groups (docs/small_scale.md, section 11): in some runs the online
encoder's patch tokens keep the grid position, in others they lose most of it, and those runs end
with a higher loss and a lower k-NN score. This tool measures it. For the run's NN-monitor val
images (whole images, every patch visible, as the NN protocols read them), with tokens
``t[n, k]`` (image n, grid position k, before the final norm, cls excluded) it prints

* the **position share**: variance of the per-position means ``mean_n t[n, k]`` over the total
  token variance (1 = tokens depend on position alone, 0 = no position in them on average);
* the **image share**: variance of the per-image means ``mean_k t[n, k]`` (the avg-pooled NN
  feature) over the total token variance.

    python tools/position_share.py outputs/demo outputs/other_run/checkpoint_0005.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from latentmim.engine.data import build_monitor_loaders, raw_dataset
from latentmim.engine.encoder_io import load_encoder_checkpoint
from latentmim.masking.patchify import all_ids, patchify


def variance_shares(tokens: Tensor) -> tuple[float, float]:
    """(position share, image share) of the token variance.

    Args:
        tokens: (N, K, D) patch tokens of N images at K grid positions.

    Returns:
        Sum over channels of the variance of the per-position means, and of the per-image means,
        each divided by the total variance of all N*K tokens (population variances).
    """
    centre = tokens.mean(dim=(0, 1))
    total = ((tokens - centre) ** 2).sum(-1).mean()
    position = ((tokens.mean(0) - centre) ** 2).sum(-1).mean()
    image = ((tokens.mean(1) - centre) ** 2).sum(-1).mean()
    return float(position / total), float(image / total)


@torch.no_grad()
def run_tokens(path: str) -> Tensor:
    """(N, K, D) pre-norm patch tokens of a run's NN-monitor val images under its online encoder."""
    checkpoint = Path(path)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoint_latest.pth"
    encoder, cfg = load_encoder_checkpoint(str(checkpoint), [])
    encoder.eval()
    base, info = raw_dataset(cfg, "train")
    _, val = build_monitor_loaders(cfg, torch.device("cpu"), base=(base, info))
    out = []
    for batch in val:
        images = batch[0]
        ids = all_ids(images.shape[0], encoder.grid_size, images.device)
        _, prenorm = encoder.forward_patches(patchify(images, encoder.patch_size), ids, return_prenorm=True)
        out.append(prenorm[:, 1:])
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (their latest checkpoint) or checkpoint files")
    args = parser.parse_args()
    for path in args.runs:
        position, image = variance_shares(run_tokens(path))
        print(f"{path}: position share {position:.3f}, image share {image:.3f}", flush=True)


if __name__ == "__main__":
    main()
