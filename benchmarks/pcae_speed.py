"""PCAE vs MAE training speed at the same encoder: measured images/s beside the FLOP ratio.

    python benchmarks/pcae_speed.py                                  # ViT-B/16, batch 4, CPU
    python benchmarks/pcae_speed.py --batch 64 --steps 20 --device cuda --precision bf16
    python benchmarks/pcae_speed.py --encoder vit_small --pcae-decoder-depths 8 2 1

Rows: MAE with its paper's setting (named config ``mae``: 8 x 512 decoder over all 197 tokens)
and PCAE (named config ``pcae``: drop case 1, keep 0.5, 147 -> 73 -> 36 -> 18 target tokens)
with each decoder depth asked for; every model on the same encoder. A step is a full optimizer
step on random images (PCAE's EMA update, forward, backward, AdamW), no data loading. The models
take turns, one step each per round (the order reversed every other round), so background load
falls on all alike; images/s is the median over the timed rounds, and the fastest round is shown
beside it (on a shared CPU the median is mostly the other jobs' load).

The FLOPs are the analytic count of :mod:`latentmim.methods.pcae_cost` (checked against
FlopCounterMode in tests/methods/test_pcae_costs.py). PCAE's saving is its decoder: visible
tokens plus the ~18 survivors instead of all 197 tokens; its target encoder is extra work MAE
does not do. The paper's 300-epoch GPU days, MAE 15.4 / PCAE 10.1 = 1.52, are what the FLOPs
give with a 2 x 512 decoder; with the 8 x 512 one the FLOPs give 1.26 (docs/method.md#pcae).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from latentmim.config.load import compose_config
from latentmim.methods.factory import build_model
from latentmim.methods.pcae_cost import StepCost, ViTShape, mae_step_flops, pcae_step_flops
from latentmim.methods.token_drop import drop_schedule
from latentmim.training.optim import build_adamw
from latentmim.training.precision import autocast

PAPER_MAE_OVER_PCAE = 15.4 / 10.1  # GPU days, ViT-B, 300 epochs


def build(config: str, words: list[str], device: torch.device):
    """A model of a named config with ``words`` on top, its optimizer and its analytic cost."""
    cfg = compose_config(words, config)
    torch.manual_seed(0)
    model = build_model(cfg, in_chans=3).to(device)
    enc = model.encoder
    shape = ViTShape(enc.embed_dim, len(enc.blocks), enc.grid_size**2, enc.patch_dim)
    num_vis = shape.num_patches - round(shape.num_patches * cfg.mask_ratio)
    if cfg.method == "pcae":
        schedule = drop_schedule(shape.depth, cfg.pcae.keep, cfg.pcae.drop_case, cfg.pcae.drop_stages)
        cost = pcae_step_flops(shape, schedule, num_vis, cfg.decoder_embed_dim, cfg.decoder_depth)
    else:
        cost = mae_step_flops(shape, num_vis, cfg.decoder_embed_dim, cfg.decoder_depth)
    return cfg, model, build_adamw(model, 1e-4, 0.05), cost, num_vis


def make_step(model, opt, imgs: torch.Tensor, precision: str, device: torch.device) -> Callable[[], None]:
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        model.update_target(0.999)  # PCAE's EMA step; a no-op for MAE
        views = model.sample_views(imgs.shape[0], gen).to(device)
        with autocast(precision, device):
            loss, _ = model(imgs, views)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="vit_base", help="encoder preset (vit_tiny, vit_small, vit_base, ...)")
    ap.add_argument("--pcae-decoder-depths", type=int, nargs="+", default=[8, 2],
                    help="PCAE decoder depths to run (width 512); MAE keeps its 8 blocks")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed rounds (one step of every model each)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default=None, help="fp32 | bf16 | fp16 (default: bf16 on CUDA, fp32 on CPU)")
    args = ap.parse_args()
    device = torch.device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    common = [f"encoder={args.encoder}", "patch_size=16", "grid_size=14"]

    runs: list[tuple[str, StepCost, int, Callable[[], None]]] = []  # (label, cost, decoder tokens, step)
    cfg, model, opt, cost, num_vis = build("mae", common, device)
    imgs = torch.randn(args.batch, 3, cfg.train_size, cfg.train_size, device=device)
    runs.append((f"MAE, decoder {cfg.decoder_depth} x {cfg.decoder_embed_dim}", cost,
                 1 + num_vis + cost.num_predicted, make_step(model, opt, imgs, precision, device)))
    for depth in args.pcae_decoder_depths:
        cfg, model, opt, cost, num_vis = build("pcae", [*common, f"decoder_depth={depth}"], device)
        runs.append((f"PCAE, decoder {depth} x {cfg.decoder_embed_dim}", cost,
                     1 + num_vis + cost.num_predicted, make_step(model, opt, imgs, precision, device)))

    times: list[list[float]] = [[] for _ in runs]
    for r in range(args.warmup + args.steps):
        order = list(enumerate(runs))
        for i, (*_, step) in order if r % 2 == 0 else order[::-1]:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r >= args.warmup:
                times[i].append(time.perf_counter() - t0)

    img_per_s = [args.batch / statistics.median(t) for t in times]
    best = [args.batch / min(t) for t in times]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    mae_cost, mae_speed = runs[0][1], img_per_s[0]
    print(f"{args.encoder}/16 at 224 px, 75% masked, batch {args.batch}, {precision} on {name}; "
          f"median of {args.steps} rounds")
    print("| model | tokens the decoder sees | GFLOP/img: encoder + target + decoder = total | img/s (best) "
          "| measured speed-up over MAE (best) | FLOP ratio MAE / model |")
    print("|---|---|---|---|---|---|")
    for (label, cost, seen, _), speed, fast in zip(runs, img_per_s, best, strict=True):
        parts = " + ".join(f"{v / 1e9:.1f}" for v in (cost.encoder, cost.target, cost.decoder))
        print(f"| {label} | {seen} | {parts} = {cost.total / 1e9:.1f} | {speed:.2f} ({fast:.2f}) | "
              f"{speed / mae_speed:.2f}x ({fast / best[0]:.2f}x) | {mae_cost.total / cost.total:.2f} |")
    print(f"paper (ViT-B/16, 300 epochs, GPU days): MAE 15.4 / PCAE 10.1 = {PAPER_MAE_OVER_PCAE:.2f}")


if __name__ == "__main__":
    main()
