"""How much of an encoder's patch tokens is position, and how much is the image.

The demo's seeds split into two groups (docs/recipes.md#why-a-learned-position-table): in some runs the online
encoder's patch tokens keep the grid position, in others they lose most of it, and those runs end
with a higher loss and a lower k-NN score. This tool measures it. For the run's NN-monitor val
images (whole images, every patch visible, as the NN protocols read them), with tokens
``t[n, k]`` (image n, grid position k, before the final norm, cls excluded) it prints

* the **position share**: variance of the per-position means ``mean_n t[n, k]`` over the total
  token variance (1 = tokens depend on position alone, 0 = no position in them on average);
* the **image share**: variance of the per-image means ``mean_k t[n, k]`` (the avg-pooled NN
  feature) over the total token variance.

    python tools/position_share.py outputs/demo outputs/other_run/checkpoint_0005.pth
    python tools/position_share.py fixed=outputs/demo_fixed_s0 learned=outputs/demo_learned_s0 --plot share.png

With ``--plot`` the runs (folders, written ``LABEL=DIR`` to group them) are also drawn as position
share against the run's final weighted 20-NN score (its ``eval.jsonl``), one colour per label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from latentmim.ablate.evaluate import read_jsonl
from latentmim.engine.data import build_monitor_loaders
from latentmim.interop.load import load_pretrained
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


def checkpoint_path(path: str) -> Path:
    """A run folder's latest checkpoint, or the checkpoint file itself."""
    run = Path(path)
    return run / "checkpoint_latest.pth" if run.is_dir() else run


@torch.no_grad()
def run_tokens(path: str) -> Tensor:
    """(N, K, D) pre-norm patch tokens of a run's NN-monitor val images under its online encoder."""
    loaded = load_pretrained(str(checkpoint_path(path)), [])
    encoder, cfg = loaded.encoder, loaded.config
    encoder.eval()
    _, val = build_monitor_loaders(cfg, torch.device("cpu"))
    out = []
    for batch in val:
        images = batch[0]
        ids = all_ids(images.shape[0], encoder.grid_size, images.device)
        _, prenorm = encoder.forward_patches(patchify(images, encoder.patch_size), ids, return_prenorm=True)
        out.append(prenorm[:, 1:])
    return torch.cat(out)


def final_knn(run: Path) -> float:
    """The last weighted 20-NN score of a run's NN monitor (``eval.jsonl``; a half-written line skipped)."""
    return float(read_jsonl(run / "eval.jsonl")[-1]["knn20_top1"])


def plot(points: list[tuple[str, float, float]], out: str) -> None:
    """Scatter of (label, position share, final 20-NN), one colour per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label in dict.fromkeys(p[0] for p in points):
        xs, ys = zip(*[(p[1], p[2]) for p in points if p[0] == label], strict=True)
        ax.scatter(xs, ys, label=label, s=36)
    ax.set_xlabel("position share of the patch-token variance")
    ax.set_ylabel("final weighted 20-NN (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+",
                        help="run folders (their latest checkpoint) or checkpoint files, optionally LABEL=PATH")
    parser.add_argument("--plot", help="also save share vs final 20-NN of the run folders as this PNG")
    args = parser.parse_args()
    specs = [spec.rpartition("=")[::2] for spec in args.runs]  # (label, path)
    for _, path in specs:  # every path is checked before the first (slow) measurement
        if not checkpoint_path(path).is_file():
            parser.error(f"no checkpoint at {path} (a run folder with checkpoint_latest.pth, or a .pth file)")
        if args.plot and Path(path).is_dir() and not (Path(path) / "eval.jsonl").is_file():
            parser.error(f"--plot: {path} has no eval.jsonl (the NN monitor's scores)")
    points = []
    for label, path in specs:
        run = Path(path)
        position, image = variance_shares(run_tokens(path))
        print(f"{path}: position share {position:.3f}, image share {image:.3f}", flush=True)
        if args.plot and run.is_dir():
            points.append((label or "runs", position, final_knn(run)))
    if args.plot:
        plot(points, args.plot)


if __name__ == "__main__":
    main()
